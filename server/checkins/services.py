"""Check-in rules (DESIGN §4): one item in, one stored attempt and one result out.

Order of checks for an item: replay (same member + client_uuid → stored result) → token shape and
signature → clock skew → hard offline limit → what the token points at (station / activity /
kiosk, versions, window, status) → eligibility → capacity → duplicate → soft offline limit and
geofence (review) → accept and award points. Every outcome is stored as an attempt.

A request's items run in one write unit (on SQLite a savepoint inside the group commit; on
PostgreSQL a transaction holding a per-member advisory lock): a bad item is a result, never an
exception, so one bad item never fails the batch, a failing database leaves nothing half-written,
and two identical submissions racing each other resolve to one row.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from server.core.context import Context
from server.core.sql import placeholders
from server.core.timeutil import utcnow
from server.keys.keyring import b64url_decode, public_key_from_jwk
from server.keys.tokens import KIOSK_KID_PREFIX, TokenError, extract_token, unverified_header
from server.points import race as points_race
from server.points import services as points

MEETING_TYPES = {
    "branch_meeting", "committee_meeting", "group_meeting", "party_lecture", "theme_day", "life_meeting", "evaluation",
}
ACTIVE_MEMBER_STATUSES = ("normal", "inflow")
STAFF_METHODS = ("staff_card", "staff_manual")

MESSAGES = {
    "accepted": "签到成功",
    "accepted_out": "签退成功",
    "accepted_visit": "到站登记成功",
    "duplicate": "已经签到过了，无需重复签到",
    "duplicate_out": "已经签退过了",
    "malformed": "二维码内容无法识别",
    "bad_signature": "二维码签名无效，可能是伪造的",
    "unknown_key": "二维码的签名密钥未知或已停用",
    "revoked": "二维码已作废（海报、会员卡或签到屏已更换）",
    "expired": "不在签到时间内",
    "not_open": "活动未开放签到（已取消或不在本站）",
    "clock_skew": "手机时间与服务器相差过大，请校准手机时间后重试",
    "too_late": "离线记录超过期限未同步，已失效",
    "late_sync": "离线记录同步较晚，已提交工作人员审核",
    "ambiguous": "该服务站此时有多个活动，请选择具体活动；已提交工作人员审核",
    "no_checkin": "还没有签到，无法签退",
    "not_allowed": "您不在该活动的参加范围内",
    "capacity": "活动人数已满",
    "outside_geofence": "签到位置不在服务站范围内，已提交工作人员审核",
    "needs_approval": "该活动的积分需工作人员审核，签到已提交审核",
    "wrong_code": "这是党员证二维码，请扫描活动或服务站的签到码",
}


@dataclass
class Item:
    client_uuid: str
    token: str
    scanned_at: datetime
    kind: str = "in"
    activity_id: int | None = None
    lat: float | None = None
    lng: float | None = None
    accuracy_m: float | None = None


@dataclass
class Actor:
    """Who is checked in, and how: the member themself, a kiosk code, or staff on their behalf."""

    member_id: int
    method: str = "self"  # self | kiosk | staff_card | staff_manual
    staff_user_id: int | None = None
    kiosk_id: int | None = None


@dataclass
class Result:
    client_uuid: str
    status: str
    reason: str | None = None
    checkin_id: int | None = None
    activity_id: int | None = None
    station_id: int | None = None
    points_awarded: float = 0.0
    message: str = ""


class _Row:
    """A live check-in of the batch's member: read from the database, or planned by this batch and
    written by ``_materialize`` (``id`` is None until then)."""

    __slots__ = ("id", "scanned_at", "status", "key", "values")

    def __init__(self, id: int | None, scanned_at: datetime, status: str, key: tuple[Any, ...], values: tuple[Any, ...] = ()):
        self.id = id
        self.scanned_at = scanned_at
        self.status = status
        self.key = key
        self.values = values


class _DeferredConflict(Exception):
    """A planned check-in met a live row the batch had not seen: the batch is redone row by row."""


def _cid(value: Any) -> int | None:
    return value.id if isinstance(value, _Row) else value


@dataclass
class _Batch:
    """What one request's write unit knows: stored results by client_uuid (prefetched, then grown
    as items are judged, so a uuid repeated inside one batch is a replay too) and the attempt rows
    still to write.

    ``deferred`` (batches of several items): the member's live check-ins are read up front and new
    ones are planned in memory (``live``, ``planned``) and written by one multi-row INSERT per 500
    at the end — the member lock (PostgreSQL) or the single writer (SQLite) means nobody else adds
    any meanwhile, and should a row conflict anyway the whole batch is redone row by row."""

    known: dict[str, list[tuple[int, Result]]] = field(default_factory=dict)
    to_insert: list[list[Any]] = field(default_factory=list)
    activities: dict[int, tuple[dict[str, Any] | None, dict[str, Any] | None]] = field(default_factory=dict)
    held_open: dict[int, str] = field(default_factory=dict)  # activity id → status settled for this unit
    entries: points.PendingEntries = field(default_factory=points.PendingEntries)
    deferred: bool = False
    live: dict[tuple[Any, ...], _Row] = field(default_factory=dict)
    loaded: set[tuple[Any, ...]] = field(default_factory=set)
    planned: list[_Row] = field(default_factory=list)
    unresolved: list[tuple[Result, list[Any], _Row]] = field(default_factory=list)

    def mine(self, client_uuid: str, member_id: int) -> Result | None:
        for owner, result in self.known.get(client_uuid, ()):
            if owner == member_id:
                return result
        return None


# Conflict targets naming the partial unique indexes of migration m0002 (same text on both engines).
_LIVE_ACTIVITY_CONFLICT = (
    "ON CONFLICT (member_id, activity_id, kind) WHERE activity_id IS NOT NULL"
    " AND status IN ('accepted', 'pending_review') DO NOTHING"
)
_LIVE_VISIT_CONFLICT = (
    "ON CONFLICT (member_id, station_id, local_date) WHERE activity_id IS NULL AND kind = 'in'"
    " AND status IN ('accepted', 'pending_review') DO NOTHING"
)

_CHECKIN_COLUMNS = (
    "member_id, activity_id, station_id, kind, method, status, reason, scanned_at, received_at, local_date,"
    " staff_user_id, kiosk_id"
)
_LIVE_SQL = (
    "SELECT id, activity_id, kind, station_id, local_date, scanned_at, status FROM checkins"
    " WHERE member_id = $1 AND status IN ('accepted', 'pending_review')"
)

_INSERT_ATTEMPT = (
    "INSERT INTO checkin_attempts (client_uuid, member_id, token, token_type, kind, method, staff_user_id,"
    " station_id, activity_id, kiosk_id, scanned_at, received_at, lat, lng, accuracy_m, status, reason,"
    " checkin_id, points_awarded, message)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
)


@dataclass
class _Outcome:
    status: str
    reason: str | None = None
    message_key: str | None = None
    station_id: int | None = None
    activity_id: int | None = None
    kiosk_id: int | None = None
    token_type: str | None = None
    checkin_id: int | None = None
    points: float = 0.0


def _reject(reason: str, **kw: Any) -> _Outcome:
    return _Outcome(status="rejected", reason=reason, **kw)


_ACTIVITY_COLUMNS = (
    "a.id, a.station_id, a.org_path, a.type, a.status, a.checkin_opens_at, a.checkin_closes_at, a.required,"
    " a.records_hours, a.capacity, a.starts_at, a.ends_at"
)
_ACTIVITY_SQL = f"SELECT {_ACTIVITY_COLUMNS} FROM activities a"
_STATION_COLUMNS = "s.id, s.poster_version, s.lat, s.lng, s.geofence_m, s.status, s.org_path"


class CheckinProcessor:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db
        limits = ctx.caches.get("checkin_limits")
        if limits is None:
            s = ctx.settings
            limits = ctx.caches["checkin_limits"] = (
                timedelta(hours=s.offline_soft_hours), timedelta(days=s.offline_hard_days),
                timedelta(seconds=s.clock_skew_seconds), timedelta(seconds=s.kiosk_token_max_age_seconds),
            )
        self.soft_limit, self.hard_limit, self.skew, self.kiosk_age = limits
        self._batch: _Batch | None = None
        self._locals: dict[datetime, datetime] = {}

    def _local(self, moment: datetime) -> datetime:
        """``moment`` in the configured time zone, converted once per item (its day, its rule and its
        ledger entry all need it)."""
        local = self._locals.get(moment)
        if local is None:
            local = self._locals[moment] = moment.astimezone(self.ctx.settings.tz)
        return local

    # ------------------------------------------------------------------ entry points
    async def process(
        self, actor: Actor, items: list[Item], activity_id: int | None = None, member: tuple[int, str, str] | None = None
    ) -> list[Result]:
        """Items in ``scanned_at`` order; results in the order given.

        With ``activity_id`` (staff-side check-in) the items carry no QR token: staff vouch for
        the member, and the activity's own rules (window, eligibility, capacity) still apply.
        """
        received_at = utcnow()
        order = sorted(range(len(items)), key=lambda i: items[i].scanned_at)
        results: list[Result | None] = [None] * len(items)
        if member is None:  # (id, org_path, status); a member's own request passes it from the principal
            member = await self.db.fetchrow("SELECT id, org_path, status FROM members WHERE id = $1", actor.member_id)
        # One unit for the whole batch: every outcome (even a rejection) is a result, not an
        # exception, so a batch is all written or — if the database fails — not at all.
        deferred = len(items) > 1
        while True:
            try:
                async with self.db.transaction():
                    await self.db.lock_member(actor.member_id)
                    batch = self._batch = await self._begin_batch(items, actor.member_id if deferred else None)
                    for index in order:
                        results[index] = await self._one(actor, member, items[index], received_at, activity_id, batch)
                    await self._flush(batch)
                break
            except _DeferredConflict:
                deferred = False  # redo the unit (rolled back) one row at a time
        return [r for r in results if r is not None]

    async def reject_card(self, actor: Actor, item: Item, activity_id: int) -> Result:
        """A member card whose ``v`` is older than the member's card_version (lost card, revoked)."""
        received_at = utcnow()
        async with self.db.transaction():
            await self.db.lock_member(actor.member_id)
            batch = await self._begin_batch([item])
            stored = batch.mine(item.client_uuid, actor.member_id)
            if stored is not None:
                return stored
            result = self._store(actor, item, received_at, _reject("revoked", activity_id=activity_id, token_type="mb"), batch)
            await self._flush(batch)
            return result

    async def _begin_batch(self, items: list[Item], deferred_member: int | None = None) -> _Batch:
        """One query for the stored results of every client_uuid in the request (replays); for a
        deferred batch also the activities its codes name and the member's live check-ins there."""
        batch = _Batch(deferred=deferred_member is not None)
        uuids = sorted({item.client_uuid for item in items})
        for start in range(0, len(uuids), 500):
            chunk = uuids[start : start + 500]
            rows = await self.db.fetch(
                "SELECT client_uuid, member_id, status, reason, checkin_id, activity_id, station_id, points_awarded,"
                f" message FROM checkin_attempts WHERE client_uuid IN ({placeholders(len(chunk))})",
                *chunk,
            )
            for row in rows:
                batch.known.setdefault(row[0], []).append(
                    (row[1], Result(row[0], row[2], row[3], row[4], row[5], row[6], float(row[7]), row[8]))
                )
        if len(items) > 1:
            await self._prefetch_activities(items, batch)
            # Required activities held open in one go (at most 64 here: the ids come from codes not
            # yet verified; any others are held one by one when an item for them is judged).
            required = sorted(a for a, (activity, _) in batch.activities.items() if activity and activity["required"])
            if required:
                batch.held_open.update(
                    await self.db.hold_open({a: batch.activities[a][0]["status"] for a in required[:64]})  # type: ignore[index]
                )
        if deferred_member is not None:
            ids = [a for a, (activity, _) in batch.activities.items() if activity is not None]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = await self.db.fetch(
                    _LIVE_SQL + f" AND activity_id IN ({placeholders(len(chunk), 2)})", deferred_member, *chunk
                )
                self._remember_live(batch, rows)
                batch.loaded.update(("a", a) for a in chunk)
        return batch

    @staticmethod
    def _remember_live(batch: _Batch, rows: list[Any]) -> None:
        for cid, activity_id, kind, station_id, local_date, scanned_at, status in rows:
            key = ("a", activity_id, kind) if activity_id is not None else ("v", station_id, local_date)
            batch.live[key] = _Row(cid, scanned_at, status, key)

    async def _live(self, batch: _Batch, member_id: int, key: tuple[Any, ...]) -> _Row | None:
        """Deferred mode: the member's live check-in for an activity+kind or a station+day."""
        scope = key[:2] if key[0] == "a" else key
        if scope not in batch.loaded:
            if key[0] == "a":
                rows = await self.db.fetch(_LIVE_SQL + " AND activity_id = $2", member_id, key[1])
            else:
                rows = await self.db.fetch(
                    _LIVE_SQL + " AND activity_id IS NULL AND kind = 'in' AND station_id = $2 AND local_date = $3",
                    member_id, key[1], key[2],
                )
            self._remember_live(batch, rows)
            batch.loaded.add(scope)
        return batch.live.get(key)

    async def _materialize(self, batch: _Batch) -> None:
        """Write the planned check-ins: one multi-row INSERT per 500, ids matched back by key."""
        rows = [r for r in batch.planned if r.id is None]
        batch.planned.clear()
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            values = _values_list(len(chunk), len(chunk[0].values))
            returned = await self.db.fetch(
                f"INSERT INTO checkins ({_CHECKIN_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING"
                " RETURNING id, activity_id, kind, station_id, local_date",
                *[v for r in chunk for v in r.values],
            )
            ids = {
                (("a", a, kind) if a is not None else ("v", station_id, local_date)): cid
                for cid, a, kind, station_id, local_date in returned
            }
            for row in chunk:
                row.id = ids.get(row.key)
                if row.id is None:
                    raise _DeferredConflict

    async def _prefetch_activities(self, items: list[Item], batch: _Batch) -> None:
        """The activities a batch's codes name, in one query. Payloads are read unverified here only
        to choose rows; every item is still verified when judged."""
        wanted: set[int] = {item.activity_id for item in items if item.activity_id is not None}
        for item in items:
            aid = _named_activity(item.token)
            if aid is not None:
                wanted.add(aid)
        ids = sorted(wanted)[:1000]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.db.fetch(
                f"SELECT {_ACTIVITY_COLUMNS}, {_STATION_COLUMNS} FROM activities a JOIN stations s ON s.id = a.station_id"
                f" WHERE a.id IN ({placeholders(len(chunk))})",
                *chunk,
            )
            for row in rows:
                batch.activities[row[0]] = (_activity_dict(row), _station_dict(row[12:]))
            for activity_id in chunk:
                batch.activities.setdefault(activity_id, (None, None))

    async def _flush(self, batch: _Batch) -> None:
        """The request's planned check-ins, ledger entries and attempts, written in one go at the end of its unit."""
        if batch.planned:
            await self._materialize(batch)
        if batch.deferred:
            for result, attempt, row in batch.unresolved:
                result.checkin_id = attempt[17] = row.id
            batch.unresolved.clear()
            entries = batch.entries
            entries.rows = [r if not isinstance(r[8], _Row) else (*r[:8], r[8].id, *r[9:]) for r in entries.rows]
        await points.flush(self.ctx, batch.entries)
        if batch.to_insert:
            await self.db.executemany(_INSERT_ATTEMPT, batch.to_insert)
            batch.to_insert.clear()

    # ------------------------------------------------------------------ one item
    async def _one(
        self, actor: Actor, member: Any, item: Item, received_at: datetime, activity_id: int | None, batch: _Batch
    ) -> Result:
        stored = batch.mine(item.client_uuid, actor.member_id)
        if stored is not None:
            return stored
        if item.client_uuid in batch.known:  # someone else's uuid: never reveal or reuse their result
            outcome = _reject("malformed")
        elif activity_id is not None:
            outcome = await self._judge_staff(actor, member, item, received_at, activity_id)
        else:
            outcome = await self._judge(actor, member, item, received_at)
        return self._store(actor, item, received_at, outcome, batch)

    async def _judge_staff(
        self, actor: Actor, member: Any, item: Item, received_at: datetime, activity_id: int
    ) -> _Outcome:
        if item.scanned_at - received_at > self.skew:
            return _reject("clock_skew")
        if received_at - item.scanned_at > self.hard_limit:
            return _reject("too_late")
        activity, station = await self._activity_and_station(activity_id)
        if activity is None:
            return _reject("not_open")
        return await self._for_activity(actor, member, item, received_at, activity, station)

    async def _judge(self, actor: Actor, member: Any, item: Item, received_at: datetime) -> _Outcome:
        try:
            token = extract_token(item.token)
            claims, kiosk_id = await self._verify(token)
        except TokenError as exc:
            return _reject(exc.reason)
        kind = claims.get("t")
        token_type = kind if kind in ("st", "ac", "rk", "mb") else None
        if kiosk_id is not None:
            actor = replace(actor, method="kiosk", kiosk_id=kiosk_id)
        outcome = await self._judge_claims(actor, member, item, received_at, claims, kiosk_id)
        outcome.token_type = token_type
        outcome.kiosk_id = kiosk_id
        return outcome

    async def _verify(self, token: str) -> tuple[dict[str, Any], int | None]:
        header = unverified_header(token)
        kid = header["kid"]
        if self.ctx.tokens.is_server_kid(kid):
            return self.ctx.tokens.verify_server(token), None
        if kid.startswith(KIOSK_KID_PREFIX) and kid[1:].isdigit():
            kiosk_id = int(kid[1:])
            row = await self.db.fetchrow("SELECT public_key_jwk, status FROM kiosks WHERE id = $1", kiosk_id)
            if row is None:
                raise TokenError("unknown_key", MESSAGES["unknown_key"])
            key = _kiosk_key(row[0])
            claims = self.ctx.tokens.verify_with(token, key)  # signature first: a forged code is bad_signature
            if claims.get("t") != "rk":
                # A kiosk key lives in a tablet's browser: it signs its rotating codes, never an activity
                # code, a poster or a member card (those would outlive the 60 s and cross stations).
                raise TokenError("bad_signature", MESSAGES["bad_signature"])
            if row[1] != "active":
                raise TokenError("revoked", MESSAGES["revoked"])
            return claims, kiosk_id
        raise TokenError("unknown_key", MESSAGES["unknown_key"])

    async def _judge_claims(
        self, actor: Actor, member: Any, item: Item, received_at: datetime, claims: dict[str, Any], kiosk_id: int | None
    ) -> _Outcome:
        scanned_at = item.scanned_at
        if scanned_at - received_at > self.skew:
            return _reject("clock_skew")
        if received_at - scanned_at > self.hard_limit:
            return _reject("too_late")
        t = claims.get("t")
        try:
            if t == "st":
                station_id = int(claims["sid"])
                station = await self._station(station_id)
                if station is None:
                    return _reject("not_open")
                if int(claims.get("v", -1)) != station["poster_version"]:
                    return _reject("revoked", station_id=station_id)
                return await self._at_station(actor, member, item, received_at, station)
            if t == "ac":
                activity_id, station_id = int(claims["aid"]), int(claims["sid"])
                nbf, exp = int(claims["nbf"]), int(claims["exp"])
                ts = scanned_at.timestamp()
                if ts < nbf or ts > exp:
                    return _reject("expired", activity_id=activity_id, station_id=station_id)
                activity, station = await self._activity_and_station(activity_id)
                if activity is None or activity["station_id"] != station_id:
                    return _reject("not_open", station_id=station_id)
                return await self._for_activity(actor, member, item, received_at, activity, station)
            if t == "rk":
                station_id = int(claims["sid"])
                iat = int(claims["iat"])
                if abs(scanned_at.timestamp() - iat) > self.kiosk_age.total_seconds():
                    return _reject("expired", station_id=station_id)
                kiosk_station = await self.db.fetchval("SELECT station_id FROM kiosks WHERE id = $1", kiosk_id)
                if kiosk_station != station_id:
                    return _reject("bad_signature")
                station = await self._station(station_id)
                if station is None:
                    return _reject("not_open")
                aid = claims.get("aid")
                if aid is not None:
                    activity = await self._activity(int(aid))
                    if activity is None or activity["station_id"] != station_id:
                        return _reject("not_open", station_id=station_id)
                    return await self._for_activity(actor, member, item, received_at, activity, station)
                return await self._at_station(actor, member, item, received_at, station)
            if t == "mb":
                return _reject("not_allowed", message_key="wrong_code")
        except (KeyError, TypeError, ValueError):
            return _reject("malformed")
        return _reject("malformed")

    # ------------------------------------------------------------------ targets
    async def _station(self, station_id: int) -> dict[str, Any] | None:
        row = await self.db.fetchrow(f"SELECT {_STATION_COLUMNS} FROM stations s WHERE s.id = $1", station_id)
        return _station_dict(row) if row else None

    async def _activity_and_station(self, activity_id: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """One query for the common case (an activity code): the activity and its station."""
        if self._batch is not None and activity_id in self._batch.activities:
            return self._batch.activities[activity_id]
        row = await self.db.fetchrow(
            f"SELECT {_ACTIVITY_COLUMNS}, {_STATION_COLUMNS} FROM activities a JOIN stations s ON s.id = a.station_id"
            " WHERE a.id = $1",
            activity_id,
        )
        if row is None:
            return None, None
        return _activity_dict(row), _station_dict(row[12:])

    async def _activity(self, activity_id: int) -> dict[str, Any] | None:
        row = await self.db.fetchrow(_ACTIVITY_SQL + " WHERE a.id = $1", activity_id)
        return _activity_dict(row) if row else None

    async def _at_station(
        self, actor: Actor, member: Any, item: Item, received_at: datetime, station: dict[str, Any]
    ) -> _Outcome:
        """A station poster or kiosk code without an activity: the activity open at ``scanned_at``."""
        rows = await self.db.fetch(
            _ACTIVITY_SQL + " WHERE a.station_id = $1 AND a.checkin_opens_at <= $2 AND a.checkin_closes_at >= $2"
            " AND a.status = 'planned' ORDER BY a.starts_at, a.id",
            station["id"], item.scanned_at,
        )
        open_now = [_activity_dict(r) for r in rows]
        if item.activity_id is not None:
            chosen = [a for a in open_now if a["id"] == item.activity_id]
            if not chosen:
                return _reject("not_open", station_id=station["id"], activity_id=item.activity_id)
            return await self._for_activity(actor, member, item, received_at, chosen[0], station)
        if len(open_now) == 1:
            return await self._for_activity(actor, member, item, received_at, open_now[0], station)
        if len(open_now) > 1:
            if item.kind == "out":
                return _reject("ambiguous", station_id=station["id"])
            return await self._pending(actor, member, item, received_at, station, None, "ambiguous")
        return await self._station_visit(actor, member, item, received_at, station)

    async def _held_open(self, activity: dict[str, Any]) -> str:
        """The activity's status, settled once per unit: a close must not slip in between this
        check-in's judgement and its commit (see ``Database.hold_open``)."""
        held = self._batch.held_open if self._batch is not None else {}
        status = held.get(activity["id"])
        if status is None:
            held.update(await self.db.hold_open({activity["id"]: activity["status"]}))
            status = held[activity["id"]]
        return status

    async def _for_activity(
        self,
        actor: Actor,
        member: Any,
        item: Item,
        received_at: datetime,
        activity: dict[str, Any],
        station: dict[str, Any] | None,
    ) -> _Outcome:
        ids = {"activity_id": activity["id"], "station_id": activity["station_id"]}
        if station is None:
            return _reject("not_open", **ids)
        # Only a required activity's close writes anything per member (the absence rule, 赛马).
        status = await self._held_open(activity) if activity["required"] else activity["status"]
        if status == "cancelled":
            return _reject("not_open", **ids)
        if not (activity["opens"] <= item.scanned_at <= activity["closes"]):
            return _reject("expired", **ids)
        if member is None or member[2] not in ACTIVE_MEMBER_STATUSES:
            return _reject("not_allowed", **ids)
        if activity["required"] and not str(member[1]).startswith(activity["org_path"]):
            return _reject("not_allowed", **ids)

        if item.kind == "out":
            return await self._check_out(actor, member, item, received_at, activity, station)

        if activity["capacity"] is not None:
            # Different members race for the last places: count under a per-activity lock.
            await self.db.lock_activity(activity["id"])
            taken = await self.db.fetchval(
                "SELECT COUNT(*) FROM checkins WHERE activity_id = $1 AND kind = 'in'"
                " AND status IN ('accepted', 'pending_review')",
                activity["id"],
            )
            batch = self._batch
            if batch is not None and batch.deferred:
                taken += sum(1 for r in batch.planned if r.key == ("a", activity["id"], "in"))
            if int(taken) >= activity["capacity"]:
                existing = await self._live_id(actor.member_id, activity["id"], "in")
                if existing is not None:  # already in: a re-scan is a duplicate, not "full"
                    return _Outcome(status="duplicate", checkin_id=existing, **ids)
                return _reject("capacity", **ids)
        review = self._review_reason(item, received_at, station)
        rule = await self._attendance_rule(activity, item.scanned_at)
        if review is None and rule is not None and rule.needs_approval and actor.method not in STAFF_METHODS:
            # A self or kiosk scan waits in the review queue (points on acceptance); a staff check-in
            # is itself that approval.
            review = "needs_approval"
        if review or status == "closed":
            return await self._pending(actor, member, item, received_at, station, activity, review or "late_sync")
        checkin_id = await self._insert_checkin(actor, member, item, received_at, station["id"], activity["id"], "accepted", None)
        if checkin_id is None:
            return _Outcome(status="duplicate", checkin_id=await self._live_id(actor.member_id, activity["id"], "in"), **ids)
        awarded = 0.0
        if rule is not None:
            awarded = await self._award_attendance(member, activity, item.scanned_at, checkin_id, rule)
        return _Outcome(status="accepted", checkin_id=checkin_id, points=awarded, **ids)

    async def _check_out(
        self, actor: Actor, member: Any, item: Item, received_at: datetime, activity: dict[str, Any], station: dict[str, Any]
    ) -> _Outcome:
        ids = {"activity_id": activity["id"], "station_id": activity["station_id"]}
        batch = self._batch
        if batch is not None and batch.deferred:
            live = await self._live(batch, actor.member_id, ("a", activity["id"], "in"))
            checked_in = None if live is None else (live, live.scanned_at, live.status)
        else:
            checked_in = await self.db.fetchrow(
                "SELECT id, scanned_at, status FROM checkins WHERE member_id = $1 AND activity_id = $2 AND kind = 'in'"
                " AND status IN ('accepted', 'pending_review')",
                actor.member_id, activity["id"],
            )
        if checked_in is None:
            return _reject("no_checkin", **ids)
        review = self._review_reason(item, received_at, station)
        status = "pending_review" if review or checked_in[2] != "accepted" else "accepted"
        checkin_id = await self._insert_checkin(actor, member, item, received_at, station["id"], activity["id"], status, review)
        if checkin_id is None:
            already = await self._live_id(actor.member_id, activity["id"], "out")
            return _Outcome(status="duplicate", checkin_id=already, message_key="duplicate_out", **ids)
        awarded = 0.0
        if activity["records_hours"] and status == "accepted":
            from server.hours.services import record_hours

            if batch is not None and batch.planned:
                await self._materialize(batch)  # the hours record refers to both rows
            awarded = await record_hours(
                self.ctx, member_id=actor.member_id, org_path=member[1], activity=activity,
                checkin_in_id=_cid(checked_in[0]), checkin_out_id=_cid(checkin_id), in_at=checked_in[1],
                out_at=item.scanned_at,
            )
        if status == "pending_review":
            return _Outcome(status=status, reason=review or "late_sync", checkin_id=checkin_id, **ids)
        return _Outcome(status="accepted", checkin_id=checkin_id, points=awarded, message_key="accepted_out", **ids)

    async def _station_visit(
        self, actor: Actor, member: Any, item: Item, received_at: datetime, station: dict[str, Any]
    ) -> _Outcome:
        ids = {"station_id": station["id"]}
        if item.kind == "out":
            return _reject("no_checkin", **ids)
        if member is None or member[2] not in ACTIVE_MEMBER_STATUSES:
            return _reject("not_allowed", **ids)
        review = self._review_reason(item, received_at, station)
        if review:
            return await self._pending(actor, member, item, received_at, station, None, review)
        checkin_id = await self._insert_checkin(actor, member, item, received_at, station["id"], None, "accepted", None)
        if checkin_id is None:
            return _Outcome(status="duplicate", checkin_id=await self._visit_id(actor.member_id, station["id"], item), **ids)
        return _Outcome(status="accepted", checkin_id=checkin_id, message_key="accepted_visit", **ids)

    async def _pending(
        self,
        actor: Actor,
        member: Any,
        item: Item,
        received_at: datetime,
        station: dict[str, Any],
        activity: dict[str, Any] | None,
        reason: str,
    ) -> _Outcome:
        activity_id = activity["id"] if activity else None
        checkin_id = await self._insert_checkin(
            actor, member, item, received_at, station["id"], activity_id, "pending_review", reason,
        )
        if checkin_id is None:
            existing = (
                await self._live_id(actor.member_id, activity_id, item.kind) if activity_id is not None
                else await self._visit_id(actor.member_id, station["id"], item)
            )
            return _Outcome(status="duplicate", checkin_id=existing, station_id=station["id"], activity_id=activity_id)
        return _Outcome(status="pending_review", reason=reason, checkin_id=checkin_id, station_id=station["id"], activity_id=activity_id)

    # ------------------------------------------------------------------ helpers
    def _review_reason(self, item: Item, received_at: datetime, station: dict[str, Any]) -> str | None:
        if received_at - item.scanned_at > self.soft_limit:
            return "late_sync"
        if (
            station.get("geofence_m") and station.get("lat") is not None and station.get("lng") is not None
            and item.lat is not None and item.lng is not None
        ):
            distance = _haversine_m(station["lat"], station["lng"], item.lat, item.lng)
            if distance > station["geofence_m"] + (item.accuracy_m or 0):
                return "outside_geofence"
        return None

    async def _insert_checkin(
        self,
        actor: Actor,
        member: Any,
        item: Item,
        received_at: datetime,
        station_id: int,
        activity_id: int | None,
        status: str,
        reason: str | None,
    ) -> int | None:
        """The new check-in's id, or None when the member already has a live one (the partial unique
        index decides: one 'in' and one 'out' per activity, one station visit per local day). An
        ambiguous scan has no activity yet: it counts as that day's station-level record."""
        day = self._local(item.scanned_at).date()
        batch = self._batch
        if batch is not None and batch.deferred:
            key = ("a", activity_id, item.kind) if activity_id is not None else ("v", station_id, day)
            if await self._live(batch, actor.member_id, key) is not None:
                return None
            row = batch.live[key] = _Row(None, item.scanned_at, status, key, (
                actor.member_id, activity_id, station_id, item.kind, actor.method, status, reason, item.scanned_at,
                received_at, day, actor.staff_user_id, actor.kiosk_id,
            ))
            batch.planned.append(row)
            return row  # type: ignore[return-value]  (resolved to its id when written)
        conflict = _LIVE_ACTIVITY_CONFLICT if activity_id is not None else _LIVE_VISIT_CONFLICT
        return await self.db.fetchval(
            "INSERT INTO checkins (member_id, activity_id, station_id, kind, method, status, reason, scanned_at,"
            " received_at, local_date, staff_user_id, kiosk_id)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) {conflict} RETURNING id",
            actor.member_id, activity_id, station_id, item.kind, actor.method, status, reason, item.scanned_at,
            received_at, day, actor.staff_user_id, actor.kiosk_id,
        )

    async def _live_id(self, member_id: int, activity_id: int, kind: str) -> int | None:
        batch = self._batch
        if batch is not None and batch.deferred:
            return await self._live(batch, member_id, ("a", activity_id, kind))  # type: ignore[return-value]
        return await self.db.fetchval(
            "SELECT id FROM checkins WHERE member_id = $1 AND activity_id = $2 AND kind = $3"
            " AND status IN ('accepted', 'pending_review')",
            member_id, activity_id, kind,
        )

    async def _visit_id(self, member_id: int, station_id: int, item: Item) -> int | None:
        batch = self._batch
        if batch is not None and batch.deferred:
            key = ("v", station_id, self._local(item.scanned_at).date())
            return await self._live(batch, member_id, key)  # type: ignore[return-value]
        return await self.db.fetchval(
            "SELECT id FROM checkins WHERE member_id = $1 AND station_id = $2 AND local_date = $3"
            " AND activity_id IS NULL AND kind = 'in' AND status IN ('accepted', 'pending_review')",
            member_id, station_id, self._local(item.scanned_at).date(),
        )

    async def _attendance_rule(self, activity: dict[str, Any], scanned_at: datetime) -> points.Rule | None:
        """The point rule for attending this activity on that local day (meetings only)."""
        if activity["type"] not in MEETING_TYPES:
            return None
        return await points.rule_for_trigger(self.ctx, activity["type"], self._local(scanned_at).date())

    async def _award_attendance(
        self, member: Any, activity: dict[str, Any], scanned_at: datetime, checkin_id: int, rule: points.Rule | None = None
    ) -> float:
        rule = rule or await self._attendance_rule(activity, scanned_at)
        if rule is None:
            return 0.0
        return await points.award(
            self.ctx, member_id=member[0], org_path=member[1], rule=rule, units=1, occurred_at=scanned_at,
            source_type="checkin", source_id=checkin_id, pending=self._batch.entries if self._batch else None,
            local=self._local(scanned_at),
        )

    def _store(self, actor: Actor, item: Item, received_at: datetime, outcome: _Outcome, batch: _Batch) -> Result:
        """The result, remembered for replays and queued as the attempt row (written by ``_flush``)."""
        key = outcome.message_key or (outcome.reason if outcome.status in ("rejected", "pending_review") else outcome.status)
        message = MESSAGES.get(key or "", "")
        if outcome.status == "accepted" and outcome.points:
            message = f"{message}，积分 +{_fmt(outcome.points)}"
        method = "kiosk" if outcome.kiosk_id is not None else actor.method
        ref = outcome.checkin_id
        checkin_id = _cid(ref)
        attempt = [
            item.client_uuid, actor.member_id, item.token[:4096], outcome.token_type, item.kind, method,
            actor.staff_user_id, outcome.station_id, outcome.activity_id, outcome.kiosk_id, item.scanned_at,
            received_at, item.lat, item.lng, item.accuracy_m, outcome.status, outcome.reason, checkin_id,
            float(outcome.points), message,
        ]
        batch.to_insert.append(attempt)
        result = Result(
            item.client_uuid, outcome.status, outcome.reason, checkin_id, outcome.activity_id,
            outcome.station_id, float(outcome.points), message,
        )
        if isinstance(ref, _Row) and checkin_id is None:
            batch.unresolved.append((result, attempt, ref))
        batch.known.setdefault(item.client_uuid, []).append((actor.member_id, result))
        return result


_NAMED: dict[str, int | None] = {}


def _named_activity(value: str) -> int | None:
    """The ``aid`` claim of a code, read unverified (only to choose rows to prefetch)."""
    if value in _NAMED:
        return _NAMED[value]
    aid = None
    try:
        payload = json.loads(b64url_decode(extract_token(value).split(".", 2)[1]))
        if isinstance(payload, dict) and isinstance(payload.get("aid"), int):
            aid = payload["aid"]
    except (TokenError, ValueError, UnicodeDecodeError, IndexError):
        pass
    if len(_NAMED) >= 20_000:
        _NAMED.clear()
    _NAMED[value] = aid
    return aid


@lru_cache(maxsize=64)
def _values_list(rows: int, width: int) -> str:
    """``($1, $2), ($3, $4), …`` for a multi-row INSERT."""
    return ", ".join("(" + ", ".join(f"${n * width + c + 1}" for c in range(width)) + ")" for n in range(rows))


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _station_dict(row: Any) -> dict[str, Any] | None:
    """None for a station that is no longer active: nothing can be checked in there."""
    if row[5] != "active":
        return None
    return {"id": row[0], "poster_version": row[1], "lat": row[2], "lng": row[3], "geofence_m": row[4], "org_path": row[6]}


def _activity_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row[0], "station_id": row[1], "org_path": row[2], "type": row[3], "status": row[4],
        "opens": row[5], "closes": row[6], "required": bool(row[7]), "records_hours": bool(row[8]),
        "capacity": row[9], "starts_at": row[10], "ends_at": row[11],
    }


_KIOSK_KEYS: dict[str, Any] = {}


def _kiosk_key(jwk_text: str) -> Any:
    key = _KIOSK_KEYS.get(jwk_text)
    if key is None:
        try:
            key = public_key_from_jwk(json.loads(jwk_text))
        except (ValueError, TypeError):
            raise TokenError("unknown_key", MESSAGES["unknown_key"]) from None
        if len(_KIOSK_KEYS) > 10_000:
            _KIOSK_KEYS.clear()
        _KIOSK_KEYS[jwk_text] = key
    return key


def _haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


# ---------------------------------------------------------------------- review decisions


async def decide(
    ctx: Context, *, checkin_id: int, accept: bool, note: str, decided_by: int, activity_id: int | None
) -> dict[str, Any]:
    """Accept (points then) or reject (reverse anything awarded) a ``pending_review`` check-in."""
    from server.core.errors import APIError, conflict

    db = ctx.db
    async with db.transaction():
        row = await db.fetchrow(
            "SELECT c.id, c.member_id, c.activity_id, c.station_id, c.kind, c.status, c.scanned_at, m.org_path"
            " FROM checkins c JOIN members m ON m.id = c.member_id WHERE c.id = $1",
            checkin_id,
        )
        assert row is not None  # scope check happened in the route
        member_id, current_activity, station_id, kind, status, scanned_at, org_path = row[1:]
        await db.lock_member(member_id)
        # Read again under the lock: two staff deciding at once must not both apply.
        status = await db.fetchval("SELECT status FROM checkins WHERE id = $1", checkin_id)
        if status != "pending_review":
            raise conflict("already_decided", "该签到已处理，不能重复审核")
        # 赛马 attendance of a closed required activity: the state before, moved after the decision.
        target_activity = activity_id if (accept and activity_id is not None) else current_activity
        attendance = {a: await points_race.attendance_state(ctx, a, member_id)
                      for a in {current_activity, target_activity} if a is not None and kind == "in"}
        now = utcnow()
        points_awarded = 0.0
        if not accept:
            await db.execute(
                "UPDATE checkins SET status = 'rejected', decided_by = $1, decided_at = $2, decision_note = $3 WHERE id = $4",
                decided_by, now, note, checkin_id,
            )
            await points.reverse_source(ctx, "checkin", checkin_id, created_by=decided_by, reason="审核不通过，冲销积分")
            final_status, message = "rejected", "审核未通过" + (f"：{note}" if note else "")
        else:
            target = activity_id if activity_id is not None else current_activity
            activity = None
            if target is not None:
                arow = await db.fetchrow(_ACTIVITY_SQL + " WHERE a.id = $1", target)
                if arow is None or arow[1] != station_id:
                    raise APIError(400, "invalid_activity", "所选活动不属于该服务站")
                activity = _activity_dict(arow)
                clash = await db.fetchval(
                    "SELECT id FROM checkins WHERE member_id = $1 AND activity_id = $2 AND kind = $3 AND id <> $4"
                    " AND status IN ('accepted', 'pending_review')",
                    member_id, target, kind, checkin_id,
                )
                if clash is not None:
                    raise conflict("duplicate", "该党员已在此活动签到，不能重复通过")
            await db.execute(
                "UPDATE checkins SET status = 'accepted', activity_id = $1, decided_by = $2, decided_at = $3,"
                " decision_note = $4 WHERE id = $5",
                target, decided_by, now, note, checkin_id,
            )
            member = (member_id, org_path, "normal")
            if activity is not None and kind == "in" and activity["type"] in MEETING_TYPES:
                processor = CheckinProcessor(ctx)
                points_awarded = await processor._award_attendance(member, activity, scanned_at, checkin_id)
            elif activity is not None and kind == "out" and activity["records_hours"]:
                from server.hours.services import record_hours

                checked_in = await db.fetchrow(
                    "SELECT id, scanned_at FROM checkins WHERE member_id = $1 AND activity_id = $2 AND kind = 'in'"
                    " AND status = 'accepted'",
                    member_id, activity["id"],
                )
                if checked_in is not None:
                    points_awarded = await record_hours(
                        ctx, member_id=member_id, org_path=org_path, activity=activity, checkin_in_id=checked_in[0],
                        checkin_out_id=checkin_id, in_at=checked_in[1], out_at=scanned_at,
                    )
            if activity is not None and kind == "in" and activity["records_hours"]:
                # The check-out was accepted before this check-in: its hours were waiting for it.
                from server.hours.services import record_hours

                checked_out = await db.fetchrow(
                    "SELECT id, scanned_at FROM checkins WHERE member_id = $1 AND activity_id = $2 AND kind = 'out'"
                    " AND status = 'accepted' AND NOT EXISTS (SELECT 1 FROM volunteer_hours h WHERE h.checkin_in_id = $3)",
                    member_id, activity["id"], checkin_id,
                )
                if checked_out is not None:
                    points_awarded += await record_hours(
                        ctx, member_id=member_id, org_path=org_path, activity=activity, checkin_in_id=checkin_id,
                        checkin_out_id=checked_out[0], in_at=scanned_at, out_at=checked_out[1],
                    )
            final_status = "accepted"
            message = "审核通过" + (f"，积分 +{_fmt(points_awarded)}" if points_awarded else "")
            activity_id = target
        for attendance_activity, before in attendance.items():
            await points_race.attendance_changed(ctx, attendance_activity, member_id, before)
        # The attempt that produced this pending record now answers replays with the decision.
        await db.execute(
            "UPDATE checkin_attempts SET status = $1, points_awarded = $2, message = $3, activity_id = $4"
            " WHERE member_id = $5 AND checkin_id = $6 AND status = 'pending_review'",
            final_status, points_awarded, message, activity_id if accept else current_activity, member_id, checkin_id,
        )
    return {"id": checkin_id, "status": final_status, "points_awarded": points_awarded, "message": message}
