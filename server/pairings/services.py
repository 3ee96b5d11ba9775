"""一帮一 pairings: a helper member and a counterpart, visits recorded (also offline, replayed later),
verified by staff or the branch secretary for points (rule trigger ``pairing_visit``, caps apply).

Scope follows the helper's current org (``members.org_path``): managers (admin/secretary) see their
subtrees, station staff the subtree of their station's org, a member their own pairings. Out of scope
is 404 like a missing id. Creating, editing, recording on someone's behalf and verifying need that
reach (a member's own pairing is not enough for those, except recording their own visits).

Visits are idempotent by (helper, client_uuid) — a unique index — so a replay from the PWA outbox,
twice or at once, returns the stored visit. Approval awards points inside the same write unit; a
later rejection appends reversal entries (the ledger is never edited).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec

from server.core.auth import Principal
from server.core.context import Context
from server.core.errors import APIError, conflict, forbidden, not_found
from server.core.sql import Where, path_ids, placeholders
from server.core.timeutil import utcnow
from server.pairings.schemas import (
    MAX_ID,
    OverdueBranch,
    OverdueItem,
    OverdueOut,
    PairingDetailOut,
    PairingIn,
    PairingOut,
    PairingPatch,
    StatsOut,
    StatsRow,
    VerifyIn,
    VerifyOut,
    VisitIn,
    VisitOut,
)
from server.points import services as points

ACTIVE_MEMBER_STATUSES = ("normal", "inflow")
LIVE_VISIT_STATUSES = ("pending", "approved")  # count for "last visit" / overdue
FUTURE_SKEW = timedelta(minutes=5)
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
SOURCE_TYPE = "visit"  # points_ledger.source_type of visit awards and their reversals
GROUP_KIND = "group"  # 党小组: stats and overdue lists roll a group up to its branch

_PAIRING_SELECT = """
SELECT p.id, p.member_id, m.name, m.org_id, o.name, p.kind, p.name, p.category, p.contact, p.goals, p.start_date,
       p.end_date, p.interval_days, p.status, p.created_at, p.updated_at, m.org_path,
       (SELECT MAX(v.visited_at) FROM pairing_visits v WHERE v.pairing_id = p.id AND v.status IN ('pending', 'approved')),
       (SELECT COUNT(*) FROM pairing_visits v WHERE v.pairing_id = p.id),
       (SELECT COUNT(*) FROM pairing_visits v WHERE v.pairing_id = p.id AND v.status = 'approved')
FROM pairings p JOIN members m ON m.id = p.member_id JOIN orgs o ON o.id = m.org_id
"""

_VISIT_SELECT = """
SELECT v.id, v.pairing_id, v.member_id, m.name, p.name, v.client_uuid, v.visited_at, v.mode, v.content, v.help_given,
       v.status, v.method, v.recorded_by, v.created_at, v.verified_by, v.verified_at, v.verify_note,
       COALESCE((SELECT SUM(l.delta) FROM points_ledger l WHERE l.source_type = 'visit' AND l.source_id = v.id), 0),
       m.org_path, v.problems, v.outcome
FROM pairing_visits v JOIN pairings p ON p.id = v.pairing_id JOIN members m ON m.id = v.member_id
"""


# ---------------------------------------------------------------------------- helpers


def today(ctx: Context) -> date:
    return utcnow().astimezone(ctx.settings.tz).date()


def _ts(value: Any) -> datetime | None:
    """An aggregate (MAX) loses SQLite's declared type: parse the stored text back into an aware time."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def mask_contact(contact: str) -> str:
    """'13912345678' → '139****5678'; anything else keeps its first character: '微信 abc' → '微***'."""
    text = contact.strip()
    digits = sum(ch.isdigit() for ch in text)
    if len(text) >= 7 and digits >= len(text) - 2:
        return text[:3] + "****" + text[-4:]
    return (text[:1] or "*") + "***"


def _text(value: str, field: str, *, required: bool = False) -> str:
    if "\x00" in value:
        raise APIError(400, "invalid_text", f"{field}包含不允许的字符")
    value = value.strip()
    if required and not value:
        raise APIError(400, "empty_text", f"{field}不能为空")
    return value


def _check_date(value: date | None, field: str) -> None:
    if value is not None and not (EARLIEST <= value <= LATEST):
        raise APIError(400, "invalid_date", f"{field}超出允许范围（2000-01-01 至 2100-12-31）")


def _reaches(user: Principal, org_path: str) -> bool:
    """Manager of the helper's org subtree, or staff of a station whose org subtree holds the helper."""
    return any(org_path.startswith(p) for p in user.member_reach_paths)


def _sees(user: Principal, member_id: int, org_path: str) -> bool:
    return member_id == user.member_id or _reaches(user, org_path)


@dataclass
class _Due:
    last_visit_at: datetime | None
    last_visit_on: date | None
    due_on: date
    days_overdue: int


def _due(ctx: Context, start: date, interval: int, status: str, last: Any, as_of: date) -> _Due:
    """Due = (later of the last pending/approved visit's local date and start_date) + interval.
    Overdue when today is past it: a visit exactly ``interval`` days ago is still in time."""
    last_at = _ts(last)
    last_on = last_at.astimezone(ctx.settings.tz).date() if last_at else None
    reference = max(start, last_on) if last_on else start
    due_on = reference + timedelta(days=interval)
    overdue = (as_of - due_on).days if status == "active" and as_of > due_on else 0
    return _Due(last_at, last_on, due_on, overdue)


def _pairing_out(ctx: Context, user: Principal, row: Any, *, detail: bool = False, as_of: date | None = None) -> dict[str, Any]:
    org_path = row[16]
    contact = row[8]
    # Lists: full only to managers of the helper's org. Detail: the helper themself needs it too.
    full = user.manages_path(org_path) or (detail and row[1] == user.member_id)
    masked = contact is not None and not full
    due = _due(ctx, row[10], row[12], row[13], row[17], as_of or today(ctx))
    return dict(
        id=row[0], member_id=row[1], member_name=row[2], org_id=row[3], org_name=row[4], kind=row[5], name=row[6],
        category=row[7], contact=mask_contact(contact) if masked else contact, contact_masked=masked, goals=row[9],
        start_date=row[10], end_date=row[11], interval_days=row[12], status=row[13], last_visit_at=due.last_visit_at,
        due_on=due.due_on, days_overdue=due.days_overdue, visit_count=int(row[18]), verified_count=int(row[19]),
        created_at=row[14], updated_at=row[15],
    )


def _visit_out(row: Any) -> VisitOut:
    return VisitOut(
        id=row[0], pairing_id=row[1], member_id=row[2], member_name=row[3], counterpart_name=row[4], client_uuid=row[5],
        visited_at=row[6], mode=row[7], content=row[8], help_given=row[9], status=row[10], method=row[11],
        recorded_by=row[12], created_at=row[13], verified_by=row[14], verified_at=row[15], verify_note=row[16],
        points=float(row[17]), problems=row[19], outcome=row[20],
    )


async def _pairing_row(ctx: Context, user: Principal, pairing_id: int, *, manage: bool = False) -> Any:
    row = await ctx.db.fetchrow(_PAIRING_SELECT + " WHERE p.id = $1", pairing_id) if 1 <= pairing_id <= MAX_ID else None
    if row is None or not (_reaches(user, row[16]) if manage else _sees(user, row[1], row[16])):
        raise not_found("结对")
    return row


async def _scope_where(ctx: Context, user: Principal, org_id: int | None, *, mine: bool) -> Where:
    """Pairings (alias p, helper m) the caller may see, optionally within one org subtree or only their own."""
    where = Where()
    if mine:
        where.add("p.member_id = {}", user.member_id or 0)
    else:
        reach = where.sub()
        reach.prefix_any("m.org_path", user.member_reach_paths)
        own = where.sub()
        own.add("p.member_id = {}", user.member_id or 0)
        where.either(reach, own)
    if org_id is not None:
        path = await ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", org_id)
        # An org outside my reach is 404 like a missing one; my own branch (or an org above it) is fine.
        own_chain = bool(path and user.member_org_path and user.member_org_path.startswith(path))
        if path is None or not (own_chain or _reaches(user, path)):
            raise not_found("组织")
        where.add("m.org_path LIKE {}", path + "%")
    return where


# ---------------------------------------------------------------------------- pairings


async def list_pairings(
    ctx: Context, user: Principal, *, org_id: int | None, status: str | None, mine: bool | None,
    member_id: int | None, limit: int, offset: int,
) -> list[PairingOut]:
    if mine is None:
        mine = not user.is_staff_like
    where = await _scope_where(ctx, user, org_id, mine=mine)
    if status is not None:
        where.add("p.status = {}", status)
    if member_id is not None:
        where.add("p.member_id = {}", member_id)
    rows = await ctx.db.fetch(
        _PAIRING_SELECT + f" WHERE {where.sql} ORDER BY p.status, m.name, p.id LIMIT {int(limit)} OFFSET {int(offset)}",
        *where.args,
    )
    as_of = today(ctx)
    return [PairingOut(**_pairing_out(ctx, user, r, as_of=as_of)) for r in rows]


async def get_pairing(ctx: Context, user: Principal, pairing_id: int) -> PairingDetailOut:
    row = await _pairing_row(ctx, user, pairing_id)
    visits = await ctx.db.fetch(_VISIT_SELECT + " WHERE v.pairing_id = $1 ORDER BY v.visited_at DESC, v.id DESC", pairing_id)
    return PairingDetailOut(**_pairing_out(ctx, user, row, detail=True), visits=[_visit_out(v) for v in visits])


def _validate_span(start: date, end: date | None) -> None:
    _check_date(start, "开始日期")
    _check_date(end, "结束日期")
    if end is not None and end < start:
        raise APIError(400, "invalid_dates", "结束日期不能早于开始日期")


async def create_pairing(ctx: Context, user: Principal, data: PairingIn) -> PairingDetailOut:
    if not user.is_staff_like:
        raise forbidden("只有工作人员、支部书记或管理员可以建立结对")
    member = await ctx.db.fetchrow("SELECT id, org_path, status FROM members WHERE id = $1", data.member_id)
    if member is None or not _reaches(user, member[1]):
        raise not_found("党员")
    if member[2] not in ACTIVE_MEMBER_STATUSES:
        raise conflict("member_inactive", "该党员当前不是正常或流入状态，不能建立结对")
    name = _text(data.name, "结对对象姓名", required=True)
    category = _text(data.category, "对象类别")
    contact = (_text(data.contact, "联系方式") or None) if data.contact is not None else None
    goals = _text(data.goals, "帮扶目标")
    start = data.start_date or today(ctx)
    _validate_span(start, data.end_date)
    now = utcnow()
    async with ctx.db.transaction():
        await ctx.db.lock_member(member[0])
        clash = await ctx.db.fetchval(
            "SELECT id FROM pairings WHERE member_id = $1 AND name = $2 AND kind = $3 AND status = 'active'",
            member[0], name, data.kind,
        )
        if clash is not None:
            raise conflict("pairing_exists", "该党员与此对象已有进行中的结对")
        pairing_id = await ctx.db.fetchval(
            "INSERT INTO pairings (member_id, kind, name, category, contact, goals, start_date, end_date, interval_days,"
            " status, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $11, $11)"
            " RETURNING id",
            member[0], data.kind, name, category, contact, goals, start, data.end_date, data.interval_days, user.user_id, now,
        )
    return await get_pairing(ctx, user, int(pairing_id))


async def update_pairing(ctx: Context, user: Principal, pairing_id: int, data: PairingPatch) -> PairingDetailOut:
    row = await _pairing_row(ctx, user, pairing_id)
    if not _reaches(user, row[16]):  # the helper sees their pairing but may not edit it
        raise forbidden("只有工作人员、支部书记或管理员可以修改结对")
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if "name" in changes:
        changes["name"] = _text(changes["name"], "结对对象姓名", required=True)
    for key, label in (("category", "对象类别"), ("goals", "帮扶目标")):
        if key in changes:
            changes[key] = _text(changes[key], label)
    if changes.get("contact") is not None:
        changes["contact"] = _text(changes["contact"], "联系方式") or None
    current_status, current_end = row[13], row[11]
    local_today = today(ctx)
    status = changes.get("status", current_status)
    if status == "ended" and current_status != "ended" and "end_date" not in changes:
        if current_end is None or current_end > local_today:
            changes["end_date"] = local_today  # ending now
    if status == "active" and current_status == "ended" and "end_date" not in changes:
        changes["end_date"] = None  # resumed: the old end no longer applies
    if status == "ended" and changes.get("end_date", current_end) is None:
        raise APIError(400, "end_date_required", "结束结对需要结束日期")
    _validate_span(changes.get("start_date", row[10]), changes.get("end_date", current_end))
    if changes:
        async with ctx.db.transaction():
            await ctx.db.lock_member(row[1])
            for column, value in changes.items():  # column names come from the Struct's fields only
                await ctx.db.execute(f"UPDATE pairings SET {column} = $1 WHERE id = $2", value, pairing_id)
            await ctx.db.execute("UPDATE pairings SET updated_at = $1 WHERE id = $2", utcnow(), pairing_id)
    return await get_pairing(ctx, user, pairing_id)


# ---------------------------------------------------------------------------- visits


async def _stored_visit(ctx: Context, member_id: int, client_uuid: str, pairing_id: int) -> VisitOut:
    row = await ctx.db.fetchrow(_VISIT_SELECT + " WHERE v.member_id = $1 AND v.client_uuid = $2", member_id, client_uuid)
    assert row is not None
    if row[1] != pairing_id:
        raise conflict("client_uuid_reused", "该 client_uuid 已用于另一个结对的走访记录，请重新生成")
    return _visit_out(row)


async def record_visit(ctx: Context, user: Principal, pairing_id: int, data: VisitIn) -> tuple[VisitOut, bool]:
    """Returns (visit, created). A replay — same helper, same client_uuid — returns the stored visit."""
    row = await _pairing_row(ctx, user, pairing_id)
    helper_id, helper_path = row[1], row[16]
    is_self = helper_id == user.member_id
    if not is_self and not _reaches(user, helper_path):  # pragma: no cover — _pairing_row already said 404
        raise not_found("结对")
    owners = await ctx.db.fetch("SELECT member_id FROM pairing_visits WHERE client_uuid = $1", data.client_uuid)
    if any(owner[0] == helper_id for owner in owners):
        return await _stored_visit(ctx, helper_id, data.client_uuid, pairing_id), False
    if owners:
        raise conflict("client_uuid_taken", "该 client_uuid 已被其他党员的记录使用，请重新生成")
    content = _text(data.content, "走访内容", required=True)
    help_given = _text(data.help_given, "提供的帮助")
    problems = _text(data.problems, "发现的问题")
    outcome = _text(data.outcome, "走访成效")
    now = utcnow()
    if data.visited_at > now + FUTURE_SKEW:
        raise APIError(422, "visited_in_future", "走访时间不能晚于当前时间")
    day = data.visited_at.astimezone(ctx.settings.tz).date()
    start, end, status = row[10], row[11], row[13]
    if day < start:
        raise APIError(422, "before_start", f"走访日期早于结对开始日期（{start.isoformat()}）")
    if end is not None and day > end:
        raise APIError(422, "after_end", f"走访日期晚于结对结束日期（{end.isoformat()}）")
    if status != "active" and end is None:  # pragma: no cover — ending always sets end_date
        raise APIError(422, "pairing_ended", "结对已结束，不能再记录走访")
    async with ctx.db.transaction():
        await ctx.db.lock_member(helper_id)
        visit_id = await ctx.db.fetchval(
            "INSERT INTO pairing_visits (pairing_id, member_id, client_uuid, visited_at, mode, content, help_given,"
            " problems, outcome, status, method, recorded_by, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12)"
            " ON CONFLICT (member_id, client_uuid) DO NOTHING RETURNING id",
            pairing_id, helper_id, data.client_uuid, data.visited_at.astimezone(UTC), data.mode, content, help_given,
            problems, outcome, "self" if is_self else "staff", user.user_id, now,
        )
        if visit_id is None:  # the same submission won a race a moment ago: answer with it
            return await _stored_visit(ctx, helper_id, data.client_uuid, pairing_id), False
    visit = await ctx.db.fetchrow(_VISIT_SELECT + " WHERE v.id = $1", visit_id)
    return _visit_out(visit), True


async def list_visits(
    ctx: Context, user: Principal, *, org_id: int | None, status: str | None, pairing_id: int | None, mine: bool | None,
    limit: int, offset: int,
) -> list[VisitOut]:
    if mine is None:
        mine = not user.is_staff_like
    where = await _scope_where(ctx, user, org_id, mine=mine)
    if status is not None:
        where.add("v.status = {}", status)
    if pairing_id is not None:
        where.add("v.pairing_id = {}", pairing_id)
    rows = await ctx.db.fetch(
        _VISIT_SELECT + f" WHERE {where.sql} ORDER BY v.visited_at DESC, v.id DESC LIMIT {int(limit)} OFFSET {int(offset)}",
        *where.args,
    )
    return [_visit_out(r) for r in rows]


async def verify_visit(ctx: Context, user: Principal, visit_id: int, data: VerifyIn) -> VerifyOut:
    row = await ctx.db.fetchrow(_VISIT_SELECT + " WHERE v.id = $1", visit_id) if 1 <= visit_id <= MAX_ID else None
    if row is None or not _sees(user, row[2], row[18]):
        raise not_found("走访记录")
    if row[2] == user.member_id:
        raise forbidden("不能核实自己的走访记录")
    if not _reaches(user, row[18]):  # pragma: no cover — seeing someone else's visit means reaching them
        raise not_found("走访记录")
    note = _text(data.note, "审核意见")
    member_id, visited_at, org_path = row[2], row[6], row[18]
    delta = 0.0
    rule = None
    async with ctx.db.transaction():
        await ctx.db.lock_member(member_id)
        # Read again under the lock: two reviewers deciding at once must not both apply.
        status = await ctx.db.fetchval("SELECT status FROM pairing_visits WHERE id = $1", visit_id)
        if data.approve and status == "approved":
            raise conflict("already_approved", "该走访已核实通过，不能重复核实")
        if not data.approve and status == "rejected":
            raise conflict("already_rejected", "该走访已被标记为不通过")
        await ctx.db.execute(
            "UPDATE pairing_visits SET status = $1, verified_by = $2, verified_at = $3, verify_note = $4 WHERE id = $5",
            "approved" if data.approve else "rejected", user.user_id, utcnow(), note or None, visit_id,
        )
        if data.approve:
            rule = await points.rule_for_trigger(ctx, "pairing_visit", visited_at.astimezone(ctx.settings.tz).date())
            if rule is not None:
                delta = await points.award(
                    ctx, member_id=member_id, org_path=org_path, rule=rule, units=1, occurred_at=visited_at,
                    source_type=SOURCE_TYPE, source_id=visit_id, created_by=user.user_id,
                )
        elif status == "approved":
            delta = await points.reverse_source(
                ctx, SOURCE_TYPE, visit_id, created_by=user.user_id, reason="一帮一走访核实不通过，冲销积分"
            )
    visit = _visit_out(await ctx.db.fetchrow(_VISIT_SELECT + " WHERE v.id = $1", visit_id))
    if data.approve and rule is None:
        message = "已核实（走访积分规则已停用，未加分）"
    elif data.approve:
        message = f"已核实，积分 +{delta:g}" if delta else "已核实（本周期积分已达上限，未加分）"
    else:
        message = f"已标记为不通过，冲销积分 {delta:g}" if delta else "已标记为不通过"
    return VerifyOut(visit=visit, points_delta=delta, message=message)


# ---------------------------------------------------------------------------- overdue and stats


async def _branches(ctx: Context, org_paths: set[str]) -> dict[str, tuple[int, str]]:
    """Helper org path → its branch (the nearest org that is not a 党小组) as (id, name)."""
    ids = sorted({i for path in org_paths for i in path_ids(path)})
    orgs: dict[int, tuple[str, str]] = {}
    for chunk in (ids[i:i + 1000] for i in range(0, len(ids), 1000)):
        for org_id, name, kind in await ctx.db.fetch(
            f"SELECT id, name, kind FROM orgs WHERE id IN ({placeholders(len(chunk))})", *chunk
        ):
            orgs[org_id] = (name, kind)
    out: dict[str, tuple[int, str]] = {}
    for path in org_paths:
        chain = path_ids(path)
        branch = next((i for i in reversed(chain) if orgs.get(i, ("", GROUP_KIND))[1] != GROUP_KIND), chain[-1])
        out[path] = (branch, orgs.get(branch, ("", ""))[0])
    return out


_SCOPE_PAIRINGS = """
SELECT p.id, p.member_id, m.name, p.name, p.kind, p.category, p.interval_days, p.start_date, p.end_date, p.status,
       m.org_path,
       (SELECT MAX(v.visited_at) FROM pairing_visits v WHERE v.pairing_id = p.id AND v.status IN ('pending', 'approved'))
FROM pairings p JOIN members m ON m.id = p.member_id
"""


async def overdue(ctx: Context, user: Principal, org_id: int | None) -> OverdueOut:
    where = await _scope_where(ctx, user, org_id, mine=not user.is_staff_like)
    rows = await ctx.db.fetch(_SCOPE_PAIRINGS + f" WHERE {where.sql} AND p.status = 'active'", *where.args)
    as_of = today(ctx)
    late = []
    for row in rows:
        due = _due(ctx, row[7], row[6], row[9], row[11], as_of)
        if due.days_overdue > 0:
            late.append((row, due))
    branches = await _branches(ctx, {row[10] for row, _ in late})
    grouped: dict[int, OverdueBranch] = {}
    for row, due in sorted(late, key=lambda item: (-item[1].days_overdue, item[0][2], item[0][0])):
        branch_id, branch_name = branches[row[10]]
        group = grouped.setdefault(branch_id, OverdueBranch(org_id=branch_id, org_name=branch_name, count=0, items=[]))
        group.count += 1
        group.items.append(OverdueItem(
            pairing_id=row[0], member_id=row[1], member_name=row[2], name=row[3], kind=row[4], category=row[5],
            interval_days=row[6], start_date=row[7], last_visit_on=due.last_visit_on, due_on=due.due_on,
            days_overdue=due.days_overdue,
        ))
    ordered = sorted(grouped.values(), key=lambda b: (-b.count, b.org_id))
    return OverdueOut(as_of=as_of, org_id=org_id, total=len(late), branches=ordered)


def _year_bounds(ctx: Context, year: int) -> tuple[datetime, datetime]:
    tz = ctx.settings.tz
    start = datetime.combine(date(year, 1, 1), time(), tz)
    end = datetime.combine(date(year + 1, 1, 1), time(), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


_BRANCH_KINDS = ("branch", "joint_branch", "floating_branch", "two_new_branch", "general_branch")


async def stats(ctx: Context, user: Principal, org_id: int | None, year: int | None) -> StatsOut:
    year = year or today(ctx).year
    mine = not user.is_staff_like
    where = await _scope_where(ctx, user, org_id, mine=mine)
    pairings = await ctx.db.fetch(_SCOPE_PAIRINGS + f" WHERE {where.sql}", *where.args)
    start, end = _year_bounds(ctx, year)
    visit_where = await _scope_where(ctx, user, org_id, mine=mine)
    visit_where.add("v.visited_at >= {} AND v.visited_at < {}", start, end)
    counts = await ctx.db.fetch(
        "SELECT v.pairing_id, v.status, COUNT(*) FROM pairing_visits v JOIN pairings p ON p.id = v.pairing_id"
        f" JOIN members m ON m.id = p.member_id WHERE {visit_where.sql} GROUP BY v.pairing_id, v.status",
        *visit_where.args,
    )
    by_pairing: dict[int, dict[str, int]] = {}
    for pairing_id, status, count in counts:
        by_pairing.setdefault(pairing_id, {})[status] = int(count)
    branches = await _branches(ctx, {row[10] for row in pairings})
    rows: dict[int, StatsRow] = {}

    def blank(branch_id: int | None, name: str) -> StatsRow:
        return StatsRow(org_id=branch_id, org_name=name, pairings=0, active_pairings=0, visits=0, verified_visits=0,
                        pending_visits=0, rejected_visits=0, overdue=0)

    # Every branch in the scope gets a row (a branch without pairings is worth seeing), members see their own.
    if not mine:
        branch_where = Where()
        branch_where.any_of("kind", list(_BRANCH_KINDS))
        if org_id is not None:
            path = await ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", org_id)
            branch_where.add("path LIKE {}", path + "%")
        branch_where.prefix_any("path", user.member_reach_paths)
        for branch_id, name in await ctx.db.fetch(
            f"SELECT id, name FROM orgs WHERE {branch_where.sql} ORDER BY path", *branch_where.args
        ):
            rows[branch_id] = blank(branch_id, name)
    as_of = today(ctx)
    first, last = date(year, 1, 1), date(year, 12, 31)
    for row in pairings:
        branch_id, branch_name = branches[row[10]]
        out = rows.setdefault(branch_id, blank(branch_id, branch_name))
        if row[7] <= last and (row[8] is None or row[8] >= first):
            out.pairings += 1
        if row[9] == "active":
            out.active_pairings += 1
            if _due(ctx, row[7], row[6], row[9], row[11], as_of).days_overdue > 0:
                out.overdue += 1
        c = by_pairing.get(row[0], {})
        out.visits += sum(c.values())
        out.verified_visits += c.get("approved", 0)
        out.pending_visits += c.get("pending", 0)
        out.rejected_visits += c.get("rejected", 0)
    totals = blank(None, "合计")
    for out in rows.values():
        for field in ("pairings", "active_pairings", "visits", "verified_visits", "pending_visits", "rejected_visits", "overdue"):
            setattr(totals, field, getattr(totals, field) + getattr(out, field))
    return StatsOut(year=year, org_id=org_id, branches=list(rows.values()), totals=totals)
