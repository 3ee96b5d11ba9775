"""The live feed of a station for the staff dashboard and the kiosk screen (polled every few seconds).

Three index range reads: the station's activities by check-in window (``ix_activities_station_window``),
their counts (``ix_checkins_activity_status``) and its latest check-ins (``ix_checkins_station_scanned``).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from server.activities.services import effective_status
from server.core.auth import Principal
from server.core.context import Context
from server.core.masking import mask_name
from server.core.timeutil import utcnow
from server.stations.schemas import LiveActivityOut, LiveCheckinOut, LiveOut
from server.stations.services import reachable_station

RECENT = 10

# Activities whose check-in window overlaps today (local day): today's activities and every one open
# now. Both window columns are in the index, so only matching activities are read from the table.
_ACTIVITIES_SQL = """
SELECT a.id, a.title, a.starts_at, a.ends_at, a.status, a.checkin_opens_at, a.checkin_closes_at,
       (SELECT COUNT(*) FROM checkins c WHERE c.activity_id = a.id AND c.status = 'accepted' AND c.kind = 'in'),
       (SELECT COUNT(*) FROM checkins c WHERE c.activity_id = a.id AND c.status = 'pending_review' AND c.kind = 'in')
FROM activities a
WHERE a.station_id = $1 AND a.checkin_opens_at < $2 AND a.checkin_closes_at >= $3 AND a.status <> 'cancelled'
ORDER BY a.starts_at, a.id
"""

_RECENT_SQL = f"""
SELECT m.name, c.kind, c.method, c.status, c.scanned_at, c.activity_id
FROM checkins c JOIN members m ON m.id = c.member_id
WHERE c.station_id = $1
ORDER BY c.scanned_at DESC
LIMIT {RECENT}
"""


async def live_feed(ctx: Context, user: Principal, station_id: int) -> LiveOut:
    await reachable_station(ctx, user, station_id, manage=True)  # its staff and managers; others 404
    now = utcnow()
    tz = ctx.settings.tz
    today = datetime.combine(now.astimezone(tz).date(), time(0), tz)
    tomorrow = datetime.combine(today.date() + timedelta(days=1), time(0), tz)
    rows = await ctx.db.fetch(_ACTIVITIES_SQL, station_id, tomorrow, today)
    activities = [
        LiveActivityOut(
            id=r[0], title=r[1], starts_at=r[2], ends_at=r[3], status=effective_status(r[4], r[5], r[6], now),
            checked_in=int(r[7]), pending=int(r[8]),
        )
        for r in rows
    ]
    recent = [
        LiveCheckinOut(name_masked=mask_name(r[0]), kind=r[1], method=r[2], status=r[3], at=r[4], activity_id=r[5])
        for r in await ctx.db.fetch(_RECENT_SQL, station_id)
    ]
    return LiveOut(station_id=station_id, activities=activities, recent=recent)
