"""积分制管理 core: rules, capped awards into the append-only ledger, the tally, ranks.

Every ledger write happens inside the caller's write unit and updates ``points_tally`` in the same
transaction: one row per (ancestor org, year, member), so a leaderboard or a rank inside any org
subtree reads an index range and never scans the ledger.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from time import monotonic
from zoneinfo import ZoneInfo

import msgspec

from server.core.auth import Principal
from server.core.errors import APIError, forbidden, not_found
from server.points.schemas import (
    AdjustmentIn,
    EntryOut,
    LeaderboardOut,
    LeaderRow,
    MyPointsOut,
    RuleIn,
    RuleOut,
    RulePatch,
    RuleVersionOut,
)
from server.core.context import Context
from server.core.sql import path_ids, placeholders
from server.core.timeutil import utcnow

DEFAULT_RULES: list[dict[str, Any]] = [
    {"code": "attend_branch_meeting", "name": "参加支部党员大会", "category": "basic", "trigger": "branch_meeting", "points": 1},
    {"code": "attend_committee_meeting", "name": "参加支委会", "category": "basic", "trigger": "committee_meeting", "points": 1},
    {"code": "attend_group_meeting", "name": "参加党小组会", "category": "basic", "trigger": "group_meeting", "points": 1},
    {"code": "attend_party_lecture", "name": "参加党课", "category": "basic", "trigger": "party_lecture", "points": 1},
    {"code": "attend_theme_day", "name": "参加主题党日", "category": "basic", "trigger": "theme_day", "points": 1, "cap_year": 12},
    {"code": "attend_life_meeting", "name": "参加组织生活会", "category": "basic", "trigger": "life_meeting", "points": 1},
    {"code": "attend_evaluation", "name": "参加民主评议", "category": "basic", "trigger": "evaluation", "points": 1},
    {"code": "volunteer_hour", "name": "志愿服务（每小时）", "category": "reward", "trigger": "volunteer_hour", "points": 1, "cap_day": 8},
    {"code": "pairing_visit", "name": "一帮一走访（经核实）", "category": "reward", "trigger": "pairing_visit", "points": 1, "cap_year": 12},
    {"code": "absence", "name": "无故缺席必参活动", "category": "penalty", "trigger": "absence", "points": -2},
    {"code": "dues_overdue", "name": "未按时交纳党费", "category": "penalty", "trigger": "dues_overdue", "points": -2},
    {"code": "manual_reward", "name": "人工加分", "category": "reward", "trigger": "manual", "points": 0},
    {"code": "manual_deduction", "name": "人工扣分", "category": "penalty", "trigger": "manual", "points": 0},
]

STARS = [(96, 5), (90, 4), (80, 3), (70, 2), (60, 1)]


def star_for(total: float) -> int:
    """0 means 不合格 (below 60)."""
    for floor, stars in STARS:
        if total >= floor:
            return stars
    return 0


def total_for(base: int, earned: float) -> float:
    return max(0.0, base + earned)


@dataclass
class Rule:
    id: int
    code: str
    name: str
    points: float
    cap_day: float | None
    cap_month: float | None
    cap_year: float | None
    version: int
    valid_from: date | None
    valid_to: date | None
    needs_approval: bool = False

    def applies_on(self, day: date) -> bool:
        return (self.valid_from is None or day >= self.valid_from) and (self.valid_to is None or day <= self.valid_to)


_RULE_COLUMNS = "id, code, name, points, cap_day, cap_month, cap_year, version, valid_from, valid_to, needs_approval"


def _rule(row: Any) -> Rule:
    return Rule(*row[:10], needs_approval=bool(row[10]))


async def ensure_default_rules(ctx: Context) -> None:
    now = utcnow()
    async with ctx.db.transaction():
        for rule in DEFAULT_RULES:
            await ctx.db.execute(
                "INSERT INTO point_rules (code, name, category, trigger, points, cap_day, cap_month, cap_year,"
                " needs_approval, version, status, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, 'active', $10, $10) ON CONFLICT (code) DO NOTHING",
                rule["code"], rule["name"], rule["category"], rule["trigger"], float(rule["points"]),
                rule.get("cap_day"), rule.get("cap_month"), rule.get("cap_year"), False, now,
            )
        await ctx.db.execute(  # version 1 of each new rule (and of any rule that lacks its current version)
            "INSERT INTO point_rule_versions (rule_id, version, name, category, trigger, points, cap_day, cap_month,"
            " cap_year, needs_approval, valid_from, valid_to, status, changed_by, changed_at)"
            " SELECT id, version, name, category, trigger, points, cap_day, cap_month, cap_year, needs_approval,"
            " valid_from, valid_to, status, NULL, updated_at FROM point_rules r WHERE NOT EXISTS"
            " (SELECT 1 FROM point_rule_versions v WHERE v.rule_id = r.id AND v.version = r.version)"
        )


RULE_CACHE_SECONDS = 5.0


async def rule_for_trigger(ctx: Context, trigger: str, day: date) -> Rule | None:
    """Active rules by trigger, cached a few seconds per process (every check-in asks; edits are rare
    and clear this process's cache at once — other workers see them within the TTL)."""
    cache: dict[str, tuple[float, list[Rule]]] = ctx.caches.setdefault("rules", {})
    now = monotonic()
    hit = cache.get(trigger)
    if hit is None or hit[0] < now:
        rows = await ctx.db.fetch(
            f"SELECT {_RULE_COLUMNS} FROM point_rules WHERE trigger = $1 AND status = 'active' ORDER BY id", trigger
        )
        hit = cache[trigger] = (now + RULE_CACHE_SECONDS, [_rule(r) for r in rows])
    for rule in hit[1]:
        if rule.applies_on(day):
            return rule
    return None


def forget_rules(ctx: Context) -> None:
    ctx.caches.pop("rules", None)
    if ctx.checkin_writer is not None:  # the process that judges check-ins keeps a cache too
        ctx.checkin_writer.forget_rules()


async def rule_by_code(ctx: Context, code: str) -> Rule | None:
    row = await ctx.db.fetchrow(f"SELECT {_RULE_COLUMNS} FROM point_rules WHERE code = $1 AND status = 'active'", code)
    return _rule(row) if row else None


def _local_bounds(moment: datetime, tz: ZoneInfo) -> dict[str, tuple[datetime, datetime]]:
    """UTC [start, end) of the local day, month and year containing ``moment``."""
    local = moment.astimezone(tz)
    day_start = datetime.combine(local.date(), time(), tz)
    day_end = day_start + timedelta(days=1)
    month_start = day_start.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    year_start = month_start.replace(month=1)
    year_end = year_start.replace(year=year_start.year + 1)
    return {
        "day": (day_start.astimezone(UTC), day_end.astimezone(UTC)),
        "month": (month_start.astimezone(UTC), month_end.astimezone(UTC)),
        "year": (year_start.astimezone(UTC), year_end.astimezone(UTC)),
    }


@dataclass
class PendingEntries:
    """Ledger entries of one write unit, written together by ``flush`` (a sync batch awards points
    for hundreds of items: one multi-row write and one tally upsert per member-year instead of two
    statements per item). Caps count these entries as if they were already written."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    tally: dict[tuple[int, str, int], float] = field(default_factory=dict)
    months: dict[tuple[int, str, int, int], float] = field(default_factory=dict)
    by_rule: dict[tuple[int, int], list[tuple[datetime, float]]] = field(default_factory=dict)
    created_at: datetime | None = None  # the entries' ``created_at``: they are written together

    def used(self, member_id: int, rule_id: int, start: datetime, end: datetime) -> float:
        return sum(d for at, d in self.by_rule.get((member_id, rule_id), ()) if start <= at < end)


_INSERT_ENTRY = (
    "INSERT INTO points_ledger (member_id, rule_id, rule_version, delta, year, local_date, occurred_at,"
    " source_type, source_id, reverses_id, reason, created_by, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)


async def flush(ctx: Context, pending: PendingEntries) -> None:
    if pending.rows:
        await ctx.db.executemany(_INSERT_ENTRY, pending.rows)
    for (member_id, org_path, year), delta in pending.tally.items():
        await _bump_tally(ctx, member_id, org_path, year, delta)
    for (member_id, org_path, year, month), delta in pending.months.items():
        await _bump_period(ctx, member_id, org_path, year, month, delta)
    pending.rows.clear()
    pending.tally.clear()
    pending.months.clear()
    pending.by_rule.clear()
    pending.created_at = None


async def _capped(
    ctx: Context, member_id: int, rule: Rule, delta: float, occurred_at: datetime, pending: PendingEntries | None
) -> float:
    caps = [("day", rule.cap_day), ("month", rule.cap_month), ("year", rule.cap_year)]
    if delta <= 0 or all(cap is None for _, cap in caps):
        return delta
    bounds = _local_bounds(occurred_at, ctx.settings.tz)
    for period, cap in caps:
        if cap is None:
            continue
        start, end = bounds[period]
        used = await ctx.db.fetchval(
            "SELECT COALESCE(SUM(delta), 0) FROM points_ledger"
            " WHERE member_id = $1 AND rule_id = $2 AND occurred_at >= $3 AND occurred_at < $4",
            member_id, rule.id, start, end,
        )
        used = float(used or 0) + (pending.used(member_id, rule.id, start, end) if pending else 0.0)
        delta = min(delta, max(0.0, cap - used))
    return delta


async def post_entry(
    ctx: Context,
    *,
    member_id: int,
    org_path: str,
    delta: float,
    occurred_at: datetime,
    source_type: str,
    source_id: int | None,
    rule: Rule | None = None,
    reason: str = "",
    created_by: int | None = None,
    reverses_id: int | None = None,
) -> int:
    """Append one ledger entry and move the tally. Caller holds a write unit."""
    local = occurred_at.astimezone(ctx.settings.tz)
    entry_id = await ctx.db.fetchval(
        "INSERT INTO points_ledger (member_id, rule_id, rule_version, delta, year, local_date, occurred_at,"
        " source_type, source_id, reverses_id, reason, created_by, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        member_id, rule.id if rule else None, rule.version if rule else None, float(delta), local.year,
        local.date(), occurred_at, source_type, source_id, reverses_id, reason, created_by, utcnow(),
    )
    await _bump_tally(ctx, member_id, org_path, local.year, float(delta))
    await _bump_period(ctx, member_id, org_path, local.year, local.month, float(delta))
    return int(entry_id)


@functools.lru_cache(maxsize=16)
def _bump_tally_sql(depth: int) -> str:
    rows = ", ".join(f"(${i + 4}, $1, $2, $3)" for i in range(depth))
    return (
        f"INSERT INTO points_tally (org_id, year, member_id, earned) VALUES {rows}"
        " ON CONFLICT (org_id, year, member_id) DO UPDATE SET earned = points_tally.earned + excluded.earned"
    )


async def _bump_tally(ctx: Context, member_id: int, org_path: str, year: int, delta: float) -> None:
    """One statement for the member's org and every ancestor: VALUES ($4, $1, $2, $3), ($5, $1, $2, $3), …"""
    org_ids = path_ids(org_path)
    await ctx.db.execute(_bump_tally_sql(len(org_ids)), year, member_id, float(delta), *org_ids)


QUARTER_BASE = 20  # points_tally_period.period: months 1–12, quarters 21–24


def quarter_of(month: int) -> int:
    return (month + 2) // 3


def period_code(quarter: int | None, month: int | None) -> int | None:
    """``points_tally_period.period`` of a quarter or a month; None for the whole year."""
    if month is not None:
        return month
    if quarter is not None:
        return QUARTER_BASE + quarter
    return None


async def _bump_period(ctx: Context, member_id: int, org_path: str, year: int, month: int, delta: float) -> None:
    """One statement: the member's month and quarter rows for their org and every ancestor."""
    org_ids = path_ids(org_path)
    await ctx.db.execute(
        _bump_period_sql(len(org_ids)), year, month, QUARTER_BASE + quarter_of(month), member_id, float(delta), *org_ids,
    )


@functools.lru_cache(maxsize=16)
def _bump_period_sql(depth: int) -> str:
    values = []
    for i in range(depth):
        values.append(f"(${i + 6}, $1, $2, $4, $5)")
        values.append(f"(${i + 6}, $1, $3, $4, $5)")
    return (
        f"INSERT INTO points_tally_period (org_id, year, period, member_id, earned) VALUES {', '.join(values)}"
        " ON CONFLICT (org_id, year, period, member_id) DO UPDATE"
        " SET earned = points_tally_period.earned + excluded.earned"
    )


async def drop_member_tallies(ctx: Context, member_id: int) -> None:
    """A member who is no longer active is not ranked: remove their year and period rows."""
    await ctx.db.execute("DELETE FROM points_tally WHERE member_id = $1", member_id)
    await ctx.db.execute("DELETE FROM points_tally_period WHERE member_id = $1", member_id)


async def award(
    ctx: Context,
    *,
    member_id: int,
    org_path: str,
    rule: Rule,
    units: float,
    occurred_at: datetime,
    source_type: str,
    source_id: int | None,
    created_by: int | None = None,
    reason: str = "",
    pending: PendingEntries | None = None,
    local: datetime | None = None,
) -> float:
    """Award ``rule.points * units`` within the rule's caps; returns what was actually awarded.
    With ``pending`` the entry joins the unit's batch (the caller flushes it before the unit ends).
    ``local``: ``occurred_at`` in the configured zone, when the caller has it already."""
    delta = await _capped(ctx, member_id, rule, rule.points * units, occurred_at, pending)
    if delta == 0:
        return 0.0
    if pending is None:
        await post_entry(
            ctx, member_id=member_id, org_path=org_path, delta=delta, occurred_at=occurred_at,
            source_type=source_type, source_id=source_id, rule=rule, reason=reason or rule.name, created_by=created_by,
        )
        return delta
    local = local or occurred_at.astimezone(ctx.settings.tz)
    if pending.created_at is None:
        pending.created_at = utcnow()
    pending.rows.append((
        member_id, rule.id, rule.version, float(delta), local.year, local.date(), occurred_at, source_type, source_id,
        None, reason or rule.name, created_by, pending.created_at,
    ))
    key = (member_id, org_path, local.year)
    pending.tally[key] = pending.tally.get(key, 0.0) + float(delta)
    month_key = (member_id, org_path, local.year, local.month)
    pending.months[month_key] = pending.months.get(month_key, 0.0) + float(delta)
    pending.by_rule.setdefault((member_id, rule.id), []).append((occurred_at, float(delta)))
    return delta


async def reverse_source(
    ctx: Context, source_type: str, source_id: int, *, created_by: int | None, reason: str, member_id: int | None = None
) -> float:
    """Reverse every not-yet-reversed entry of one source (a rejected check-in, say) — of one member
    only when ``member_id`` is given (an absence on close is one source shared by many members)."""
    rows = await ctx.db.fetch(
        "SELECT l.id, l.member_id, l.rule_id, l.rule_version, l.delta, l.occurred_at, m.org_path"
        " FROM points_ledger l JOIN members m ON m.id = l.member_id"
        " WHERE l.source_type = $1 AND l.source_id = $2 AND l.reverses_id IS NULL"
        " AND (CAST($3 AS BIGINT) IS NULL OR l.member_id = $3)"
        " AND NOT EXISTS (SELECT 1 FROM points_ledger r WHERE r.reverses_id = l.id)",
        source_type, source_id, member_id,
    )
    total = 0.0
    for entry_id, member_id, rule_id, rule_version, delta, occurred_at, org_path in rows:
        local = occurred_at.astimezone(ctx.settings.tz)
        await ctx.db.execute(
            "INSERT INTO points_ledger (member_id, rule_id, rule_version, delta, year, local_date, occurred_at,"
            " source_type, source_id, reverses_id, reason, created_by, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            member_id, rule_id, rule_version, -float(delta), local.year, local.date(), occurred_at, source_type,
            source_id, entry_id, reason, created_by, utcnow(),
        )
        await _bump_tally(ctx, member_id, org_path, local.year, -float(delta))
        await _bump_period(ctx, member_id, org_path, local.year, local.month, -float(delta))
        total -= float(delta)
    return total


async def rebuild_member_tallies(ctx: Context, member_id: int) -> None:
    """After a transfer: drop the member's tally rows and rebuild them from the ledger for the new orgs."""
    org_path = await ctx.db.fetchval("SELECT org_path FROM members WHERE id = $1", member_id)
    await drop_member_tallies(ctx, member_id)
    days = await ctx.db.fetch(
        "SELECT year, local_date, SUM(delta) FROM points_ledger WHERE member_id = $1 GROUP BY year, local_date",
        member_id,
    )
    current = utcnow().astimezone(ctx.settings.tz).year
    by_year: dict[int, float] = {current: 0.0}
    by_month: dict[tuple[int, int], float] = {}
    for year, local_date, earned in days:
        by_year[int(year)] = by_year.get(int(year), 0.0) + float(earned)
        key = (int(year), local_date.month)
        by_month[key] = by_month.get(key, 0.0) + float(earned)
    for year, earned in by_year.items():
        await _bump_tally(ctx, member_id, org_path, year, earned)
    for (year, month), earned in by_month.items():
        await _bump_period(ctx, member_id, org_path, year, month, earned)


async def ensure_member_tally(ctx: Context, member_id: int, org_path: str) -> None:
    """A zero row for the current year, so members with no points yet still rank (last)."""
    year = utcnow().astimezone(ctx.settings.tz).year
    await _bump_tally(ctx, member_id, org_path, year, 0.0)


async def ensure_year_tallies(ctx: Context, year: int) -> None:
    """Once per process and year: zero rows for active members who have none (new year roll-over)."""
    done: set[int] = ctx.caches.setdefault("tally_years", set())
    if year in done:
        return
    missing = await ctx.db.fetch(
        "SELECT m.id, m.org_path FROM members m WHERE m.status IN ('normal', 'inflow') AND NOT EXISTS"
        " (SELECT 1 FROM points_tally t WHERE t.member_id = m.id AND t.year = $1 AND t.org_id = m.org_id)",
        year,
    )
    if missing:
        async with ctx.db.transaction():
            for member_id, org_path in missing:
                for org_id in path_ids(org_path):
                    await ctx.db.execute(
                        "INSERT INTO points_tally (org_id, year, member_id, earned) VALUES ($1, $2, $3, 0)"
                        " ON CONFLICT (org_id, year, member_id) DO NOTHING",
                        org_id, year, member_id,
                    )
    done.add(year)


async def members_ranked(ctx: Context, org_id: int, year: int) -> int:
    """Active members of the subtree (each has a year tally row once ``ensure_year_tallies`` ran)."""
    return int(await ctx.db.fetchval("SELECT COUNT(*) FROM points_tally WHERE org_id = $1 AND year = $2", org_id, year))


async def rank_in_org(ctx: Context, org_id: int, year: int, earned: float, period: int | None = None) -> int:
    """Competition rank (1, 1, 3): one more than the members of the subtree strictly ahead.
    Only active members have tally rows (see ``members.services``), so no join is needed. In a quarter
    or month a member without entries has no row and counts as 0: they are ahead of a negative score."""
    if period is None:
        ahead = await ctx.db.fetchval(
            "SELECT COUNT(*) FROM points_tally WHERE org_id = $1 AND year = $2 AND earned > $3",
            org_id, year, earned,
        )
        return int(ahead) + 1
    ahead = int(await ctx.db.fetchval(
        "SELECT COUNT(*) FROM points_tally_period WHERE org_id = $1 AND year = $2 AND period = $3 AND earned > $4",
        org_id, year, period, earned,
    ))
    if earned < 0:
        with_rows = int(await ctx.db.fetchval(
            "SELECT COUNT(*) FROM points_tally_period WHERE org_id = $1 AND year = $2 AND period = $3",
            org_id, year, period,
        ))
        ahead += max(0, await members_ranked(ctx, org_id, year) - with_rows)
    return ahead + 1


_BOARD_SELECT = (
    "SELECT t.member_id, m.name, o.name, t.earned FROM {table} t"
    " JOIN members m ON m.id = t.member_id JOIN orgs o ON o.id = m.org_id"
    " WHERE t.org_id = $1 AND t.year = $2 AND m.status IN ('normal', 'inflow')"
)


async def leaderboard(ctx: Context, org_id: int, year: int, limit: int, period: int | None = None) -> list[dict[str, Any]]:
    """Top ``limit`` of the subtree, ordered by points then member id; ties share a rank (1, 1, 3)."""
    if period is None:
        rows = list(await ctx.db.fetch(
            _BOARD_SELECT.format(table="points_tally") + " ORDER BY t.earned DESC, t.member_id LIMIT $3",
            org_id, year, limit,
        ))
    else:
        # Members with entries in the period have a row; the others count 0 and sit between the
        # positive and the negative rows: read the three parts in order, each an index range.
        select = _BOARD_SELECT.format(table="points_tally_period") + " AND t.period = $3"
        rows = list(await ctx.db.fetch(
            select + " AND t.earned > 0 ORDER BY t.earned DESC, t.member_id LIMIT $4", org_id, year, period, limit,
        ))
        if len(rows) < limit:
            need = limit - len(rows)
            zero_rows = await ctx.db.fetch(
                select + " AND t.earned = 0 ORDER BY t.member_id LIMIT $4", org_id, year, period, need
            )
            rowless = await ctx.db.fetch(
                _BOARD_SELECT.format(table="points_tally") + " AND NOT EXISTS (SELECT 1 FROM points_tally_period p"
                " WHERE p.org_id = t.org_id AND p.year = t.year AND p.period = $3 AND p.member_id = t.member_id)"
                " ORDER BY t.member_id LIMIT $4",
                org_id, year, period, need,
            )
            zeros = sorted([*zero_rows, *((r[0], r[1], r[2], 0.0) for r in rowless)], key=lambda r: r[0])[:need]
            rows.extend(zeros)
            if len(zeros) < need:  # the zero group is complete: the negative rows follow
                rows.extend(await ctx.db.fetch(
                    select + " AND t.earned < 0 ORDER BY t.earned DESC, t.member_id LIMIT $4",
                    org_id, year, period, need - len(zeros),
                ))
    base = ctx.settings.points_base
    out: list[dict[str, Any]] = []
    rank = 0
    previous: float | None = None
    for position, (member_id, name, org_name, earned) in enumerate(rows, start=1):
        earned = float(earned)
        if earned != previous:
            rank, previous = position, earned
        total = total_for(base, earned)
        out.append({
            "rank": rank, "member_id": member_id, "name": name, "org_name": org_name,
            "earned": earned, "total": total, "star": star_for(total),
        })
    return out


# ---------------------------------------------------------------------- API-facing operations

_RULE_OUT = (
    "id, code, name, category, trigger, points, cap_day, cap_month, cap_year, needs_approval, valid_from, valid_to,"
    " version, status"
)
_ENTRY_OUT = (
    "SELECT l.id, l.delta, l.reason, r.code, l.source_type, l.occurred_at, l.reverses_id, l.rule_id, l.rule_version,"
    " l.created_by, l.created_at FROM points_ledger l LEFT JOIN point_rules r ON r.id = l.rule_id"
)


def _entry_out(r: Any) -> EntryOut:
    return EntryOut(
        id=r[0], delta=float(r[1]), reason=r[2], rule_code=r[3], source_type=r[4], occurred_at=r[5], reverses_id=r[6],
        rule_id=r[7], rule_version=r[8], created_by=r[9], created_at=r[10],
    )


def current_year(ctx: Context) -> int:
    return utcnow().astimezone(ctx.settings.tz).year


@dataclass(frozen=True)
class Period:
    """A calendar year, or one quarter or month of it, in local time (settings' zone)."""

    year: int
    quarter: int | None = None
    month: int | None = None

    @property
    def code(self) -> int | None:
        return period_code(self.quarter, self.month)

    @property
    def months(self) -> list[int]:
        if self.month is not None:
            return [self.month]
        if self.quarter is not None:
            return [3 * self.quarter - 2, 3 * self.quarter - 1, 3 * self.quarter]
        return list(range(1, 13))

    def local_dates(self) -> tuple[date, date]:
        """[first day, first day after) as local dates."""
        first = date(self.year, self.months[0], 1)
        last_month = self.months[-1]
        after = date(self.year + 1, 1, 1) if last_month == 12 else date(self.year, last_month + 1, 1)
        return first, after


def period_of(ctx: Context, year: int | None, quarter: int | None, month: int | None) -> Period:
    if quarter is not None and month is not None:
        raise APIError(400, "period_conflict", "季度和月份只能选择一个")
    if quarter is not None and not 1 <= quarter <= 4:
        raise APIError(400, "invalid_quarter", "季度应为 1–4")
    if month is not None and not 1 <= month <= 12:
        raise APIError(400, "invalid_month", "月份应为 1–12")
    return Period(year or current_year(ctx), quarter, month)


async def branch_of(ctx: Context, org_path: str) -> tuple[int, str]:
    """The member's branch: their org, or the nearest ancestor that is not a 党小组, as (id, name)."""
    ids = path_ids(org_path)
    rows = {r[0]: (r[1], r[2]) for r in await ctx.db.fetch(
        f"SELECT id, name, kind FROM orgs WHERE id IN ({placeholders(len(ids))})", *ids
    )}
    branch = next((i for i in reversed(ids) if rows.get(i, ("", "group"))[1] != "group"), ids[-1])
    return branch, rows.get(branch, ("", ""))[0]


async def my_points(ctx: Context, user: Principal, period: Period) -> MyPointsOut:
    if user.member_id is None or user.member_org_path is None:
        raise forbidden("当前账号不是党员账号，没有积分")
    year = period.year
    await ensure_year_tallies(ctx, year)
    branch_id, branch_name = await branch_of(ctx, user.member_org_path)
    first, after = period.local_dates()
    earned = float(await ctx.db.fetchval(
        "SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE member_id = $1 AND year = $2"
        " AND local_date >= $3 AND local_date < $4",
        user.member_id, year, first, after,
    ))
    entries = await ctx.db.fetch(
        _ENTRY_OUT + " WHERE l.member_id = $1 AND l.year = $2 AND l.local_date >= $3 AND l.local_date < $4"
        " ORDER BY l.occurred_at DESC, l.id DESC LIMIT 200",
        user.member_id, year, first, after,
    )
    total = total_for(ctx.settings.points_base, earned)
    return MyPointsOut(
        year=year, quarter=period.quarter, month=period.month, base=ctx.settings.points_base, earned=earned,
        total=total, star=star_for(total), rank=await rank_in_org(ctx, branch_id, year, earned, period.code),
        rank_org_id=branch_id, rank_org_name=branch_name, rank_members=await members_ranked(ctx, branch_id, year),
        entries=[_entry_out(r) for r in entries],
    )


async def visible_org(ctx: Context, user: Principal, org_id: int | None) -> tuple[int, str, str]:
    """(id, name, path) of an org whose rankings the caller may read: managers and station staff their
    subtrees, a member their own branch and the orgs above it. Otherwise 404 like a missing org.
    Without ``org_id``: the caller's first scope (a member: their branch)."""
    if org_id is None:
        own = user.manager_paths or user.staff_station_paths
        if own:
            org_id = path_ids(own[0])[-1]
        elif user.member_org_path:
            org_id = (await branch_of(ctx, user.member_org_path))[0]
        else:
            raise not_found("组织")
    row = await ctx.db.fetchrow("SELECT id, name, path FROM orgs WHERE id = $1", org_id)
    if row is None:
        raise not_found("组织")
    path = row[2]
    own_chain = user.member_org_path or ""
    visible = (
        user.manages_path(path)
        or any(path.startswith(p) for p in user.staff_station_paths)
        or (own_chain.startswith(path))  # a member sees the boards of their branch and the orgs above it
    )
    if not visible:
        raise not_found("组织")
    return int(row[0]), row[1], path


async def leaderboard_for(ctx: Context, user: Principal, org_id: int | None, period: Period, limit: int) -> LeaderboardOut:
    org_id, org_name, _ = await visible_org(ctx, user, org_id)
    await ensure_year_tallies(ctx, period.year)
    rows = await leaderboard(ctx, org_id, period.year, limit, period.code)
    return LeaderboardOut(
        org_id=org_id, org_name=org_name, year=period.year, quarter=period.quarter, month=period.month,
        members=await members_ranked(ctx, org_id, period.year), rows=[LeaderRow(**r) for r in rows],
    )


_ADJUSTMENT_RULES = {"reward": "manual_reward", "deduction": "manual_deduction", "dues_overdue": "dues_overdue"}


async def adjust(ctx: Context, user: Principal, data: AdjustmentIn) -> EntryOut:
    """A manual reward or deduction (or a 党费逾期 deduction) by staff, a secretary or an admin reaching the
    member. Appended to the ledger with who (``created_by``), when and why; never edited afterwards."""
    if data.delta == 0:
        raise APIError(400, "zero_delta", "调整分值不能为 0")
    category = data.category
    if category is None and data.rule_code is not None:
        category = next(k for k, v in _ADJUSTMENT_RULES.items() if v == data.rule_code)
    elif category is not None and data.rule_code is not None and _ADJUSTMENT_RULES[category] != data.rule_code:
        raise APIError(400, "category_mismatch", "调整类别与规则编码不一致")
    category = category or ("reward" if data.delta > 0 else "deduction")
    if category == "reward" and data.delta < 0:
        raise APIError(400, "delta_sign", "奖励加分的分值应为正数")
    if category in ("deduction", "dues_overdue") and data.delta > 0:
        raise APIError(400, "delta_sign", "扣分的分值应为负数")
    if not data.reason.strip():
        raise APIError(400, "reason_required", "请填写调整原因")
    if not user.is_staff_like:
        raise forbidden("只有工作人员或支部书记可以调整积分")
    member = await ctx.db.fetchrow("SELECT id, org_path, status FROM members WHERE id = $1", data.member_id)
    if member is None or not user.sees_member(member[0], member[1]):
        raise not_found("党员")
    if member[0] == user.member_id:
        raise forbidden("不能给自己调整积分")
    rule = await rule_by_code(ctx, _ADJUSTMENT_RULES[category])
    if rule is None:
        raise APIError(400, "rule_retired", "对应的积分规则已停用")
    async with ctx.db.transaction():
        await ctx.db.lock_member(member[0])
        entry_id = await post_entry(
            ctx, member_id=member[0], org_path=member[1], delta=data.delta, occurred_at=utcnow(),
            source_type="adjustment", source_id=None, rule=rule, reason=data.reason.strip(), created_by=user.user_id,
        )
    return _entry_out(await ctx.db.fetchrow(_ENTRY_OUT + " WHERE l.id = $1", entry_id))


def _terms(r: Any, version: Any, status: Any) -> dict[str, Any]:
    """The rule terms of a row whose columns 2–11 are name … valid_to (both column lists below)."""
    return dict(
        name=r[2], category=r[3], trigger=r[4], points=float(r[5]), cap_day=r[6], cap_month=r[7], cap_year=r[8],
        needs_approval=bool(r[9]), valid_from=r[10], valid_to=r[11], version=version, status=status,
    )


def _rule_out(row: Any) -> RuleOut:
    return RuleOut(id=row[0], code=row[1], **_terms(row, row[12], row[13]))


async def list_rules(ctx: Context) -> list[RuleOut]:
    rows = await ctx.db.fetch(f"SELECT {_RULE_OUT} FROM point_rules ORDER BY id")
    return [_rule_out(r) for r in rows]


_VERSION_COLUMNS = (
    "rule_id, version, name, category, trigger, points, cap_day, cap_month, cap_year, needs_approval, valid_from,"
    " valid_to, status, changed_by, changed_at"
)


async def rule_versions(ctx: Context, rule_id: int) -> list[RuleVersionOut]:
    if await ctx.db.fetchval("SELECT id FROM point_rules WHERE id = $1", rule_id) is None:
        raise not_found("积分规则")
    rows = await ctx.db.fetch(
        f"SELECT {_VERSION_COLUMNS} FROM point_rule_versions WHERE rule_id = $1 ORDER BY version", rule_id
    )
    return [RuleVersionOut(rule_id=r[0], changed_by=r[13], changed_at=r[14], **_terms(r, r[1], r[12])) for r in rows]


async def _snapshot_version(ctx: Context, rule_id: int, changed_by: int | None) -> None:
    await ctx.db.execute(
        f"INSERT INTO point_rule_versions ({_VERSION_COLUMNS})"
        " SELECT id, version, name, category, trigger, points, cap_day, cap_month, cap_year, needs_approval,"
        " valid_from, valid_to, status, $2, updated_at FROM point_rules WHERE id = $1",
        rule_id, changed_by,
    )


def _require_rule_admin(user: Principal) -> None:
    if not user.is_root_admin:
        raise forbidden("只有街道管理员可以修改积分规则")


def _check_rule(category: str, points: float, valid_from: date | None, valid_to: date | None) -> None:
    if valid_from and valid_to and valid_to < valid_from:
        raise APIError(400, "invalid_dates", "有效期结束日期不能早于开始日期")
    if category == "penalty" and points > 0:
        raise APIError(400, "points_sign", "扣分规则的分值不能为正数")
    if category in ("basic", "reward") and points < 0:
        raise APIError(400, "points_sign", "基础或奖励规则的分值不能为负数")


async def create_rule(ctx: Context, user: Principal, data: RuleIn) -> RuleOut:
    _require_rule_admin(user)
    _check_rule(data.category, data.points, data.valid_from, data.valid_to)
    if await ctx.db.fetchval("SELECT id FROM point_rules WHERE code = $1", data.code) is not None:
        raise APIError(409, "rule_code_taken", "规则编码已存在")
    now = utcnow()
    async with ctx.db.transaction():
        rule_id = await ctx.db.fetchval(
            "INSERT INTO point_rules (code, name, category, trigger, points, cap_day, cap_month, cap_year, needs_approval,"
            " valid_from, valid_to, version, status, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, 'active', $12, $12) RETURNING id",
            data.code, data.name, data.category, data.trigger, data.points, data.cap_day, data.cap_month, data.cap_year,
            data.needs_approval, data.valid_from, data.valid_to, now,
        )
        await _snapshot_version(ctx, rule_id, user.user_id)
    forget_rules(ctx)
    return _rule_out(await ctx.db.fetchrow(f"SELECT {_RULE_OUT} FROM point_rules WHERE id = $1", rule_id))


async def update_rule(ctx: Context, user: Principal, rule_id: int, data: RulePatch) -> RuleOut:
    """An edit makes a new version (kept in ``point_rule_versions``); entries already in the ledger keep
    the delta and the ``rule_version`` they used. Retiring is ``status: retired`` (or a ``valid_to``)."""
    _require_rule_admin(user)
    row = await ctx.db.fetchrow(f"SELECT {_RULE_OUT} FROM point_rules WHERE id = $1", rule_id)
    if row is None:
        raise not_found("积分规则")
    current = _rule_out(row)
    changes = {
        k: v for k, v in msgspec.structs.asdict(data).items()
        if v is not msgspec.UNSET and v != getattr(current, k)
    }
    merged = {**msgspec.structs.asdict(current), **changes}
    _check_rule(merged["category"], merged["points"], merged["valid_from"], merged["valid_to"])
    if changes:
        async with ctx.db.transaction():
            for column, value in changes.items():
                await ctx.db.execute(f"UPDATE point_rules SET {column} = $1 WHERE id = $2", value, rule_id)
            await ctx.db.execute(
                "UPDATE point_rules SET version = version + 1, updated_at = $1 WHERE id = $2", utcnow(), rule_id
            )
            await _snapshot_version(ctx, rule_id, user.user_id)
    forget_rules(ctx)
    return _rule_out(await ctx.db.fetchrow(f"SELECT {_RULE_OUT} FROM point_rules WHERE id = $1", rule_id))
