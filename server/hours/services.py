"""Volunteer hours (DESIGN §5) from a check-in/check-out pair.

hours = out − in, clipped to the activity's schedule, rounded down to 0.5 h (under 0.5 h is 0).
Up to 8 h a member a local day are approved at check-out and earn points at once; anything above
goes to staff review (decisions, locks and corrections come with the volunteer-hours issue).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from server.core.context import Context
from server.core.timeutil import utcnow
from server.points import services as points

AUTO_APPROVE_HOURS_PER_DAY = 8.0


def compute_hours(in_at: datetime, out_at: datetime, starts_at: datetime, ends_at: datetime) -> float:
    start = max(in_at, starts_at)
    end = min(out_at, ends_at)
    seconds = (end - start).total_seconds()
    if seconds <= 0:
        return 0.0
    return math.floor(seconds / 1800) / 2


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
    """Store the hours record; returns the points awarded now (0 when the record waits for review)."""
    hours = compute_hours(in_at, out_at, activity["starts_at"], activity["ends_at"])
    day = in_at.astimezone(ctx.settings.tz).date()
    approved_today = await ctx.db.fetchval(
        "SELECT COALESCE(SUM(hours), 0) FROM volunteer_hours WHERE member_id = $1 AND local_date = $2 AND status = 'approved'",
        member_id, day,
    )
    status = "approved" if float(approved_today) + hours <= AUTO_APPROVE_HOURS_PER_DAY else "pending"
    record_id = await ctx.db.fetchval(
        "INSERT INTO volunteer_hours (member_id, activity_id, checkin_in_id, checkin_out_id, local_date, hours, status,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        member_id, activity["id"], checkin_in_id, checkin_out_id, day, hours, status, utcnow(),
    )
    if status != "approved" or hours == 0:
        return 0.0
    rule = await points.rule_for_trigger(ctx, "volunteer_hour", day)
    if rule is None:
        return 0.0
    return await points.award(
        ctx, member_id=member_id, org_path=org_path, rule=rule, units=hours, occurred_at=in_at,
        source_type="hours", source_id=int(record_id),
    )
