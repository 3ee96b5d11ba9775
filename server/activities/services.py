"""活动: schedule, check-in window, QR, attendance and closing (with the absence rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from server.activities.schemas import (
    ActivityIn,
    ActivityOut,
    ActivityPatch,
    ActivityQROut,
    AttendanceItem,
    AttendanceOut,
    CloseOut,
)
from server.core.auth import Principal
from server.core.context import Context
from server.core.errors import APIError, not_found
from server.core import xlsx
from server.core.qr import qr_version
from server.core.sql import Where
from server.core.timeutil import utcnow
from server.points import race as points_race
from server.points import services as points
from server.stations.services import reachable_station

DEFAULT_OPENS_BEFORE = timedelta(minutes=30)
ACTIVE_MEMBER_STATUSES = ("normal", "inflow")

_SELECT = """
SELECT a.id, a.type, a.title, a.description, a.station_id, s.name, a.org_id, o.name, a.starts_at, a.ends_at,
       a.checkin_opens_at, a.checkin_closes_at, a.required, a.records_hours, a.capacity, a.status,
       (SELECT COUNT(*) FROM checkins c WHERE c.activity_id = a.id AND c.kind = 'in' AND c.status = 'accepted'),
       s.org_path, a.org_path
FROM activities a JOIN stations s ON s.id = a.station_id JOIN orgs o ON o.id = a.org_id
"""


def effective_status(stored: str, opens: datetime, closes: datetime, now: datetime | None = None) -> str:
    if stored in ("cancelled", "closed"):
        return stored
    now = now or utcnow()
    return "open" if opens <= now <= closes else "planned"


def _out(row: Any) -> ActivityOut:
    return ActivityOut(
        id=row[0], type=row[1], title=row[2], description=row[3], station_id=row[4], station_name=row[5], org_id=row[6],
        org_name=row[7], starts_at=row[8], ends_at=row[9], checkin_opens_at=row[10], checkin_closes_at=row[11],
        required=bool(row[12]), records_hours=bool(row[13]), capacity=row[14],
        status=effective_status(row[15], row[10], row[11]), checked_in=int(row[16]),
    )


def _validate_schedule(starts: datetime, ends: datetime, opens: datetime, closes: datetime) -> None:
    if ends <= starts:
        raise APIError(400, "invalid_schedule", "结束时间必须晚于开始时间")
    if closes <= opens:
        raise APIError(400, "invalid_schedule", "签到截止时间必须晚于签到开始时间")
    if ends - starts > timedelta(days=31):
        raise APIError(400, "invalid_schedule", "单个活动不能超过 31 天")


async def _row(ctx: Context, activity_id: int) -> Any:
    return await ctx.db.fetchrow(_SELECT + " WHERE a.id = $1", activity_id)


async def visible_activity(ctx: Context, user: Principal, activity_id: int, *, manage: bool = False) -> tuple[ActivityOut, Any]:
    row = await _row(ctx, activity_id)
    if row is None:
        raise not_found("活动")
    station_id, station_path = row[4], row[17]
    if user.reaches_station(station_id, station_path) or user.manages_path(row[18]):
        return _out(row), row
    root = f"/{user.member_org_path.strip('/').split('/')[0]}/" if user.member_org_path else None
    if not manage and root and station_path.startswith(root):
        return _out(row), row
    raise not_found("活动")


async def list_activities(
    ctx: Context,
    user: Principal,
    *,
    station_id: int | None,
    since: datetime | None,
    until: datetime | None,
    status: str | None,
    limit: int,
) -> list[ActivityOut]:
    where = Where()
    staff = where.sub()
    staff.any_of("a.station_id", list(user.staff_station_ids))
    managed = where.sub()
    managed.prefix_any("s.org_path", user.manager_paths)
    managed_org = where.sub()
    managed_org.prefix_any("a.org_path", user.manager_paths)
    member = where.sub()
    root = f"/{user.member_org_path.strip('/').split('/')[0]}/" if user.member_org_path else None
    member.prefix_any("s.org_path", (root,) if root else ())
    where.either(staff, managed, managed_org, member)
    if station_id is not None:
        where.add("a.station_id = {}", station_id)
    if since is not None:
        where.add("a.ends_at >= {}", since)
    if until is not None:
        where.add("a.starts_at <= {}", until)
    if status in ("cancelled", "closed"):
        where.add("a.status = {}", status)
    elif status == "open":
        now = utcnow()
        where.add("a.status = 'planned' AND a.checkin_opens_at <= {} AND a.checkin_closes_at >= {}", now, now)
    elif status == "planned":
        where.add("a.status = 'planned' AND a.checkin_opens_at > {}", utcnow())
    rows = await ctx.db.fetch(_SELECT + f" WHERE {where.sql} ORDER BY a.starts_at, a.id LIMIT {int(limit)}", *where.args)
    return [_out(r) for r in rows]


async def create_activity(ctx: Context, user: Principal, data: ActivityIn) -> ActivityOut:
    station, station_path = await reachable_station(ctx, user, data.station_id, manage=True)
    org_id = data.org_id or station.org_id
    org_path = await ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", org_id)
    # The organising org: one I manage, or (station staff) one in the station's own subtree.
    if org_path is None or not (user.manages_path(org_path) or org_path.startswith(station_path)):
        raise not_found("组织")
    opens = data.checkin_opens_at or data.starts_at - DEFAULT_OPENS_BEFORE
    closes = data.checkin_closes_at or data.ends_at
    _validate_schedule(data.starts_at, data.ends_at, opens, closes)
    records_hours = data.records_hours if data.records_hours is not None else data.type == "volunteer"
    async with ctx.db.transaction():
        activity_id = await ctx.db.fetchval(
            "INSERT INTO activities (type, title, description, station_id, org_id, org_path, starts_at, ends_at,"
            " checkin_opens_at, checkin_closes_at, required, records_hours, capacity, status, created_by, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'planned', $14, $15) RETURNING id",
            data.type, data.title, data.description, data.station_id, org_id, org_path, data.starts_at.astimezone(UTC),
            data.ends_at.astimezone(UTC), opens.astimezone(UTC), closes.astimezone(UTC), data.required, records_hours,
            data.capacity, user.user_id, utcnow(),
        )
    activity, _ = await visible_activity(ctx, user, activity_id)
    return activity


async def update_activity(ctx: Context, user: Principal, activity_id: int, data: ActivityPatch) -> ActivityOut:
    await visible_activity(ctx, user, activity_id, manage=True)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    async with ctx.db.transaction():
        # Judged on the row as it is now: a close or another edit may have committed since it was read.
        await ctx.db.lock_activity_edit(activity_id)
        status, *schedule = await ctx.db.fetchrow(
            "SELECT status, starts_at, ends_at, checkin_opens_at, checkin_closes_at FROM activities WHERE id = $1",
            activity_id,
        )
        if status == "closed":
            raise APIError(409, "activity_closed", "活动已结束，不能再修改")
        names = ("starts_at", "ends_at", "checkin_opens_at", "checkin_closes_at")
        _validate_schedule(*(changes.get(name, stored) for name, stored in zip(names, schedule, strict=True)))
        for column, value in changes.items():
            if isinstance(value, datetime):
                value = value.astimezone(UTC)
            await ctx.db.execute(f"UPDATE activities SET {column} = $1 WHERE id = $2", value, activity_id)
    activity, _ = await visible_activity(ctx, user, activity_id)
    return activity


async def activity_qr(ctx: Context, user: Principal, activity_id: int) -> ActivityQROut:
    activity, _ = await visible_activity(ctx, user, activity_id, manage=True)
    if activity.status in ("cancelled", "closed"):
        raise APIError(409, "activity_not_open", "活动已取消或已结束，不能生成签到码")
    nbf = int(activity.checkin_opens_at.timestamp())
    exp = int(activity.checkin_closes_at.timestamp())
    token = ctx.tokens.activity_token(activity.id, activity.station_id, nbf, exp)
    url = ctx.tokens.qr_url(token)
    return ActivityQROut(
        activity_id=activity.id, token=token, url=url, not_before=activity.checkin_opens_at,
        expires_at=activity.checkin_closes_at, qr_version=qr_version(url),
    )


async def attendance(ctx: Context, user: Principal, activity_id: int) -> AttendanceOut:
    activity, row = await visible_activity(ctx, user, activity_id, manage=True)
    org_path = row[18]
    checkins = await ctx.db.fetch(
        "SELECT c.member_id, m.name, o.name, c.kind, c.status, c.method, c.scanned_at FROM checkins c"
        " JOIN members m ON m.id = c.member_id JOIN orgs o ON o.id = m.org_id"
        " WHERE c.activity_id = $1 AND c.status IN ('accepted', 'pending_review') ORDER BY c.scanned_at",
        activity_id,
    )
    items: dict[int, AttendanceItem] = {}
    for member_id, name, org_name, kind, status, method, scanned_at in checkins:
        item = items.get(member_id)
        if item is None:
            item = items[member_id] = AttendanceItem(
                member_id=member_id, name=name, org_name=org_name, state="present" if status == "accepted" else "pending",
                method=None, checked_in_at=None, checked_out_at=None,
            )
        if kind == "in":
            item.checked_in_at, item.method = scanned_at, method
            item.state = "present" if status == "accepted" else "pending"
        else:
            item.checked_out_at = scanned_at
    expected = 0
    if activity.required:
        members = await ctx.db.fetch(
            "SELECT m.id, m.name, o.name FROM members m JOIN orgs o ON o.id = m.org_id"
            " WHERE m.org_path LIKE $1 AND m.status IN ('normal', 'inflow') ORDER BY m.name",
            org_path + "%",
        )
        expected = len(members)
        for member_id, name, org_name in members:
            if member_id not in items:
                items[member_id] = AttendanceItem(
                    member_id=member_id, name=name, org_name=org_name, state="absent", method=None,
                    checked_in_at=None, checked_out_at=None,
                )
    # Approved leave (请假) excuses a member who did not come.
    excused = await ctx.db.fetch(
        "SELECT lr.member_id, m.name, o.name FROM leave_requests lr JOIN members m ON m.id = lr.member_id"
        " JOIN orgs o ON o.id = m.org_id WHERE lr.activity_id = $1 AND lr.status = 'approved'",
        activity_id,
    )
    for member_id, name, org_name in excused:
        item = items.get(member_id)
        if item is None:
            items[member_id] = AttendanceItem(
                member_id=member_id, name=name, org_name=org_name, state="excused", method=None,
                checked_in_at=None, checked_out_at=None,
            )
        elif item.state == "absent":
            item.state = "excused"
    values = list(items.values())
    return AttendanceOut(
        activity_id=activity_id, required=activity.required, expected=expected,
        present=sum(1 for i in values if i.state == "present"), pending=sum(1 for i in values if i.state == "pending"),
        absent=sum(1 for i in values if i.state == "absent"), excused=sum(1 for i in values if i.state == "excused"),
        items=values,
    )


ATTENDANCE_STATES = {"present": "出席", "pending": "待审核", "absent": "缺席", "excused": "请假"}
CHECKIN_METHODS = {"self": "本人扫码", "staff_card": "工作人员扫证", "staff_manual": "手工签到", "kiosk": "签到屏"}
_STATE_ORDER = {"present": 0, "pending": 1, "excused": 2, "absent": 3}


def schedule_text(starts: datetime, ends: datetime, tz: Any) -> str:
    """'2026-11-22 09:00–12:00' in local time (the end's date too when it is another day)."""
    start, end = starts.astimezone(tz), ends.astimezone(tz)
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d %H:%M}–{until}"


async def attendance_xlsx(ctx: Context, user: Principal, activity_id: int) -> tuple[bytes, str]:
    """The attendance sheet (same rows and scope as ``attendance``) and a file name for it."""
    import asyncio

    report = await attendance(ctx, user, activity_id)
    activity, _ = await visible_activity(ctx, user, activity_id, manage=True)
    tz = ctx.settings.tz
    intro = [
        activity.title,
        f"时间：{schedule_text(activity.starts_at, activity.ends_at, tz)}（{ctx.settings.timezone}）"
        f"　地点：{activity.station_name}　组织：{activity.org_name}",
        "　".join(
            ([f"应到 {report.expected} 人"] if report.required else [])
            + [f"出席 {report.present} 人", f"待审核 {report.pending} 人"]
            + ([f"请假 {report.excused} 人", f"缺席 {report.absent} 人"] if report.required else [])
        ),
    ]
    items = sorted(
        report.items,
        key=lambda i: (_STATE_ORDER.get(i.state, 9), i.checked_in_at or datetime.max.replace(tzinfo=UTC), i.name),
    )
    rows = [
        (
            i.name, i.org_name, ATTENDANCE_STATES.get(i.state, i.state),
            CHECKIN_METHODS.get(i.method, i.method) if i.method else "", i.checked_in_at, i.checked_out_at,
        )
        for i in items
    ]
    body = await asyncio.to_thread(
        xlsx.sheet, title="签到表", intro=intro, headers=["姓名", "支部", "状态", "方式", "签到时间", "签退时间"],
        rows=rows, widths=[14, 28, 10, 16, 20, 20], tz=tz,
    )
    return body, f"{activity.title}-签到表.xlsx"


async def close_activity(ctx: Context, user: Principal, activity_id: int) -> CloseOut:
    """Close; for a required activity, −2 (the absence rule) to each unexcused absentee, once."""
    await visible_activity(ctx, user, activity_id, manage=True)
    penalised = 0
    async with ctx.db.transaction():
        await ctx.db.lock_closing(activity_id)  # a second close waits, then finds nothing left to do
        await ctx.db.lock_activity_edit(activity_id)  # and an edit (a cancel, say) cannot slip in
        status, required, org_path, ends_at = await ctx.db.fetchrow(
            "SELECT status, required, org_path, ends_at FROM activities WHERE id = $1", activity_id
        )
        if status == "cancelled":
            raise APIError(409, "activity_cancelled", "活动已取消，无需结束")
        already = status == "closed"
        if not already:
            await ctx.db.execute(
                "UPDATE activities SET status = 'closed', closed_at = $1 WHERE id = $2 AND status = 'planned'",
                utcnow(), activity_id,
            )
        if bool(required):
            penalised = await _apply_absence(ctx, activity_id, org_path, ends_at, user.user_id)
            await points_race.count_closed_activity(ctx, activity_id)  # 赛马 attendance, once
    return CloseOut(activity_id=activity_id, status="closed", absentees_penalised=penalised, already_closed=already)


async def _apply_absence(ctx: Context, activity_id: int, org_path: str, ends_at: datetime, closed_by: int) -> int:
    day = ends_at.astimezone(ctx.settings.tz).date()
    rule = await points.rule_for_trigger(ctx, "absence", day)
    if rule is None:
        return 0
    absentees = await ctx.db.fetch(
        "SELECT m.id, m.org_path FROM members m WHERE m.org_path LIKE $1 AND m.status IN ('normal', 'inflow')"
        " AND NOT EXISTS (SELECT 1 FROM checkins c WHERE c.member_id = m.id AND c.activity_id = $2 AND c.kind = 'in'"
        "   AND c.status IN ('accepted', 'pending_review'))"
        " AND NOT EXISTS (SELECT 1 FROM points_ledger l WHERE l.member_id = m.id AND l.source_type = 'absence'"
        "   AND l.source_id = $2)"
        " AND NOT EXISTS (SELECT 1 FROM leave_requests lr WHERE lr.member_id = m.id AND lr.activity_id = $2"
        "   AND lr.status = 'approved')"
        " ORDER BY m.id",  # member locks always in id order: two closes cannot deadlock
        org_path + "%", activity_id,
    )
    for member_id, member_path in absentees:
        await ctx.db.lock_member(member_id)
        await points.award(
            ctx, member_id=member_id, org_path=member_path, rule=rule, units=1, occurred_at=ends_at,
            source_type="absence", source_id=activity_id, created_by=closed_by,
        )
    return len(absentees)
