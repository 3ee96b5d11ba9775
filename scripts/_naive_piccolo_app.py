"""The "naive" PostgreSQL baseline for ``scripts/bench.py``: a check-in written the straightforward way.

One ordinary Litestar route, ``POST /api/v1/checkins``, on the app's own database schema, that does
what a first version would do: one Piccolo ORM query per step, through Piccolo's own
``PostgresEngine`` connection pool, inside one Piccolo transaction per request —

    user → member (no principal cache), stored attempt for this client_uuid (replay), the QR token,
    activity, station, existing live check-in, INSERT check-in, the point rule (no rule cache),
    INSERT ledger entry, the year tally of every ancestor org and the month + quarter period tally
    (UPDATE … earned = earned + delta, INSERT when no row was there), INSERT attempt.

It writes the same rows as the real server's accepted path (``checkins``, ``checkin_attempts``,
``points_ledger``, ``points_tally``, ``points_tally_period``), so the benchmark's database checks
apply to it unchanged. Signatures are checked with the app's own ``TokenService`` (same caches), so
the difference to the real server is the request path and the database access — no fast lane, no
single write unit with batched statements, no caches of principals or rules, no advisory lock.

Configured like the server (``DATABASE_URL`` — PostgreSQL only —, ``HONGYI_KEY_FILE``,
``PG_POOL_SIZE``, ``HONGYI_TIMEZONE``); served by ``scripts/bench_naive_piccolo.py`` with the same
uvicorn settings as ``python -m server serve``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import NotAuthorizedException
from piccolo.columns import DoublePrecision, Integer
from piccolo.engine.postgres import PostgresEngine
from piccolo.querystring import QueryString
from piccolo.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.accounts.tables import User  # noqa: E402
from server.activities.tables import Activity  # noqa: E402
from server.checkins.tables import Checkin, CheckinAttempt  # noqa: E402
from server.keys.keyring import KeyRing  # noqa: E402
from server.keys.tokens import TokenError, TokenService, extract_token  # noqa: E402
from server.members.tables import Member  # noqa: E402
from server.points.tables import LedgerEntry, PointRule, PointsTally  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.stations.tables import Station  # noqa: E402


class PointsTallyPeriod(Table, tablename="points_tally_period"):
    """Migration m0008's table (no Piccolo class in the app). Its key is (org_id, year, period,
    member_id); Piccolo wants one primary-key column, and nothing here relies on it."""

    org_id = Integer(primary_key=True)
    year = Integer()
    period = Integer()
    member_id = Integer()
    earned = DoublePrecision(default=0)


TABLES = [User, Member, Activity, Station, Checkin, CheckinAttempt, PointRule, LedgerEntry, PointsTally, PointsTallyPeriod]
LIVE = ["accepted", "pending_review"]
MEETING_TYPES = {"branch_meeting", "committee_meeting", "group_meeting", "party_lecture", "theme_day", "life_meeting",
                 "evaluation"}

SETTINGS = Settings.from_env()
if SETTINGS.dialect != "postgres":
    raise SystemExit("the naive Piccolo app is the PostgreSQL baseline: set DATABASE_URL to postgresql://…")
ENGINE = PostgresEngine(config={"dsn": SETTINGS.database_url})
for _table in TABLES:
    _table._meta.db = ENGINE
TOKENS = TokenService(KeyRing.load_or_create(SETTINGS.key_file), SETTINGS.public_base_url)


class CheckinIn(msgspec.Struct, kw_only=True):
    client_uuid: str
    token: str
    scanned_at: datetime
    kind: str = "in"


class ResultOut(msgspec.Struct, kw_only=True):
    client_uuid: str
    status: str
    reason: str | None = None
    checkin_id: int | None = None
    activity_id: int | None = None
    station_id: int | None = None
    points_awarded: float = 0.0
    message: str = ""


def _answer(result: ResultOut) -> Response[ResultOut]:
    return Response(result, status_code=422 if result.status == "rejected" else 200)


async def _add_to_tally(table: type[Table], delta: float, **key: Any) -> None:
    """earned += delta on the row with ``key`` (one UPDATE; Piccolo has no float column arithmetic,
    hence the QueryString), a new row when there was none."""
    where = None
    for name, value in key.items():
        clause = getattr(table, name) == value
        where = clause if where is None else where & clause
    updated = await table.update({table.earned: QueryString('"earned" + {}', delta)}).where(where).returning(table.earned)
    if not updated:
        await table.insert(table(earned=delta, **key))


@post("/api/v1/checkins", status_code=200)
async def check_in(request: Request, data: CheckinIn) -> Response[ResultOut]:
    user_id = TOKENS.verify_access(request.headers.get("authorization", "").partition(" ")[2].strip())
    if user_id is None:
        raise NotAuthorizedException("登录已过期，请重新登录")
    received_at = datetime.now(UTC)
    tz = SETTINGS.tz
    async with ENGINE.transaction():
        user = await User.select(User.member_id, User.is_active).where(User.id == user_id).first()
        if user is None or not user["is_active"] or user["member_id"] is None:
            raise NotAuthorizedException("账号不可用")
        member = await Member.select(Member.id, Member.org_path, Member.status).where(
            Member.id == user["member_id"]).first()
        stored = await CheckinAttempt.select().where(
            (CheckinAttempt.client_uuid == data.client_uuid) & (CheckinAttempt.member_id == member["id"])).first()
        if stored is not None:
            return _answer(ResultOut(
                client_uuid=data.client_uuid, status=stored["status"], reason=stored["reason"],
                checkin_id=stored["checkin_id"], activity_id=stored["activity_id"], station_id=stored["station_id"],
                points_awarded=stored["points_awarded"], message=stored["message"],
            ))

        async def store(status: str, reason: str | None, message: str, activity_id: int | None = None,
                        station_id: int | None = None, checkin_id: int | None = None, points: float = 0.0,
                        token_type: str | None = None) -> Response[ResultOut]:
            await CheckinAttempt.insert(CheckinAttempt(
                client_uuid=data.client_uuid, member_id=member["id"], token=data.token[:4096], token_type=token_type,
                kind=data.kind, method="self", station_id=station_id, activity_id=activity_id,
                scanned_at=data.scanned_at, received_at=received_at, status=status, reason=reason, checkin_id=checkin_id,
                points_awarded=points, message=message,
            ))
            return _answer(ResultOut(
                client_uuid=data.client_uuid, status=status, reason=reason, checkin_id=checkin_id,
                activity_id=activity_id, station_id=station_id, points_awarded=points, message=message,
            ))

        try:
            claims = TOKENS.verify_server(extract_token(data.token))
        except TokenError as exc:
            return await store("rejected", exc.reason, exc.detail)
        if claims.get("t") != "ac" or data.kind != "in":
            return await store("rejected", "malformed", "二维码内容无法识别")  # the baseline knows activity codes only
        activity_id, station_id = int(claims["aid"]), int(claims["sid"])
        ids = {"activity_id": activity_id, "station_id": station_id, "token_type": "ac"}
        if not claims["nbf"] <= data.scanned_at.timestamp() <= claims["exp"]:
            return await store("rejected", "expired", "不在签到时间内", **ids)
        activity = await Activity.select().where(Activity.id == activity_id).first()
        station = await Station.select().where(Station.id == station_id).first()
        if activity is None or station is None or activity["station_id"] != station_id or station["status"] != "active" \
                or activity["status"] != "planned":
            return await store("rejected", "not_open", "活动未开放签到（已取消或不在本站）", **ids)
        if not activity["checkin_opens_at"] <= data.scanned_at <= activity["checkin_closes_at"]:
            return await store("rejected", "expired", "不在签到时间内", **ids)
        if member["status"] not in ("normal", "inflow") or (
                activity["required"] and not member["org_path"].startswith(activity["org_path"])):
            return await store("rejected", "not_allowed", "您不在该活动的参加范围内", **ids)
        if await Checkin.exists().where(
            (Checkin.member_id == member["id"]) & (Checkin.activity_id == activity_id) & (Checkin.kind == "in")
            & Checkin.status.is_in(LIVE)
        ):
            return await store("duplicate", None, "已经签到过了，无需重复签到", **ids)
        local = data.scanned_at.astimezone(tz)
        [row] = await Checkin.insert(Checkin(
            member_id=member["id"], activity_id=activity_id, station_id=station_id, kind="in", method="self",
            status="accepted", scanned_at=data.scanned_at, received_at=received_at, local_date=local.date(),
        )).returning(Checkin.id)
        checkin_id = row["id"]
        points = 0.0
        rule = None
        if activity["type"] in MEETING_TYPES:
            rule = await PointRule.select().where(
                (PointRule.trigger == activity["type"]) & (PointRule.status == "active")).order_by(PointRule.id).first()
        if rule is not None:
            points = float(rule["points"])
            await LedgerEntry.insert(LedgerEntry(
                member_id=member["id"], rule_id=rule["id"], rule_version=rule["version"], delta=points, year=local.year,
                local_date=local.date(), occurred_at=data.scanned_at, source_type="checkin", source_id=checkin_id,
                reason=rule["name"], created_at=datetime.now(UTC),
            ))
            quarter = 20 + (local.month + 2) // 3
            for org_id in [int(part) for part in member["org_path"].strip("/").split("/")]:
                await _add_to_tally(PointsTally, points, org_id=org_id, year=local.year, member_id=member["id"])
                for period in (local.month, quarter):
                    await _add_to_tally(PointsTallyPeriod, points, org_id=org_id, year=local.year, period=period,
                                        member_id=member["id"])
        message = "签到成功" + (f"，积分 +{points:g}" if points else "")
        return await store("accepted", None, message, checkin_id=checkin_id, points=points, **ids)


@get("/api/v1/health")
async def health() -> dict[str, str]:
    await User.count()
    return {"status": "ok"}


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    await ENGINE.start_connection_pool(min_size=2, max_size=SETTINGS.pg_pool_size)
    try:
        yield
    finally:
        await ENGINE.close_connection_pool()


app = Litestar(route_handlers=[check_in, health], lifespan=[lifespan])
