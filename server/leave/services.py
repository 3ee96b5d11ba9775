"""请假: a member (or staff on their behalf) asks leave for a required activity — before it or up to
24 h after it ends; staff of the station or a secretary/admin of the activity's org decides.

Approved leave makes the member 'excused': attendance shows 请假 and closing the activity does not
apply the absence rule to them. Approved after the close, the absence entry is reversed (append-only).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.activities.services import visible_activity
from server.core.auth import Principal
from server.core.context import Context
from server.core.errors import APIError, not_found
from server.core.sql import Where
from server.core.timeutil import utcnow
from server.leave.schemas import LeaveDecisionIn, LeaveIn, LeaveOut
from server.points import race as points_race
from server.points import services as points

LATE_LIMIT = timedelta(hours=24)
ACTIVE_MEMBER_STATUSES = ("normal", "inflow")

_SELECT = (
    "SELECT lr.id, lr.activity_id, a.title, a.starts_at, lr.member_id, m.name, o.name, lr.reason, lr.status,"
    " lr.created_at, lr.decided_at, lr.note FROM leave_requests lr"
    " JOIN activities a ON a.id = lr.activity_id JOIN stations s ON s.id = a.station_id"
    " JOIN members m ON m.id = lr.member_id JOIN orgs o ON o.id = m.org_id"
)


def _out(row: Any, restored: float = 0.0) -> LeaveOut:
    return LeaveOut(
        id=row[0], activity_id=row[1], activity_title=row[2], activity_starts_at=row[3], member_id=row[4],
        member_name=row[5], org_name=row[6], reason=row[7], status=row[8], created_at=row[9], decided_at=row[10],
        note=row[11], points_restored=restored,
    )


async def _one(ctx: Context, leave_id: int) -> Any:
    return await ctx.db.fetchrow(_SELECT + " WHERE lr.id = $1", leave_id)


async def ask_leave(ctx: Context, user: Principal, activity_id: int, data: LeaveIn) -> LeaveOut:
    on_behalf = data.member_id is not None and data.member_id != user.member_id
    activity, row = await visible_activity(ctx, user, activity_id, manage=on_behalf)
    member_id = data.member_id if on_behalf else user.member_id
    if member_id is None:
        raise APIError(400, "not_a_member", "此账号没有关联党员信息，请由工作人员代为请假")
    member = await ctx.db.fetchrow("SELECT id, org_path, status FROM members WHERE id = $1", member_id)
    if member is None or (on_behalf and not user.sees_member(member_id, member[1])):
        raise not_found("党员")
    if activity.status == "cancelled":
        raise APIError(409, "activity_cancelled", "活动已取消，无需请假")
    if not activity.required or not str(member[1]).startswith(row[18]) or member[2] not in ACTIVE_MEMBER_STATUSES:
        raise APIError(400, "not_required", "该活动不要求此党员参加，无需请假")
    now = utcnow()
    if now > activity.ends_at + LATE_LIMIT:
        raise APIError(400, "too_late", "活动结束已超过 24 小时，不能再请假")
    present = await ctx.db.fetchval(
        "SELECT count(*) FROM checkins WHERE member_id = $1 AND activity_id = $2 AND kind = 'in' AND status = 'accepted'",
        member_id, activity_id,
    )
    if present:
        raise APIError(409, "already_present", "已经签到，无需请假")
    async with ctx.db.transaction():
        await ctx.db.lock_member(member_id)
        existing = await ctx.db.fetchrow(
            "SELECT id, status FROM leave_requests WHERE activity_id = $1 AND member_id = $2", activity_id, member_id
        )
        if existing is not None and existing[1] in ("pending", "approved"):
            raise APIError(409, "leave_exists", "已经提交过请假申请" + ("，已批准" if existing[1] == "approved" else "，等待审批"))
        if existing is None:
            leave_id = await ctx.db.fetchval(
                "INSERT INTO leave_requests (activity_id, member_id, reason, status, created_by, created_at)"
                " VALUES ($1, $2, $3, 'pending', $4, $5) RETURNING id",
                activity_id, member_id, data.reason.strip(), user.user_id, now,
            )
        else:  # asked again after a rejection or a withdrawal
            leave_id = existing[0]
            await ctx.db.execute(
                "UPDATE leave_requests SET reason = $1, status = 'pending', created_by = $2, created_at = $3,"
                " decided_by = NULL, decided_at = NULL, note = NULL WHERE id = $4",
                data.reason.strip(), user.user_id, now, leave_id,
            )
    return _out(await _one(ctx, int(leave_id)))


async def list_leave(
    ctx: Context, user: Principal, *, status: str | None, activity_id: int | None, limit: int
) -> list[LeaveOut]:
    where = Where()
    if user.is_staff_like:
        reach = where.sub()
        reach.any_of("a.station_id", list(user.staff_station_ids))
        managed = where.sub()
        managed.prefix_any("a.org_path", user.manager_paths)
        own = where.sub()
        own.add("lr.member_id = {}", user.member_id if user.member_id is not None else -1)
        where.either(reach, managed, own)
    else:
        where.add("lr.member_id = {}", user.member_id if user.member_id is not None else -1)
    if status is not None:
        where.add("lr.status = {}", status)
    if activity_id is not None:
        where.add("lr.activity_id = {}", activity_id)
    rows = await ctx.db.fetch(
        _SELECT + f" WHERE {where.sql} ORDER BY lr.created_at DESC, lr.id DESC LIMIT {int(limit)}", *where.args
    )
    return [_out(r) for r in rows]


async def decide(ctx: Context, user: Principal, leave_id: int, data: LeaveDecisionIn) -> LeaveOut:
    row = await _one(ctx, leave_id)
    if row is None:
        raise not_found("请假申请")
    # Their own request is one they can see (403), whoever they are; others need reach (else 404).
    if row[4] == user.member_id:  # like hours, visits and adjustments: nobody decides their own
        raise APIError(403, "own_request", "不能审批自己的请假申请")
    await visible_activity(ctx, user, row[1], manage=True)
    restored = 0.0
    async with ctx.db.transaction():
        await ctx.db.lock_member(row[4])
        attendance = await points_race.attendance_state(ctx, row[1], row[4])
        changed = await ctx.db.fetchval(
            "UPDATE leave_requests SET status = $1, decided_by = $2, decided_at = $3, note = $4"
            " WHERE id = $5 AND status = 'pending' RETURNING id",
            "approved" if data.approve else "rejected", user.user_id, utcnow(), data.note.strip() or None, leave_id,
        )
        if changed is None:
            raise APIError(409, "already_decided", "该请假申请已处理过")
        if data.approve:
            restored = await _restore_absence(ctx, user, row[4], row[1])
            await points_race.attendance_changed(ctx, row[1], row[4], attendance)  # absent → excused
    return _out(await _one(ctx, leave_id), restored)


async def _restore_absence(ctx: Context, user: Principal, member_id: int, activity_id: int) -> float:
    """Leave approved after the close: reverse this member's absence entry for the activity."""
    return await points.reverse_source(
        ctx, "absence", activity_id, member_id=member_id, created_by=user.user_id, reason="请假获批，撤销缺席扣分"
    )


async def withdraw(ctx: Context, user: Principal, leave_id: int) -> LeaveOut:
    row = await _one(ctx, leave_id)
    if row is None or row[4] != user.member_id:
        raise not_found("请假申请")
    async with ctx.db.transaction():  # every write is a unit (SQLite: the single writer)
        changed = await ctx.db.fetchval(
            "UPDATE leave_requests SET status = 'withdrawn' WHERE id = $1 AND status = 'pending' RETURNING id", leave_id
        )
    if changed is None:
        raise APIError(409, "already_decided", "该请假申请已处理过，不能撤回")
    return _out(await _one(ctx, leave_id))
