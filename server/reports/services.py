"""报表: xlsx reports of an org subtree for a period — points, 三会一课 attendance, volunteer hours,
一帮一 pairings.

- **Who**: admins and secretaries (their org subtrees), station staff (their station's org subtree).
  Members get 403. ``org_id`` narrows to one org; outside the caller's reach it is 404 like a missing one.
- **Period**: ``year`` or ``from``/``to`` (local dates in the settings' time zone, both inclusive);
  neither means the current year.
- **Branch** (所在支部) of a member: their org, or the nearest ancestor that is not a 党小组.
- Members are placed by their *current* org (as the tally, the attendance list and pairings do).
- Rows are read in chunks and written into a streamed workbook (``core.xlsx.Book``) off the event
  loop, so memory stays flat with the number of rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from server.activities.services import ATTENDANCE_STATES, CHECKIN_METHODS
from server.core import xlsx
from server.core.auth import Principal
from server.core.context import Context
from server.core.errors import APIError, forbidden, not_found
from server.core.sql import Where, path_ids, placeholders
from server.core.timeutil import utcnow
from server.pairings.services import _due  # the overdue rule, exactly as /pairings/overdue applies it

ACTIVE_MEMBER_STATUSES = ("normal", "inflow")
GROUP_KIND = "group"
CHUNK = 2000
ACTIVITY_CHUNK = 200

# 三会一课 and the other organisational-life activities whose attendance is reported.
MEETING_TYPES: dict[str, str] = {
    "branch_meeting": "支部党员大会",
    "committee_meeting": "支委会",
    "group_meeting": "党小组会",
    "party_lecture": "党课",
    "theme_day": "主题党日",
    "life_meeting": "组织生活会",
    "evaluation": "民主评议",
}
CATEGORY_HEADERS = ("基础积分", "奖励积分", "扣减积分")
HOURS_STATES = {"approved": "已认定", "pending": "待审核", "rejected": "已驳回"}
PAIRING_KINDS = {"resident": "困难群众/居民", "worker": "职工/群众", "new_member": "入党积极分子/发展对象", "other": "其他"}
PAIRING_STATES = {"active": "进行中", "ended": "已结束"}
_STATE_ORDER = {"present": 0, "pending": 1, "excused": 2, "absent": 3}
_NEVER = datetime.max.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------- scope, period


@dataclass
class Scope:
    paths: tuple[str, ...]  # org subtrees (no path inside another)
    label: str  # org names for the heading and the file name


@dataclass
class Period:
    first: date
    last: date
    label: str  # "2026年" or "2026-01-01 至 2026-03-31"
    file_label: str
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive

    @property
    def heading(self) -> str:
        return self.label


def _minimal(paths: Sequence[str]) -> tuple[str, ...]:
    ordered = sorted(set(paths), key=len)
    kept: list[str] = []
    for path in ordered:
        if not any(path.startswith(k) for k in kept):
            kept.append(path)
    return tuple(sorted(kept))


async def resolve_scope(ctx: Context, user: Principal, org_id: int | None) -> Scope:
    reach = user.member_reach_paths  # admin/secretary subtrees, and the org subtrees of staff's stations
    if not reach:
        raise forbidden("只有管理员、支部书记或服务站工作人员可以导出报表")
    if org_id is not None:
        row = await ctx.db.fetchrow("SELECT path, name FROM orgs WHERE id = $1", org_id)
        if row is None or not any(str(row[0]).startswith(p) for p in reach):
            raise not_found("组织")
        return Scope(paths=(str(row[0]),), label=str(row[1]))
    paths = _minimal(reach)
    ids = [path_ids(p)[-1] for p in paths]
    names = dict(await ctx.db.fetch_planned(f"SELECT id, name FROM orgs WHERE id IN ({placeholders(len(ids))})", *ids))
    return Scope(paths=paths, label="、".join(str(names.get(i, "")) for i in ids))


def resolve_period(ctx: Context, year: int | None, date_from: date | None, date_to: date | None) -> Period:
    tz = ctx.settings.tz
    if year is not None and (date_from is not None or date_to is not None):
        raise APIError(400, "invalid_period", "year 与 from/to 只能选择一种")
    if (date_from is None) != (date_to is None):
        raise APIError(400, "invalid_period", "from 与 to 需同时提供")
    if date_from is not None and date_to is not None:
        if date_to < date_from:
            raise APIError(400, "invalid_period", "结束日期不能早于开始日期")
        if (date_to - date_from).days > 3660:
            raise APIError(400, "invalid_period", "统计期间不能超过 10 年")
        first, last = date_from, date_to
        label = f"{first:%Y-%m-%d} 至 {last:%Y-%m-%d}"
        file_label = f"{first:%Y%m%d}-{last:%Y%m%d}"
    else:
        year = year or utcnow().astimezone(tz).year
        first, last = date(year, 1, 1), date(year, 12, 31)
        label, file_label = f"{year}年", f"{year}"
    start = datetime.combine(first, time(), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
    return Period(first=first, last=last, label=label, file_label=file_label, start=start, end=end)


def _in_scope(where: Where, column: str, scope: Scope) -> Where:
    return where.prefix_any(column, scope.paths)


def _intro(ctx: Context, title: str, scope: Scope, period: Period, extra: str = "") -> list[str]:
    now = utcnow().astimezone(ctx.settings.tz)
    line = f"范围：{scope.label}　统计期间：{period.label}（{ctx.settings.timezone}）　导出时间：{now:%Y-%m-%d %H:%M}"
    return [f"{title}（{period.label}）", line + (f"　{extra}" if extra else "")]


def file_name(kind: str, scope: Scope, period: Period) -> str:
    label = scope.label if len(scope.label) <= 40 else scope.label[:40]
    return f"{kind}-{label}-{period.file_label}.xlsx"


class Branches:
    """Org path → (branch id, branch name, branch path): the org, or its nearest non-党小组 ancestor."""

    def __init__(self) -> None:
        self.orgs: dict[int, tuple[str, str, str]] = {}  # id → (name, kind, path)
        self.cache: dict[str, tuple[int, str, str]] = {}

    async def load(self, ctx: Context, org_paths: set[str]) -> None:
        ids = sorted({i for path in org_paths for i in path_ids(path)} - set(self.orgs))
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for org_id, name, kind, path in await ctx.db.fetch_planned(
                f"SELECT id, name, kind, path FROM orgs WHERE id IN ({placeholders(len(chunk))})", *chunk
            ):
                self.orgs[int(org_id)] = (str(name), str(kind), str(path))

    def of(self, org_path: str) -> tuple[int, str, str]:
        hit = self.cache.get(org_path)
        if hit is None:
            chain = path_ids(org_path)
            branch = next((i for i in reversed(chain) if self.orgs.get(i, ("", GROUP_KIND, ""))[1] != GROUP_KIND), chain[-1])
            name, _, path = self.orgs.get(branch, ("", "", org_path))
            hit = self.cache[org_path] = (branch, name, path)
        return hit


@dataclass
class MemberInfo:
    id: int
    name: str
    org_path: str
    branch_name: str
    branch_path: str


async def _scope_members(ctx: Context, scope: Scope, branches: Branches, *, active_only: bool = True) -> list[MemberInfo]:
    where = _in_scope(Where(), "m.org_path", scope)
    if active_only:
        where.any_of("m.status", list(ACTIVE_MEMBER_STATUSES))
    rows = await ctx.db.fetch_planned(f"SELECT m.id, m.name, m.org_path FROM members m WHERE {where.sql} ORDER BY m.id", *where.args)
    return await _member_infos(ctx, branches, rows)


async def _member_infos(ctx: Context, branches: Branches, rows: list[Any]) -> list[MemberInfo]:
    """``(id, name, org_path)`` rows with each member's branch."""
    await branches.load(ctx, {r[2] for r in rows})
    out = []
    for member_id, name, org_path in rows:
        _, branch_name, branch_path = branches.of(org_path)
        out.append(MemberInfo(int(member_id), str(name), str(org_path), branch_name, branch_path))
    return out


async def _chunked(ctx: Context, sql: str, args: list[Any], key: int, size: int = CHUNK) -> AsyncIterator[list[Any]]:
    """Keyset pages of ``sql`` (which must end in ``WHERE … {after}`` ordering by the integer column
    ``key`` of its rows): ``{after}`` becomes ``AND <id> > $n``."""
    last = 0
    while True:
        rows = await ctx.db.fetch_planned(sql.format(after=f"${len(args) + 1}", limit=size), *args, last)
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        last = rows[-1][key]


def _star_text(stars: int) -> str:
    return "★" * stars if stars else "不合格"


def _ratio(part: int, whole: int) -> xlsx.Percent | None:
    return xlsx.Percent(round(part / whole, 4)) if whole else None


async def _finish(book: xlsx.Book) -> bytes:
    return await asyncio.to_thread(book.close)


# ------------------------------------------------------------------------------------------ points


async def points_report(ctx: Context, user: Principal, org_id: int | None, period: Period) -> tuple[bytes, str]:
    """Sheets 党员积分 (one row per active member) and 支部积分 (per branch: members, average, total)."""
    from server.points.services import star_for, total_for

    scope = await resolve_scope(ctx, user, org_id)
    branches = Branches()
    members = await _scope_members(ctx, scope, branches)
    where = _in_scope(Where(), "m.org_path", scope)
    where.any_of("m.status", list(ACTIVE_MEMBER_STATUSES))
    where.add("l.local_date >= {} AND l.local_date <= {}", period.first, period.last)
    sums = await ctx.db.fetch_planned(
        "SELECT l.member_id, r.category, SUM(CASE WHEN l.delta > 0 THEN l.delta ELSE 0 END),"
        " SUM(CASE WHEN l.delta < 0 THEN l.delta ELSE 0 END)"
        " FROM points_ledger l JOIN members m ON m.id = l.member_id LEFT JOIN point_rules r ON r.id = l.rule_id"
        f" WHERE {where.sql} GROUP BY l.member_id, r.category",
        *where.args,
    )
    earned: dict[int, list[float]] = {}
    for member_id, category, plus, minus in sums:
        bucket = earned.setdefault(int(member_id), [0.0, 0.0, 0.0])
        plus, minus = float(plus or 0), float(minus or 0)
        if category == "basic":
            bucket[0] += plus + minus
        elif category == "reward":
            bucket[1] += plus + minus
        elif category == "penalty":
            bucket[2] += plus + minus
        else:  # an entry without a rule: by its sign
            bucket[1] += plus
            bucket[2] += minus
    base = ctx.settings.points_base
    by_branch: dict[str, list[tuple[MemberInfo, list[float], float]]] = {}
    for m in members:
        parts = earned.get(m.id, [0.0, 0.0, 0.0])
        by_branch.setdefault(m.branch_path, []).append((m, parts, total_for(base, sum(parts))))
    member_rows: list[tuple[Any, ...]] = []
    branch_rows: list[list[Any]] = []
    for branch_path in sorted(by_branch):
        people = sorted(by_branch[branch_path], key=lambda item: (-item[2], item[0].name, item[0].id))
        rank, previous = 0, None
        for position, (m, parts, total) in enumerate(people, start=1):
            if total != previous:
                rank, previous = position, total
            member_rows.append((
                m.name, m.branch_name, base, round(parts[0], 2), round(parts[1], 2), round(parts[2], 2),
                round(total, 2), _star_text(star_for(total)), rank,
            ))
        totals = sum(t for _, _, t in people)
        branch_rows.append([people[0][0].branch_name, len(people), round(totals / len(people), 2), round(totals, 2)])
    ordered = sorted(branch_rows, key=lambda r: (-r[2], r[0]))
    rank, previous = 0, None
    for position, row in enumerate(ordered, start=1):
        if row[2] != previous:
            rank, previous = position, row[2]
        row.append(rank)

    def build() -> bytes:
        book = xlsx.Book(ctx.settings.tz)
        intro = _intro(ctx, "党员积分统计", scope, period, f"起始分 {base}，总积分 = 起始分 + 期间内积分（最低 0）")
        sheet = book.sheet(
            "党员积分", intro=intro,
            headers=["姓名", "所在支部", "起始分", *CATEGORY_HEADERS, "总积分", "星级", "支部内排名"],
            widths=[12, 28, 8, 10, 10, 10, 10, 12, 11],
        )
        sheet.rows(member_rows)
        sheet = book.sheet(
            "支部积分", intro=_intro(ctx, "支部积分统计", scope, period),
            headers=["支部", "党员人数", "平均积分", "积分合计", "排名"], widths=[30, 10, 10, 12, 8],
        )
        sheet.rows(ordered)
        return book.close()

    return await asyncio.to_thread(build), file_name("党员积分", scope, period)


# -------------------------------------------------------------------------------------- attendance


@dataclass
class _Item:
    member_id: int
    name: str
    branch_name: str
    state: str
    method: str | None = None
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None


@dataclass
class _MemberTally:
    expected: int = 0
    present: int = 0
    pending: int = 0
    excused: int = 0
    absent: int = 0


@dataclass
class _Expected:
    """Active members of the scope grouped by org path, for 'who was expected' per activity org."""

    by_path: dict[str, list[MemberInfo]] = field(default_factory=dict)
    cache: dict[str, list[MemberInfo]] = field(default_factory=dict)

    def under(self, org_path: str) -> list[MemberInfo]:
        hit = self.cache.get(org_path)
        if hit is None:
            hit = [m for path, ms in self.by_path.items() if path.startswith(org_path) for m in ms]
            hit.sort(key=lambda m: m.name)
            self.cache[org_path] = hit
        return hit


async def _add_people(ctx: Context, people: dict[int, MemberInfo], branches: Branches, ids: set[int]) -> None:
    """Name and branch of members not yet in ``people`` (outside the active scope list)."""
    missing = sorted(ids - people.keys())
    for start in range(0, len(missing), 500):
        chunk = missing[start:start + 500]
        rows = await ctx.db.fetch_planned(
            f"SELECT id, name, org_path FROM members WHERE id IN ({placeholders(len(chunk))})", *chunk
        )
        people.update((m.id, m) for m in await _member_infos(ctx, branches, rows))


def _write_rows(*sheets: tuple[Any, list[Any]]) -> None:
    for sheet, rows in sheets:
        sheet.rows(rows)


async def attendance_report(ctx: Context, user: Principal, org_id: int | None, period: Period) -> tuple[bytes, str]:
    """三会一课: one row per activity (应到/实到/待审核/请假/缺席, names of absentees and of those on
    leave), every member's state per activity (出勤明细), and per member over required ones.

    The same rules as ``GET /activities/{id}/attendance``: an accepted check-in is present, one
    waiting for review pending; for a required activity every active member of the organising org's
    subtree who did not come is absent, unless their leave was approved (excused). Activities
    organised by an org in scope, of the 三会一课 types, started within the period and by now,
    not cancelled."""
    scope = await resolve_scope(ctx, user, org_id)
    tz = ctx.settings.tz
    branches = Branches()
    members = await _scope_members(ctx, scope, branches)
    expected_index = _Expected()
    for m in members:
        expected_index.by_path.setdefault(m.org_path, []).append(m)
    tallies = {m.id: _MemberTally() for m in members}
    people = {m.id: m for m in members}  # grows with anyone else a check-in or leave names (inactive, moved)

    where = _in_scope(Where(), "a.org_path", scope)
    where.any_of("a.type", list(MEETING_TYPES))
    where.add("a.status <> 'cancelled'")
    where.add("a.starts_at >= {} AND a.starts_at < {} AND a.starts_at <= {}", period.start, period.end, utcnow())
    activities = await ctx.db.fetch_planned(
        "SELECT a.id, a.type, a.title, a.org_path, o.name, s.name, a.starts_at, a.ends_at, a.required, a.status"
        " FROM activities a JOIN orgs o ON o.id = a.org_id JOIN stations s ON s.id = a.station_id"
        f" WHERE {where.sql} ORDER BY a.starts_at, a.id",
        *where.args,
    )
    book = xlsx.Book(tz)
    summary = book.sheet(
        "三会一课", intro=_intro(ctx, "三会一课出勤统计", scope, period, f"共 {len(activities)} 次活动"),
        headers=["开始时间", "类型", "活动名称", "组织", "服务站", "必须参加", "应到", "实到", "待审核", "请假", "缺席",
                 "出勤率", "缺席人员", "请假人员"],
        widths=[17, 12, 30, 24, 22, 9, 7, 7, 8, 7, 7, 8, 40, 30],
    )
    detail = book.sheet(
        "出勤明细", intro=_intro(ctx, "三会一课出勤明细", scope, period),
        headers=["开始时间", "活动名称", "姓名", "所在支部", "状态", "方式", "签到时间", "签退时间"],
        widths=[17, 30, 12, 28, 9, 14, 17, 17],
    )
    for start in range(0, len(activities), ACTIVITY_CHUNK):
        chunk = activities[start:start + ACTIVITY_CHUNK]
        ids = [int(a[0]) for a in chunk]
        marks = placeholders(len(ids))
        # No join with members: the people in scope are in memory already (names and branches).
        checkins = await ctx.db.fetch_planned(
            "SELECT c.activity_id, c.member_id, c.kind, c.status, c.method, c.scanned_at FROM checkins c"
            f" WHERE c.activity_id IN ({marks}) AND c.status IN ('accepted', 'pending_review') ORDER BY c.scanned_at, c.id",
            *ids,
        )
        leaves = await ctx.db.fetch_planned(
            "SELECT lr.activity_id, lr.member_id FROM leave_requests lr"
            f" WHERE lr.activity_id IN ({marks}) AND lr.status = 'approved'",
            *ids,
        )
        await _add_people(ctx, people, branches, {r[1] for r in checkins} | {r[1] for r in leaves})
        per_activity: dict[int, dict[int, _Item]] = {i: {} for i in ids}
        for activity_id, member_id, kind, status, method, scanned_at in checkins:
            items = per_activity[activity_id]
            item = items.get(member_id)
            state = "present" if status == "accepted" else "pending"
            if item is None:
                who = people[member_id]
                item = items[member_id] = _Item(member_id, who.name, who.branch_name, state)
            if kind == "in":
                item.checked_in_at, item.method, item.state = scanned_at, method, state
            else:
                item.checked_out_at = scanned_at
        leave_by: dict[int, list[int]] = {}
        for activity_id, member_id in leaves:
            leave_by.setdefault(activity_id, []).append(member_id)
        summary_rows, detail_rows = [], []
        for a in chunk:
            activity_id, kind, title, org_path, org_name, station, starts_at, _, required, _ = a
            items = per_activity[activity_id]
            expected = expected_index.under(org_path) if required else []
            for m in expected:
                tallies[m.id].expected += 1
                if m.id not in items:
                    items[m.id] = _Item(m.id, m.name, m.branch_name, "absent")
            for member_id in leave_by.get(activity_id, ()):
                item = items.get(member_id)
                if item is None:
                    who = people[member_id]
                    items[member_id] = _Item(member_id, who.name, who.branch_name, "excused")
                elif item.state == "absent":
                    item.state = "excused"
            counts = {"present": 0, "pending": 0, "excused": 0, "absent": 0}
            for item in items.values():
                counts[item.state] += 1
            if required:
                expected_ids = {m.id for m in expected}
                for item in items.values():
                    if item.member_id in expected_ids:
                        setattr(tallies[item.member_id], item.state, getattr(tallies[item.member_id], item.state) + 1)
            ordered = sorted(items.values(), key=lambda i: (
                _STATE_ORDER[i.state], i.checked_in_at or _NEVER, i.name, i.member_id))
            absent_names = "、".join(i.name for i in ordered if i.state == "absent")
            excused_names = "、".join(i.name for i in ordered if i.state == "excused")
            summary_rows.append((
                starts_at, MEETING_TYPES.get(kind, kind), title, org_name, station, bool(required),
                len(expected) if required else None, counts["present"], counts["pending"], counts["excused"],
                counts["absent"] if required else None, _ratio(counts["present"], len(expected)) if required else None,
                absent_names, excused_names,
            ))
            for i in ordered:
                detail_rows.append((
                    starts_at, title, i.name, i.branch_name, ATTENDANCE_STATES.get(i.state, i.state),
                    CHECKIN_METHODS.get(i.method, i.method) if i.method else None, i.checked_in_at, i.checked_out_at,
                ))
        await asyncio.to_thread(_write_rows, (summary, summary_rows), (detail, detail_rows))
    per_member = book.sheet(
        "党员出勤统计", intro=_intro(ctx, "党员出勤统计（必须参加的活动）", scope, period),
        headers=["姓名", "所在支部", "应参加", "出席", "待审核", "请假", "缺席", "出勤率"],
        widths=[12, 28, 8, 7, 8, 7, 7, 8],
    )
    member_rows = [
        (m.name, m.branch_name, t.expected, t.present, t.pending, t.excused, t.absent, _ratio(t.present, t.expected))
        for m in sorted(members, key=lambda m: (m.branch_path, m.name, m.id))
        for t in (tallies[m.id],)
    ]
    await asyncio.to_thread(per_member.rows, member_rows)
    return await _finish(book), file_name("三会一课出勤", scope, period)


# ---------------------------------------------------------------------------------- volunteer hours


async def hours_report(ctx: Context, user: Principal, org_id: int | None, period: Period) -> tuple[bytes, str]:
    """志愿时长汇总 (per member: approved and pending hours, records) and 志愿时长明细 (one row per
    record), by the local day the service started. Members by their current org; active members
    without records are listed with 0, other members only if they have records in the period."""
    scope = await resolve_scope(ctx, user, org_id)
    branches = Branches()
    members = {m.id: m for m in await _scope_members(ctx, scope, branches)}
    where = _in_scope(Where(), "m.org_path", scope)
    where.add("h.local_date >= {} AND h.local_date <= {}", period.first, period.last)
    sums = await ctx.db.fetch_planned(
        "SELECT h.member_id, m.name, m.org_path,"
        " SUM(CASE WHEN h.status <> 'rejected' THEN h.approved_hours ELSE 0 END),"
        " SUM(CASE WHEN h.status = 'pending' THEN h.hours - h.approved_hours ELSE 0 END), COUNT(*)"
        f" FROM volunteer_hours h JOIN members m ON m.id = h.member_id WHERE {where.sql}"
        " GROUP BY h.member_id, m.name, m.org_path",
        *where.args,
    )
    await branches.load(ctx, {r[2] for r in sums})
    totals: dict[int, tuple[float, float, int]] = {}
    for member_id, name, org_path, approved, pending, count in sums:
        if member_id not in members:
            _, branch_name, branch_path = branches.of(org_path)
            members[member_id] = MemberInfo(int(member_id), str(name), str(org_path), branch_name, branch_path)
        totals[member_id] = (float(approved or 0), max(0.0, float(pending or 0)), int(count))
    member_rows = []
    grand = [0.0, 0.0, 0]
    for m in sorted(members.values(), key=lambda m: (m.branch_path, -totals.get(m.id, (0.0,))[0], m.name, m.id)):
        approved, pending, count = totals.get(m.id, (0.0, 0.0, 0))
        member_rows.append((m.name, m.branch_name, approved, pending, count))
        grand[0] += approved
        grand[1] += pending
        grand[2] += count
    member_rows.append(("合计", None, grand[0], grand[1], grand[2]))

    book = xlsx.Book(ctx.settings.tz)
    summary = book.sheet(
        "志愿时长汇总", intro=_intro(ctx, "志愿服务时长统计", scope, period, "单位：小时"),
        headers=["姓名", "所在支部", "已认定时长", "待审核时长", "记录数"], widths=[12, 28, 12, 12, 8],
    )
    await asyncio.to_thread(summary.rows, member_rows)
    detail = book.sheet(
        "志愿时长明细", intro=_intro(ctx, "志愿服务时长明细", scope, period, "单位：小时"),
        headers=["服务日期", "姓名", "所在支部", "活动名称", "服务站", "签到时间", "签退时间", "计算时长", "认定时长", "状态"],
        widths=[11, 12, 28, 30, 22, 17, 17, 9, 9, 8],
    )
    sql = (
        "SELECT h.id, h.local_date, m.name, m.org_path, a.title, s.name, ci.scanned_at, co.scanned_at, h.hours,"
        " h.approved_hours, h.status FROM volunteer_hours h JOIN members m ON m.id = h.member_id"
        " JOIN activities a ON a.id = h.activity_id JOIN stations s ON s.id = a.station_id"
        " JOIN checkins ci ON ci.id = h.checkin_in_id LEFT JOIN checkins co ON co.id = h.checkin_out_id"
        f" WHERE {where.sql} AND h.id > {{after}} ORDER BY h.id LIMIT {{limit}}"
    )
    async for rows in _chunked(ctx, sql, list(where.args), key=0):
        await branches.load(ctx, {r[3] for r in rows})
        out = [
            (r[1], r[2], branches.of(r[3])[1], r[4], r[5], r[6], r[7], float(r[8]),
             float(r[9]) if r[10] != "rejected" else 0.0, HOURS_STATES.get(r[10], r[10]))
            for r in rows
        ]
        await asyncio.to_thread(detail.rows, out)
    return await _finish(book), file_name("志愿服务时长", scope, period)


# ---------------------------------------------------------------------------------------- pairings


async def pairings_report(ctx: Context, user: Principal, org_id: int | None, period: Period) -> tuple[bytes, str]:
    """一帮一: pairings of helpers in scope in effect during the period, with the period's visits (all
    and verified), the last visit (pending or approved, any time), and whether the pairing is overdue
    today (the rule of ``/pairings/overdue``). Counterpart contacts are left out."""
    scope = await resolve_scope(ctx, user, org_id)
    where = _in_scope(Where(), "m.org_path", scope)
    where.add("p.start_date <= {} AND (p.end_date IS NULL OR p.end_date >= {})", period.last, period.first)
    visits_from, visits_to = where.arg(period.start), where.arg(period.end)
    rows = await ctx.db.fetch_planned(
        "SELECT p.id, m.name, m.org_path, p.name, p.kind, p.category, p.start_date, p.end_date, p.status,"
        " p.interval_days,"
        " (SELECT MAX(v.visited_at) FROM pairing_visits v WHERE v.pairing_id = p.id AND v.status IN ('pending', 'approved')),"
        f" (SELECT COUNT(*) FROM pairing_visits v WHERE v.pairing_id = p.id AND v.visited_at >= {visits_from}"
        f"   AND v.visited_at < {visits_to}),"
        " (SELECT COUNT(*) FROM pairing_visits v WHERE v.pairing_id = p.id AND v.status = 'approved'"
        f"   AND v.visited_at >= {visits_from} AND v.visited_at < {visits_to})"
        f" FROM pairings p JOIN members m ON m.id = p.member_id WHERE {where.sql} ORDER BY m.org_path, m.name, p.id",
        *where.args,
    )
    branches = Branches()
    await branches.load(ctx, {r[2] for r in rows})
    as_of = utcnow().astimezone(ctx.settings.tz).date()
    out = []
    overdue_count = 0
    for r in rows:
        due = _due(ctx, r[6], int(r[9]), r[8], r[10], as_of)
        overdue_count += due.days_overdue > 0
        out.append((
            r[1], branches.of(r[2])[1], r[3], PAIRING_KINDS.get(r[4], r[4]), r[5], r[6], r[7],
            PAIRING_STATES.get(r[8], r[8]), int(r[9]), int(r[11]), int(r[12]), due.last_visit_at,
            due.due_on if r[8] == "active" else None, due.days_overdue > 0, due.days_overdue,
        ))

    def build() -> bytes:
        book = xlsx.Book(ctx.settings.tz)
        sheet = book.sheet(
            "一帮一结对", intro=_intro(ctx, "一帮一结对走访统计", scope, period,
                                     f"共 {len(out)} 对，逾期 {overdue_count} 对（截至 {as_of:%Y-%m-%d}）"),
            headers=["党员", "所在支部", "结对对象", "对象类型", "对象类别", "开始日期", "结束日期", "状态", "走访间隔（天）",
                     "走访次数", "已核实次数", "最近走访", "应走访日期", "是否逾期", "逾期天数"],
            widths=[12, 28, 12, 20, 12, 11, 11, 8, 10, 9, 10, 17, 11, 9, 9],
        )
        sheet.rows(out)
        return book.close()

    return await asyncio.to_thread(build), file_name("一帮一结对", scope, period)
