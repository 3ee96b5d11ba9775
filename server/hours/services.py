"""Volunteer hours (DESIGN §5) from a check-in/check-out pair: computation, review, locks, corrections.

- hours = out − in, clipped to the activity's schedule, rounded down to 0.5 h (under 0.5 h is 0).
- A record counts toward the local day (settings time zone) its service started. Up to 8 h a member
  a local day are approved at check-out and earn points at once; the excess of a record waits for
  staff review (status ``pending``, the approved part already counts).
- Staff (their stations) and admins/secretaries (their org subtrees, by the member's org or the
  station's) review: approve all or part (a multiple of 0.5, ≤ the computed hours) or reject.
- Staff may complete a forgotten check-out (``staff_manual``), never later than the schedule.
- Records lock 10 working days (Monday–Friday; no holiday calendar) after the activity's local end
  date, at local midnight. After that a change is a correction request approved by an
  admin/secretary; the correction row keeps the old and new values, who and when.
- Points: the ``volunteer_hour`` rule (per approved hour, capped per day by the points core).
  Lower or rejected hours reverse the record's entries (append-only reversal entries) and award
  the new amount again within the caps; higher hours award the difference.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.core.auth import Principal
from server.core.context import Context
from server.core.errors import APIError, conflict, forbidden, not_found
from server.core.sql import Where
from server.core.timeutil import utcnow
from server.hours.schemas import (
    CompleteCheckoutIn,
    CorrectionDecisionIn,
    CorrectionIn,
    CorrectionOut,
    HoursDecisionIn,
    HoursDetailOut,
    HoursOut,
    MyHoursOut,
)
from server.points import services as points

AUTO_APPROVE_HOURS_PER_DAY = 8.0
LOCK_WORKING_DAYS = 10
POINTS_TRIGGER = "volunteer_hour"


# ---------------------------------------------------------------------- computation


def compute_hours(in_at: datetime, out_at: datetime, starts_at: datetime, ends_at: datetime) -> float:
    """Clipped to [starts_at, ends_at], rounded down to 0.5 h; under 0.5 h (or out before in) is 0."""
    start = max(in_at, starts_at)
    end = min(out_at, ends_at)
    seconds = (end - start).total_seconds()
    if seconds <= 0:
        return 0.0
    return math.floor(seconds / 1800) / 2


def service_start(in_at: datetime, starts_at: datetime) -> datetime:
    """When the counted service began: the check-in, or the start if the member came early."""
    return max(in_at, starts_at)


def locks_at(ends_at: datetime, tz: ZoneInfo, working_days: int = LOCK_WORKING_DAYS) -> datetime:
    """Local midnight after the ``working_days``-th Monday–Friday following the activity's local end
    date (no public-holiday calendar), in UTC."""
    day = ends_at.astimezone(tz).date()
    counted = 0
    while counted < working_days:
        day += timedelta(days=1)
        if day.weekday() < 5:
            counted += 1
    return datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)


def is_locked(ends_at: datetime, tz: ZoneInfo, now: datetime | None = None) -> bool:
    return (now or utcnow()) >= locks_at(ends_at, tz)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


async def _day_total(ctx: Context, member_id: int, day: date) -> float:
    return float(await ctx.db.fetchval(
        "SELECT COALESCE(SUM(approved_hours), 0) FROM volunteer_hours"
        " WHERE member_id = $1 AND local_date = $2 AND status <> 'rejected'",
        member_id, day,
    ))


async def record_hours(
    ctx: Context,
    *,
    member_id: int,
    org_path: str,
    activity: dict[str, Any],
    checkin_in_id: int,
    checkin_out_id: int,
    in_at: datetime,
    out_at: datetime,
) -> float:
    """Store the hours record (caller holds the member's write unit); returns the points awarded now.

    The part of the record that keeps the member's local day within 8 h is approved at once; the
    rest waits for review (status ``pending``)."""
    hours = compute_hours(in_at, out_at, activity["starts_at"], activity["ends_at"])
    started = service_start(in_at, activity["starts_at"])
    day = started.astimezone(ctx.settings.tz).date()
    rule = await points.rule_for_trigger(ctx, POINTS_TRIGGER, day)
    if rule is not None and rule.needs_approval:
        auto = 0.0  # the rule wants every hour reviewed: nothing is approved automatically
    else:
        auto = min(hours, max(0.0, AUTO_APPROVE_HOURS_PER_DAY - await _day_total(ctx, member_id, day)))
    status = "approved" if auto == hours else "pending"
    record_id = await ctx.db.fetchval(
        "INSERT INTO volunteer_hours (member_id, activity_id, checkin_in_id, checkin_out_id, local_date, hours,"
        " approved_hours, auto_hours, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) RETURNING id",
        member_id, activity["id"], checkin_in_id, checkin_out_id, day, hours, auto, status, utcnow(),
    )
    if auto <= 0 or rule is None:
        return 0.0
    return await points.award(
        ctx, member_id=member_id, org_path=org_path, rule=rule, units=auto, occurred_at=started,
        source_type="hours", source_id=int(record_id),
    )


async def _recredit(
    ctx: Context, *, record_id: int, member_id: int, org_path: str, old: float, new: float, occurred_at: datetime,
    by: int, reason: str,
) -> None:
    """Move the record's points from ``old`` to ``new`` counted hours (append-only)."""
    if new == old:
        return
    day = occurred_at.astimezone(ctx.settings.tz).date()
    rule = await points.rule_for_trigger(ctx, POINTS_TRIGGER, day)
    if new > old:
        if rule is not None:
            await points.award(
                ctx, member_id=member_id, org_path=org_path, rule=rule, units=new - old, occurred_at=occurred_at,
                source_type="hours", source_id=record_id, created_by=by, reason=reason,
            )
        return
    await points.reverse_source(ctx, "hours", record_id, created_by=by, reason=f"{reason}，冲销原积分")
    if new > 0 and rule is not None:
        await points.award(
            ctx, member_id=member_id, org_path=org_path, rule=rule, units=new, occurred_at=occurred_at,
            source_type="hours", source_id=record_id, created_by=by, reason=reason,
        )


# ---------------------------------------------------------------------- reading

_SELECT = """
SELECT h.id, h.member_id, m.name, o.name, h.activity_id, a.title, a.type, a.station_id, s.name, a.starts_at,
       a.ends_at, ci.scanned_at, co.scanned_at, co.method, h.local_date, h.hours, h.auto_hours, h.approved_hours,
       h.status,
       COALESCE((SELECT SUM(l.delta) FROM points_ledger l WHERE l.source_type = 'hours' AND l.source_id = h.id), 0),
       h.decided_by, du.display_name, h.decided_at, h.note,
       (SELECT COUNT(*) FROM volunteer_hours_corrections c WHERE c.hours_id = h.id AND c.status = 'pending'),
       h.created_at, m.org_path, s.org_path
FROM volunteer_hours h
JOIN members m ON m.id = h.member_id
JOIN orgs o ON o.id = m.org_id
JOIN activities a ON a.id = h.activity_id
JOIN stations s ON s.id = a.station_id
JOIN checkins ci ON ci.id = h.checkin_in_id
LEFT JOIN checkins co ON co.id = h.checkin_out_id
LEFT JOIN users du ON du.id = h.decided_by
"""

# indexes into a _SELECT row
_MEMBER_ID, _STATION_ID, _STARTS, _ENDS, _IN_AT, _COMPUTED, _APPROVED, _STATUS = 1, 7, 9, 10, 11, 15, 17, 18
_MEMBER_PATH, _STATION_PATH = 26, 27


def _hours_out(ctx: Context, row: Any, now: datetime) -> HoursOut:
    lock = locks_at(row[_ENDS], ctx.settings.tz)
    computed, approved, status = float(row[15]), float(row[17]), row[18]
    return HoursOut(
        id=row[0], member_id=row[1], member_name=row[2], org_name=row[3], activity_id=row[4], activity_title=row[5],
        activity_type=row[6], station_id=row[7], station_name=row[8], activity_starts_at=row[9],
        activity_ends_at=row[10], checked_in_at=row[11], checked_out_at=row[12], checkout_method=row[13],
        local_date=row[14], computed_hours=computed, auto_hours=float(row[16]), hours=approved,
        pending_hours=max(0.0, computed - approved) if status == "pending" else 0.0, status=status,
        locked=now >= lock, locks_at=lock, points=float(row[19]), decided_by=row[20], decided_by_name=row[21],
        decided_at=row[22], note=row[23], correction_pending=bool(row[24]), created_at=row[25],
    )


def _sees(user: Principal, row: Any) -> bool:
    return row[_MEMBER_ID] == user.member_id or _reviews(user, row)


def _reviews(user: Principal, row: Any) -> bool:
    """Staff of the activity's station, or an admin/secretary of the member's or the station's org subtree."""
    return (
        row[_STATION_ID] in user.staff_station_ids
        or user.manages_path(row[_MEMBER_PATH])
        or user.manages_path(row[_STATION_PATH])
    )


def _manages(user: Principal, row: Any) -> bool:
    return user.manages_path(row[_MEMBER_PATH]) or user.manages_path(row[_STATION_PATH])


def _scope(user: Principal, where: Where) -> None:
    alternatives = []
    if user.member_id is not None:
        alternatives.append(where.sub().add("h.member_id = {}", user.member_id))
    if user.staff_station_ids:
        alternatives.append(where.sub().any_of("a.station_id", list(user.staff_station_ids)))
    if user.manager_paths:
        alternatives.append(where.sub().prefix_any("m.org_path", user.manager_paths))
        alternatives.append(where.sub().prefix_any("s.org_path", user.manager_paths))
    if not alternatives:
        where.add("1 = 0")
    else:
        where.either(*alternatives)


async def _row(ctx: Context, record_id: int) -> Any:
    return await ctx.db.fetchrow(_SELECT + " WHERE h.id = $1", record_id)


async def _visible_row(ctx: Context, user: Principal, record_id: int) -> Any:
    row = await _row(ctx, record_id)
    if row is None or not _sees(user, row):
        raise not_found("志愿时长记录")
    return row


async def list_hours(
    ctx: Context,
    user: Principal,
    *,
    status: str | None = None,
    activity_id: int | None = None,
    member_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[HoursOut]:
    if date_from and date_to and date_to < date_from:
        raise APIError(400, "invalid_dates", "结束日期不能早于开始日期")
    where = Where()
    _scope(user, where)
    if status is not None:
        where.add("h.status = {}", status)
    if activity_id is not None:
        where.add("h.activity_id = {}", activity_id)
    if member_id is not None:
        where.add("h.member_id = {}", member_id)
    if date_from is not None:
        where.add("h.local_date >= {}", date_from)
    if date_to is not None:
        where.add("h.local_date <= {}", date_to)
    rows = await ctx.db.fetch(
        _SELECT + f" WHERE {where.sql} ORDER BY h.local_date DESC, h.id DESC LIMIT {int(limit)} OFFSET {int(offset)}",
        *where.args,
    )
    now = utcnow()
    return [_hours_out(ctx, r, now) for r in rows]


async def get_hours(ctx: Context, user: Principal, record_id: int) -> HoursDetailOut:
    row = await _visible_row(ctx, user, record_id)
    return await _detail(ctx, row)


async def _detail(ctx: Context, row: Any) -> HoursDetailOut:
    out = _hours_out(ctx, row, utcnow())
    corrections = await _corrections(ctx, "c.hours_id = $1", row[0])
    return HoursDetailOut(**{f: getattr(out, f) for f in out.__struct_fields__}, corrections=corrections)


async def my_hours(ctx: Context, user: Principal, year: int | None) -> MyHoursOut:
    if user.member_id is None:
        raise forbidden("当前账号不是党员账号，没有志愿时长")
    year = year or utcnow().astimezone(ctx.settings.tz).year
    first, last = date(year, 1, 1), date(year, 12, 31)
    totals = await ctx.db.fetchrow(
        "SELECT COALESCE(SUM(CASE WHEN status <> 'rejected' THEN approved_hours ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN status = 'pending' THEN hours - approved_hours ELSE 0 END), 0), COUNT(*)"
        " FROM volunteer_hours WHERE member_id = $1 AND local_date >= $2 AND local_date <= $3",
        user.member_id, first, last,
    )
    rows = await ctx.db.fetch(
        _SELECT + " WHERE h.member_id = $1 AND h.local_date >= $2 AND h.local_date <= $3"
        " ORDER BY h.local_date DESC, h.id DESC LIMIT 500",
        user.member_id, first, last,
    )
    now = utcnow()
    return MyHoursOut(
        year=year, total_hours=float(totals[0]), pending_hours=max(0.0, float(totals[1])), records=int(totals[2]),
        items=[_hours_out(ctx, r, now) for r in rows],
    )


# ---------------------------------------------------------------------- review


def _locked_error() -> APIError:
    return conflict("locked", f"记录已锁定（活动结束已满 {LOCK_WORKING_DAYS} 个工作日），如需修改请提交更正申请")


async def decide(ctx: Context, user: Principal, record_id: int, data: HoursDecisionIn) -> HoursDetailOut:
    row = await _visible_row(ctx, user, record_id)
    if not _reviews(user, row):
        raise forbidden("只有服务站工作人员、支部书记或管理员可以审核志愿时长")
    if row[_MEMBER_ID] == user.member_id:
        raise forbidden("不能审核自己的志愿时长")
    if not data.approve and data.hours is not None:
        raise APIError(400, "hours_with_reject", "驳回时不能填写核定时长")
    db = ctx.db
    async with db.transaction():
        await db.lock_member(row[_MEMBER_ID])
        row = await _row(ctx, record_id)  # again under the lock: two reviewers at once apply one after the other
        if is_locked(row[_ENDS], ctx.settings.tz):
            raise _locked_error()
        computed, old = float(row[_COMPUTED]), float(row[_APPROVED])
        if data.approve:
            new = computed if data.hours is None else float(data.hours)
            if new > computed:
                raise APIError(400, "hours_exceed", f"核定时长不能超过签到签退计算的 {_fmt(computed)} 小时")
            status, reason = "approved", "志愿服务时长审核通过"
        else:
            new, status, reason = 0.0, "rejected", "志愿服务时长审核不通过"
        await _recredit(
            ctx, record_id=record_id, member_id=row[_MEMBER_ID], org_path=row[_MEMBER_PATH], old=old, new=new,
            occurred_at=service_start(row[_IN_AT], row[_STARTS]), by=user.user_id, reason=reason,
        )
        await db.execute(
            "UPDATE volunteer_hours SET approved_hours = $1, status = $2, decided_by = $3, decided_at = $4, note = $5"
            " WHERE id = $6",
            new, status, user.user_id, utcnow(), data.note or None, record_id,
        )
    return await _detail(ctx, await _row(ctx, record_id))


async def complete_checkout(ctx: Context, user: Principal, data: CompleteCheckoutIn) -> HoursDetailOut:
    """Staff record a forgotten check-out (method ``staff_manual``) and the hours follow as at check-out."""
    if not user.is_staff_like:
        raise forbidden("只有服务站工作人员可以补录签退")
    activity = await ctx.db.fetchrow(
        "SELECT a.id, a.station_id, s.org_path, a.starts_at, a.ends_at, a.records_hours, a.status, a.type"
        " FROM activities a JOIN stations s ON s.id = a.station_id WHERE a.id = $1",
        data.activity_id,
    )
    if activity is None or not user.reaches_station(activity[1], activity[2]):
        raise not_found("活动")
    if not activity[5]:
        raise conflict("no_hours", "该活动不记录志愿时长，无需签退")
    if activity[6] == "cancelled":
        raise conflict("activity_cancelled", "活动已取消")
    out_at = data.checked_out_at.astimezone(UTC)
    now = utcnow()
    tz = ctx.settings.tz
    if out_at > activity[4]:
        end = activity[4].astimezone(tz)
        raise APIError(400, "beyond_schedule", f"补录的签退时间不能晚于活动结束时间（{end:%Y-%m-%d %H:%M}）")
    if out_at > now + timedelta(seconds=ctx.settings.clock_skew_seconds):
        raise APIError(400, "future_time", "签退时间不能晚于当前时间")
    if is_locked(activity[4], tz, now):
        raise conflict("locked", f"活动结束已满 {LOCK_WORKING_DAYS} 个工作日，记录已锁定，不能再补录签退")
    db = ctx.db
    async with db.transaction():
        await db.lock_member(data.member_id)
        checked_in = await db.fetchrow(
            "SELECT id, scanned_at, status FROM checkins WHERE member_id = $1 AND activity_id = $2 AND kind = 'in'"
            " AND status IN ('accepted', 'pending_review')",
            data.member_id, data.activity_id,
        )
        if checked_in is None:
            raise conflict("no_checkin", "该党员在此活动没有签到记录，不能补录签退")
        if checked_in[2] != "accepted":
            raise conflict("checkin_pending", "该党员的签到尚待审核，请先审核签到")
        already = await db.fetchval(
            "SELECT id FROM checkins WHERE member_id = $1 AND activity_id = $2 AND kind = 'out'"
            " AND status IN ('accepted', 'pending_review')",
            data.member_id, data.activity_id,
        )
        if already is not None:
            raise conflict("already_checked_out", "该党员已经签退，不能重复补录")
        if out_at <= checked_in[1]:
            raise APIError(400, "invalid_time", "签退时间必须晚于签到时间")
        member = await db.fetchrow("SELECT id, org_path FROM members WHERE id = $1", data.member_id)
        out_id = await db.fetchval(
            "INSERT INTO checkins (member_id, activity_id, station_id, kind, method, status, reason, scanned_at,"
            " received_at, local_date, staff_user_id, kiosk_id)"
            " VALUES ($1, $2, $3, 'out', 'staff_manual', 'accepted', NULL, $4, $5, $6, $7, NULL)"
            " ON CONFLICT (member_id, activity_id, kind) WHERE activity_id IS NOT NULL"
            " AND status IN ('accepted', 'pending_review') DO NOTHING RETURNING id",
            data.member_id, data.activity_id, activity[1], out_at, now, out_at.astimezone(tz).date(), user.user_id,
        )
        if out_id is None:
            raise conflict("already_checked_out", "该党员已经签退，不能重复补录")
        await record_hours(
            ctx, member_id=member[0], org_path=member[1],
            activity={"id": activity[0], "starts_at": activity[3], "ends_at": activity[4]},
            checkin_in_id=checked_in[0], checkin_out_id=int(out_id), in_at=checked_in[1], out_at=out_at,
        )
        record_id = await db.fetchval("SELECT id FROM volunteer_hours WHERE checkin_in_id = $1", checked_in[0])
    return await _detail(ctx, await _row(ctx, int(record_id)))


# ---------------------------------------------------------------------- corrections

_CORRECTION_SELECT = """
SELECT c.id, c.hours_id, h.member_id, m.name, h.activity_id, a.title, c.old_hours, c.new_hours, c.reason, c.status,
       c.requested_by, ru.display_name, c.requested_at, c.decided_by, du.display_name, c.decided_at, c.note
FROM volunteer_hours_corrections c
JOIN volunteer_hours h ON h.id = c.hours_id
JOIN members m ON m.id = h.member_id
JOIN activities a ON a.id = h.activity_id
JOIN stations s ON s.id = a.station_id
LEFT JOIN users ru ON ru.id = c.requested_by
LEFT JOIN users du ON du.id = c.decided_by
"""


def _correction_out(row: Any) -> CorrectionOut:
    return CorrectionOut(
        id=row[0], hours_id=row[1], member_id=row[2], member_name=row[3], activity_id=row[4], activity_title=row[5],
        old_hours=float(row[6]), new_hours=float(row[7]), reason=row[8], status=row[9], requested_by=row[10],
        requested_by_name=row[11], requested_at=row[12], decided_by=row[13], decided_by_name=row[14],
        decided_at=row[15], note=row[16],
    )


async def _corrections(ctx: Context, condition: str, *args: Any, suffix: str = "ORDER BY c.id") -> list[CorrectionOut]:
    rows = await ctx.db.fetch(_CORRECTION_SELECT + f" WHERE {condition} {suffix}", *args)
    return [_correction_out(r) for r in rows]


async def request_correction(ctx: Context, user: Principal, record_id: int, data: CorrectionIn) -> CorrectionOut:
    """The member or a reviewer asks to change a locked record's hours."""
    row = await _visible_row(ctx, user, record_id)
    if not is_locked(row[_ENDS], ctx.settings.tz):
        raise conflict("not_locked", "记录尚未锁定，请由工作人员直接审核修改，无需更正申请")
    schedule = compute_hours(row[_STARTS], row[_ENDS], row[_STARTS], row[_ENDS])
    if data.hours > schedule:
        raise APIError(400, "hours_exceed", f"更正后的时长不能超过活动时长 {_fmt(schedule)} 小时")
    db = ctx.db
    async with db.transaction():
        await db.lock_member(row[_MEMBER_ID])
        current = await db.fetchrow("SELECT approved_hours FROM volunteer_hours WHERE id = $1", record_id)
        if float(current[0]) == float(data.hours):
            raise APIError(400, "no_change", "更正后的时长与当前时长相同")
        if await db.fetchval(
            "SELECT id FROM volunteer_hours_corrections WHERE hours_id = $1 AND status = 'pending'", record_id
        ) is not None:
            raise conflict("correction_pending", "该记录已有待审批的更正申请")
        correction_id = await db.fetchval(
            "INSERT INTO volunteer_hours_corrections (hours_id, old_hours, new_hours, reason, status, requested_by,"
            " requested_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6) RETURNING id",
            record_id, float(current[0]), float(data.hours), data.reason, user.user_id, utcnow(),
        )
    [out] = await _corrections(ctx, "c.id = $1", correction_id)
    return out


async def list_corrections(
    ctx: Context, user: Principal, *, status: str | None, hours_id: int | None, limit: int, offset: int
) -> list[CorrectionOut]:
    where = Where()
    _scope(user, where)
    if status is not None:
        where.add("c.status = {}", status)
    if hours_id is not None:
        where.add("c.hours_id = {}", hours_id)
    return await _corrections(
        ctx, where.sql, *where.args, suffix=f"ORDER BY c.requested_at DESC, c.id DESC LIMIT {int(limit)} OFFSET {int(offset)}"
    )


async def decide_correction(ctx: Context, user: Principal, correction_id: int, data: CorrectionDecisionIn) -> CorrectionOut:
    found = await ctx.db.fetchrow(
        "SELECT hours_id, requested_by FROM volunteer_hours_corrections WHERE id = $1", correction_id
    )
    if found is None:
        raise not_found("更正申请")
    row = await _row(ctx, found[0])
    if row is None or not _sees(user, row):
        raise not_found("更正申请")
    if not _manages(user, row):
        raise forbidden("只有街道管理员或支部书记可以审批更正申请")
    if row[_MEMBER_ID] == user.member_id:
        raise forbidden("不能审批自己的志愿时长更正")
    if found[1] == user.user_id:
        raise forbidden("不能审批自己提出的更正申请")
    db = ctx.db
    async with db.transaction():
        await db.lock_member(row[_MEMBER_ID])
        current = await db.fetchrow(
            "SELECT c.status, c.new_hours, h.approved_hours FROM volunteer_hours_corrections c"
            " JOIN volunteer_hours h ON h.id = c.hours_id WHERE c.id = $1",
            correction_id,
        )
        if current[0] != "pending":
            raise conflict("already_decided", "该更正申请已处理，不能重复审批")
        now = utcnow()
        if data.approve:
            new, old = float(current[1]), float(current[2])
            await _recredit(
                ctx, record_id=row[0], member_id=row[_MEMBER_ID], org_path=row[_MEMBER_PATH], old=old, new=new,
                occurred_at=service_start(row[_IN_AT], row[_STARTS]), by=user.user_id, reason="志愿服务时长更正",
            )
            await db.execute(
                "UPDATE volunteer_hours SET approved_hours = $1, status = $2 WHERE id = $3",
                new, "approved" if new > 0 else "rejected", row[0],
            )
            await db.execute(
                "UPDATE volunteer_hours_corrections SET status = 'approved', old_hours = $1, decided_by = $2,"
                " decided_at = $3, note = $4 WHERE id = $5",
                old, user.user_id, now, data.note or None, correction_id,
            )
        else:
            await db.execute(
                "UPDATE volunteer_hours_corrections SET status = 'rejected', decided_by = $1, decided_at = $2, note = $3"
                " WHERE id = $4",
                user.user_id, now, data.note or None, correction_id,
            )
    [out] = await _corrections(ctx, "c.id = $1", correction_id)
    return out
