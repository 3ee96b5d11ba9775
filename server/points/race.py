"""Branch 赛马 (DESIGN §6): branches compared by average member points and required-attendance rate,
banded 先进 / 中间 / 后进; the monthly trend per branch; and the attendance tally behind the rate.

Reads only tallies: ``points_tally`` (members and year points), ``points_tally_period`` (quarter and
month points), ``attendance_tally`` (required-activity attendance per org and local month), so a
street of 500 branches and 100k members answers without touching the ledger or the check-ins.

Attendance tally: a required activity is counted once, when it is closed (that is when absence is
settled): every active member of the organising org's subtree is *expected*; each is *attended*
(an accepted check-in, or one pending review), *excused* (approved leave, not attended) or absent.
Rows are kept for the member's org and every ancestor, in the local month the activity starts.
Later changes move a member between those states in the same write unit: leave approved after the
close, and review decisions (accepting a late check-in, rejecting one that was pending at the close,
moving a check-in to another activity). A check-in that arrives after the close counts once accepted.
A required activity that has ended but was never closed is counted at read time, as if closed now.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, time
from typing import Any

from server.core.auth import Principal
from server.core.context import Context
from server.core.sql import path_ids, placeholders
from server.core.timeutil import utcnow
from server.points import services as points
from server.points.schemas import BranchRaceOut, BranchRow, TrendBranch, TrendOut

BRANCH_KINDS = ("branch", "joint_branch", "floating_branch", "two_new_branch")  # 党支部 kinds (not 党总支, not 党小组)
BANDS = ("先进", "中间", "后进")
ACTIVE = "('normal', 'inflow')"

# ----------------------------------------------------------------------------- attendance tally

_COUNTED_CHECKIN = (
    "EXISTS (SELECT 1 FROM checkins c WHERE c.member_id = m.id AND c.activity_id = a.id AND c.kind = 'in'"
    " AND (c.status = 'accepted' OR (c.status = 'pending_review' AND c.received_at <= a.closed_at)))"
)
_APPROVED_LEAVE = (
    "EXISTS (SELECT 1 FROM leave_requests lr WHERE lr.member_id = m.id AND lr.activity_id = a.id"
    " AND lr.status = 'approved')"
)


async def _add(ctx: Context, org_path: str, year: int, month: int, expected: int, attended: int, excused: int) -> None:
    org_ids = path_ids(org_path)
    values = ", ".join(f"(${i + 6}, $1, $2, $3, $4, $5)" for i in range(len(org_ids)))
    await ctx.db.execute(
        f"INSERT INTO attendance_tally (org_id, year, month, expected, attended, excused) VALUES {values}"
        " ON CONFLICT (org_id, year, month) DO UPDATE SET expected = attendance_tally.expected + excluded.expected,"
        " attended = attendance_tally.attended + excluded.attended, excused = attendance_tally.excused + excluded.excused",
        year, month, expected, attended, excused, *org_ids,
    )


async def count_closed_activity(ctx: Context, activity_id: int) -> int:
    """Inside the close's unit: count a closed required activity's attendance, once. Returns the
    number of expected members (0 when the activity is not required or was counted before)."""
    row = await ctx.db.fetchrow(
        "SELECT required, attendance_counted, starts_at, org_path FROM activities WHERE id = $1", activity_id
    )
    if row is None or not row[0] or row[1]:
        return 0
    # Pending check-ins received up to now count as attended; ``closed_at`` marks that moment.
    await ctx.db.execute(
        "UPDATE activities SET attendance_counted = $1, closed_at = COALESCE(closed_at, $2) WHERE id = $3",
        True, utcnow(), activity_id,
    )
    expected, per_org = await _attendance_by_org(ctx, activity_id, row[3])
    local = row[2].astimezone(ctx.settings.tz)
    for org_id, (expected_n, attended, excused) in per_org.items():
        await ctx.db.execute(
            "INSERT INTO attendance_tally (org_id, year, month, expected, attended, excused)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, year, month) DO UPDATE"
            " SET expected = attendance_tally.expected + excluded.expected,"
            " attended = attendance_tally.attended + excluded.attended,"
            " excused = attendance_tally.excused + excluded.excused",
            org_id, local.year, local.month, expected_n, attended, excused,
        )
    return expected


async def _attendance_by_org(
    ctx: Context, activity_id: int, activity_org_path: str, counted: str = _COUNTED_CHECKIN,
) -> tuple[int, dict[int, list[int]]]:
    """(expected members, {org id: [expected, attended, excused]}) for the organising org and every
    org above and below it that has expected members."""
    members = await ctx.db.fetch(
        f"SELECT m.org_path, {counted}, {_APPROVED_LEAVE} FROM members m, activities a"
        f" WHERE a.id = $1 AND m.org_path LIKE $2 AND m.status IN {ACTIVE}",
        activity_id, activity_org_path + "%",
    )
    per_path: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for org_path, attended, excused in members:
        c = per_path[org_path]
        c[0] += 1
        c[1] += 1 if attended else 0
        c[2] += 1 if (excused and not attended) else 0
    per_org: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for org_path, counts in per_path.items():
        for org_id in path_ids(org_path):
            total = per_org[org_id]
            for i in range(3):
                total[i] += counts[i]
    return len(members), per_org


# An activity not closed yet: a check-in still pending review counts, as it would at a close now.
_COUNTED_CHECKIN_UNCLOSED = (
    "EXISTS (SELECT 1 FROM checkins c WHERE c.member_id = m.id AND c.activity_id = a.id AND c.kind = 'in'"
    " AND c.status IN ('accepted', 'pending_review'))"
)


async def _ended_uncounted(ctx: Context, path: str, period: points.Period) -> dict[int, list[int]]:
    """Required activities of the period that have ended but were never closed: staff forget to
    close, and the rate must not look better for it. They count as if closed now (not stored:
    the close will store them)."""
    first, after = period.local_dates()
    tz = ctx.settings.tz
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(after, time(), tz)
    rows = await ctx.db.fetch(
        "SELECT id, org_path FROM activities WHERE required AND NOT attendance_counted AND status <> 'cancelled'"
        " AND starts_at >= $1 AND starts_at < $2 AND ends_at < $3",
        start, end, utcnow(),
    )
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for activity_id, org_path in rows:
        if not (org_path.startswith(path) or path.startswith(org_path)):
            continue  # neither inside the subtree shown nor above it
        _, per_org = await _attendance_by_org(ctx, activity_id, org_path, _COUNTED_CHECKIN_UNCLOSED)
        for org_id, counts in per_org.items():
            total = totals[org_id]
            for i in range(3):
                total[i] += counts[i]
    return totals


AttendanceState = tuple[str, str, int, int]  # (attended | excused | absent, member org path, year, month)


async def attendance_state(ctx: Context, activity_id: int | None, member_id: int) -> AttendanceState | None:
    """The member's counted state for a counted (closed, required) activity; None if not counted or the
    member is not expected there (inactive, or outside the organising org's subtree)."""
    if activity_id is None:
        return None
    row = await ctx.db.fetchrow(
        f"SELECT a.required, a.attendance_counted, a.starts_at, a.org_path, m.org_path, m.status,"
        f" {_COUNTED_CHECKIN}, {_APPROVED_LEAVE} FROM activities a, members m WHERE a.id = $1 AND m.id = $2",
        activity_id, member_id,
    )
    if row is None or not row[0] or not row[1] or row[5] not in ("normal", "inflow") or not row[4].startswith(row[3]):
        return None
    local = row[2].astimezone(ctx.settings.tz)
    state = "attended" if row[6] else "excused" if row[7] else "absent"
    return state, row[4], local.year, local.month


async def attendance_changed(ctx: Context, activity_id: int | None, member_id: int, before: AttendanceState | None) -> None:
    """After a change (same write unit): move the member between attended / excused / absent."""
    if before is None:
        return
    after = await attendance_state(ctx, activity_id, member_id)
    if after is None or after[0] == before[0]:
        return
    delta = {"attended": 0, "excused": 0, "absent": 0}
    delta[before[0]] -= 1
    delta[after[0]] += 1
    await _add(ctx, before[1], before[2], before[3], 0, delta["attended"], delta["excused"])


# ----------------------------------------------------------------------------- 赛马 and trend


async def _branches(ctx: Context, path: str) -> list[tuple[int, str, str]]:
    return [
        (int(r[0]), r[1], r[2]) for r in await ctx.db.fetch(
            f"SELECT id, name, kind FROM orgs WHERE path LIKE $1 AND kind IN ({placeholders(len(BRANCH_KINDS), 2)})"
            " ORDER BY path",
            path + "%", *BRANCH_KINDS,
        )
    ]


async def _grouped(ctx: Context, sql: str, ids: list[int], *args: Any) -> list[Any]:
    """``sql`` with ``{ids}`` for an IN list after ``args``; chunked."""
    out: list[Any] = []
    for i in range(0, len(ids), 1000):
        chunk = ids[i:i + 1000]
        out.extend(await ctx.db.fetch(sql.format(ids=placeholders(len(chunk), len(args) + 1)), *args, *chunk))
    return out


def band_for(rank: int, ranked: int, top: float, bottom: float) -> str:
    """先进: rank within the top ⌊n × top⌋ places; 后进: within the bottom ⌊n × bottom⌋ places;
    ranks are competition ranks, so a tie straddling a cut-off shares the better band."""
    n_top = math.floor(ranked * top + 1e-9)
    n_bottom = math.floor(ranked * bottom + 1e-9)
    if rank <= n_top:
        return BANDS[0]
    if rank > ranked - n_bottom:
        return BANDS[2]
    return BANDS[1]


async def branch_race(ctx: Context, user: Principal, org_id: int | None, period: points.Period) -> BranchRaceOut:
    org_id, org_name, path = await points.visible_org(ctx, user, org_id)
    await points.ensure_year_tallies(ctx, period.year)
    branches = await _branches(ctx, path)
    ids = [b[0] for b in branches]
    year = period.year
    members: dict[int, int] = {}
    earned: dict[int, float] = {}
    for oid, count, total in await _grouped(
        ctx, "SELECT org_id, COUNT(*), COALESCE(SUM(earned), 0) FROM points_tally WHERE year = $1"
        " AND org_id IN ({ids}) GROUP BY org_id", ids, year,
    ):
        members[oid] = int(count)
        earned[oid] = float(total)
    if period.code is not None:
        earned = {oid: float(total) for oid, total in await _grouped(
            ctx, "SELECT org_id, SUM(earned) FROM points_tally_period WHERE year = $1 AND period = $2"
            " AND org_id IN ({ids}) GROUP BY org_id", ids, year, period.code,
        )}
    first, last = period.months[0], period.months[-1]
    attendance = {oid: (int(e), int(a), int(x)) for oid, e, a, x in await _grouped(
        ctx, "SELECT org_id, SUM(expected), SUM(attended), SUM(excused) FROM attendance_tally WHERE year = $1"
        " AND month >= $2 AND month <= $3 AND org_id IN ({ids}) GROUP BY org_id", ids, year, first, last,
    )}
    shown = set(ids)
    for oid, (e, a, x) in (await _ended_uncounted(ctx, path, period)).items():
        if oid in shown:
            before = attendance.get(oid, (0, 0, 0))
            attendance[oid] = (before[0] + e, before[1] + a, before[2] + x)
    base = ctx.settings.points_base
    rows: list[BranchRow] = []
    for oid, name, kind in branches:
        n = members.get(oid, 0)
        total = earned.get(oid, 0.0)
        expected, attended, excused = attendance.get(oid, (0, 0, 0))
        due = expected - excused
        rate = round(attended / due, 4) if due > 0 else None
        avg = round(base + total / n, 2) if n else None
        score = round(avg * (rate if rate is not None else 1.0), 4) if avg is not None else None
        rows.append(BranchRow(
            org_id=oid, org_name=name, kind=kind, members=n, earned=round(total, 4), avg_points=avg,
            expected=expected, attended=attended, excused=excused, attendance_rate=rate, score=score, rank=None,
            band=None,
        ))
    ranked = [r for r in rows if r.score is not None]
    ranked.sort(key=lambda r: (-r.score, -(r.attendance_rate if r.attendance_rate is not None else 1.0), r.org_id))  # type: ignore[operator]
    top, bottom = ctx.settings.race_top, ctx.settings.race_bottom
    rank, previous = 0, None
    for position, row in enumerate(ranked, start=1):
        if row.score != previous:
            rank, previous = position, row.score
        row.rank = rank
        row.band = band_for(rank, len(ranked), top, bottom)
    unranked = [r for r in rows if r.score is None]
    return BranchRaceOut(
        org_id=org_id, org_name=org_name, year=year, quarter=period.quarter, month=period.month,
        top_fraction=top, bottom_fraction=bottom, branches=ranked + unranked,
    )


async def trend(ctx: Context, user: Principal, org_id: int | None, year: int) -> TrendOut:
    org_id, org_name, path = await points.visible_org(ctx, user, org_id)
    branches = await _branches(ctx, path)
    ids = [b[0] for b in branches]
    sums: dict[int, list[float]] = {oid: [0.0] * 12 for oid in ids}
    for oid, period, total in await _grouped(
        ctx, "SELECT org_id, period, SUM(earned) FROM points_tally_period WHERE year = $1 AND period <= 12"
        " AND org_id IN ({ids}) GROUP BY org_id, period", ids, year,
    ):
        sums[oid][int(period) - 1] = round(float(total), 4)
    totals = [round(sum(sums[oid][m] for oid in ids), 4) for m in range(12)]
    return TrendOut(
        org_id=org_id, org_name=org_name, year=year,
        branches=[TrendBranch(org_id=oid, org_name=name, points=sums[oid]) for oid, name, _ in branches], totals=totals,
    )
