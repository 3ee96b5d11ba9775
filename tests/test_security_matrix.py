"""The security matrix: every route of the app × 7 callers × an object in and out of their scope.

Callers: anonymous; a member (M1, 第一党小组 of 幸福里第一党支部); another member of the same group (M2);
staff of station A (幸福里) and of station B (和平苑); the secretary of another branch (和平苑第一党支部);
the street admin. Objects: side A (M1's, station A, 幸福里第一党支部), side B (a member of 和平苑第一党支部,
station B) and side X (another street, out of everyone's scope).

The rule (DESIGN §2, docs/architecture.md "Scopes"): no token → 401; an object the caller cannot see
→ 404, exactly like a missing id (existence is not leaked); an object they can see, or an endpoint
their role may never use (a member asking for the review queue) → 403. Each row below lists the
status for (member, other member, staff A, staff B, secretary B, admin); anonymous is 401 unless the
route is public. ``test_every_route_is_in_the_matrix`` fails when a route is added without a row.

One seeded street per engine is shared by the whole module; a row whose call changes what later
calls see (a decision, a revocation, a one-shot request) makes a fresh object for each call.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.app import create_app
from server.keys.keyring import public_jwk
from server.settings import Settings
from tests.conftest import APP_TABLES, Backend, has_chinese

ROLES = ("anon", "member", "other_member", "staff_a", "staff_b", "secretary_b", "admin")
Expect = tuple[int, int, int, int, int, int]  # member, other member, staff A, staff B, secretary B, admin


def every(status: int) -> Expect:
    return (status,) * 6


# ---------------------------------------------------------------------------------------- the world


@dataclass
class Side:
    """The objects of one side; every id here is reachable by the callers that reach the side."""

    name: str
    street: int
    community: int
    branch: int
    station: int
    member: int
    member_user: int
    activity: int  # required by ``branch``, check-in open now, at ``station``
    kiosk: int = 0
    pairing: int = 0
    hours: int = 0  # an unlocked, approved volunteer-hours record of ``member``


@dataclass
class Matrix:
    app: Any
    client: httpx.AsyncClient
    tokens: dict[str, str | None]
    sides: dict[str, Side]
    users: dict[str, int]
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx

    def next(self) -> int:
        return next(self.counter)

    def phone(self) -> str:
        return f"137{self.next():08d}"

    async def insert(self, sql: str, *args: Any) -> int:
        async with self.ctx.db.transaction():
            return int(await self.ctx.db.fetchval(sql, *args))

    async def activity(
        self, side: Side, *, required: bool = False, records_hours: bool = False, start: timedelta = timedelta(minutes=-10),
        hours: float = 2, kind: str = "branch_meeting",
    ) -> int:
        now = datetime.now(UTC).replace(microsecond=0)
        starts = now + start
        ends = starts + timedelta(hours=hours)
        path = await self.ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", side.branch)
        return await self.insert(
            "INSERT INTO activities (type, title, description, station_id, org_id, org_path, starts_at, ends_at,"
            " checkin_opens_at, checkin_closes_at, required, records_hours, capacity, status, created_by, created_at)"
            " VALUES ($1, $2, '', $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, 'planned', NULL, $12) RETURNING id",
            kind, f"矩阵活动 {self.next()}", side.station, side.branch, path, starts, ends, starts - timedelta(minutes=30), ends,
            required, records_hours, now,
        )

    async def checkin(self, side: Side, activity: int | None, *, kind: str = "in", status: str = "accepted",
                      at: datetime | None = None) -> int:
        at = at or datetime.now(UTC) - timedelta(hours=1)
        local = (at - timedelta(days=self.next())).date() if activity is None else at.date()  # one visit a day
        return await self.insert(
            "INSERT INTO checkins (member_id, activity_id, station_id, kind, method, status, reason, scanned_at,"
            " received_at, local_date) VALUES ($1, $2, $3, $4, 'self', $5, $6, $7, $7, $8) RETURNING id",
            side.member, activity, side.station, kind, status, "late_sync" if status == "pending_review" else None, at, local,
        )

    async def hours_record(self, side: Side, *, locked: bool = False) -> int:
        start = timedelta(days=-40) if locked else timedelta(hours=-3)
        activity = await self.activity(side, records_hours=True, start=start, hours=2, kind="volunteer")
        starts = await self.ctx.db.fetchval("SELECT starts_at FROM activities WHERE id = $1", activity)
        checked_in = await self.checkin(side, activity, at=starts)
        checked_out = await self.checkin(side, activity, kind="out", at=starts + timedelta(hours=2))
        return await self.insert(
            "INSERT INTO volunteer_hours (member_id, activity_id, checkin_in_id, checkin_out_id, local_date, hours,"
            " approved_hours, auto_hours, status, created_at) VALUES ($1, $2, $3, $4, $5, 2, 2, 2, 'approved', $6)"
            " RETURNING id",
            side.member, activity, checked_in, checked_out, starts.date(), datetime.now(UTC),
        )

    async def correction(self, side: Side) -> int:
        record = await self.hours_record(side, locked=True)
        return await self.insert(
            "INSERT INTO volunteer_hours_corrections (hours_id, old_hours, new_hours, reason, status, requested_by,"
            " requested_at) VALUES ($1, 2, 1.5, '提前离开', 'pending', $2, $3) RETURNING id",
            record, side.member_user, datetime.now(UTC),
        )

    async def leave(self, side: Side) -> int:
        activity = await self.activity(side, required=True, start=timedelta(days=1))
        return await self.insert(
            "INSERT INTO leave_requests (activity_id, member_id, reason, status, created_by, created_at)"
            " VALUES ($1, $2, '出差', 'pending', $3, $4) RETURNING id",
            activity, side.member, side.member_user, datetime.now(UTC),
        )

    async def visit(self, side: Side) -> int:
        return await self.insert(
            "INSERT INTO pairing_visits (pairing_id, member_id, client_uuid, visited_at, mode, content, status, method,"
            " recorded_by, created_at) VALUES ($1, $2, $3, $4, 'home', '上门走访', 'pending', 'self', $5, $4) RETURNING id",
            side.pairing, side.member, uuid.uuid4().hex, datetime.now(UTC) - timedelta(hours=2), side.member_user,
        )

    async def user(self, name: str = "矩阵用户") -> tuple[int, str]:
        phone = self.phone()
        user_id = await self.insert(
            "INSERT INTO users (phone, display_name, password_hash, member_id, is_active, created_at)"
            " VALUES ($1, $2, NULL, NULL, $3, $4) RETURNING id",
            phone, name, True, datetime.now(UTC),
        )
        return user_id, phone

    async def grant(self, side: Side) -> int:
        user_id, _ = await self.user()
        return await self.insert(
            "INSERT INTO role_grants (user_id, role, org_id, station_id, created_at) VALUES ($1, 'staff', NULL, $2, $3)"
            " RETURNING id",
            user_id, side.station, datetime.now(UTC),
        )


async def _org_id(ctx: Any, name: str) -> int:
    return int(await ctx.db.fetchval("SELECT id FROM orgs WHERE name = $1", name))


async def _complete_side(m: Matrix, side: Side) -> Side:
    """Kiosk, pairing and an hours record for a side whose org, station, member and activity exist."""
    key = public_jwk(Ed25519PrivateKey.generate().public_key(), "ignored")
    side.kiosk = await m.insert(
        "INSERT INTO kiosks (station_id, name, public_key_jwk, status, created_by, created_at)"
        " VALUES ($1, '大厅屏', $2, 'active', NULL, $3) RETURNING id",
        side.station, json.dumps({k: key[k] for k in ("kty", "crv", "x")}), datetime.now(UTC),
    )
    today = datetime.now(UTC).date()
    side.pairing = await m.insert(
        "INSERT INTO pairings (member_id, kind, name, category, contact, goals, start_date, end_date, interval_days,"
        " status, created_by, created_at, updated_at) VALUES ($1, 'resident', '李大爷', '独居老人', '13912345678', '',"
        " $2, NULL, 30, 'active', NULL, $3, $3) RETURNING id",
        side.member, today - timedelta(days=60), datetime.now(UTC),
    )
    side.hours = await m.hours_record(side)
    return side


async def _build(app: Any, client: httpx.AsyncClient) -> Matrix:
    from server.orgs.services import create_root
    from server.seed import _grant, _member, _org, _seed, _user

    ctx = app.state.ctx
    ids = await _seed(ctx)
    users = {
        "member": int(await ctx.db.fetchval("SELECT id FROM users WHERE phone = '13900000001'")),
        "other_member": int(await ctx.db.fetchval("SELECT id FROM users WHERE phone = '13900000002'")),
        "staff_a": ids["staff_a"], "staff_b": ids["staff_b"], "admin": ids["admin"],
    }
    branch_b = await _org_id(ctx, "和平苑第一党支部")
    users["secretary_b"] = await _user(ctx, "13800000009", "和平苑第一党支部书记", None)
    await _grant(ctx, users["secretary_b"], "secretary", org_id=branch_b)
    tokens: dict[str, str | None] = {"anon": None}
    for role, user_id in users.items():
        tokens[role] = ctx.tokens.access_token(user_id, 60)[0]
    m = Matrix(app=app, client=client, tokens=tokens, sides={}, users=users)

    member_b = int(await ctx.db.fetchval("SELECT id FROM members WHERE phone = '13900000007'"))
    a = Side("A", ids["street"], await _org_id(ctx, "幸福里社区党委"), await _org_id(ctx, "幸福里第一党支部"), ids["station_a"],
             ids["first_member"], users["member"], 0)
    b = Side("B", ids["street"], await _org_id(ctx, "和平苑社区党委"), branch_b, ids["station_b"], member_b,
             int(await ctx.db.fetchval("SELECT id FROM users WHERE member_id = $1", member_b)), 0)
    # Side X: a second street, out of everyone's scope.
    street_x = await create_root(ctx, "另一街道党工委")
    community_x = await _org(ctx, "另一社区党委", "community_committee", street_x)
    branch_x = await _org(ctx, "另一党支部", "branch", community_x)
    station_x = await m.insert(
        "INSERT INTO stations (name, org_id, org_path, address, service_hours, poster_version, status, created_at)"
        " VALUES ('别处服务站', $1, $2, '', '', 1, 'active', $3) RETURNING id",
        community_x, f"/{street_x}/{community_x}/", datetime.now(UTC),
    )
    member_x = await _member(ctx, "外街党员", "13600000001", branch_x, 1)
    x = Side("X", street_x, community_x, branch_x, station_x, member_x,
             await _user(ctx, "13600000001", "外街党员", None, member_x), 0)
    for side in (a, b, x):
        side.activity = await m.activity(side, required=True)
        m.sides[side.name] = await _complete_side(m, side)
    return m


@pytest.fixture(scope="module")
async def matrix(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Matrix]:
    """One seeded street (and a second one) per engine, shared by every row of the matrix."""
    settings: Settings = backend.settings
    if backend.name == "sqlite":
        assert backend.template is not None
        path = tmp_path_factory.mktemp("matrix") / "hongyi.db"
        shutil.copy(backend.template, path)
        settings = replace(settings, database_url=f"sqlite:///{path}")
    else:
        import asyncpg

        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f"TRUNCATE {', '.join(APP_TABLES)} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()
    app = create_app(settings)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            yield await _build(app, client)


# ---------------------------------------------------------------------------------------- requests


@dataclass
class Req:
    path: dict[str, Any] = field(default_factory=dict)  # route parameter name → value
    json: Any = None
    params: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


Prepare = Callable[[Matrix, Side, str], Awaitable[Req]]


def _now(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def fixed(**kw: Any) -> Prepare:
    async def prepare(m: Matrix, side: Side, role: str) -> Req:
        return Req(**kw)

    return prepare


def org_query(key: str = "org_id") -> Prepare:
    async def prepare(m: Matrix, side: Side, role: str) -> Req:
        return Req(params={key: side.branch})

    return prepare


async def station_query(m: Matrix, side: Side, role: str) -> Req:
    return Req(params={"station_id": side.station})


def on(**path: str) -> Callable[..., Prepare]:
    """Route parameters from the side's attributes, e.g. ``on(member_id="member")``, plus a body."""

    def with_body(json: Any = None, params: dict[str, Any] | None = None) -> Prepare:
        async def prepare(m: Matrix, side: Side, role: str) -> Req:
            return Req(path={k: getattr(side, v) for k, v in path.items()}, json=json, params=params)

        return prepare

    return with_body


def fresh(param: str, make: Callable[[Matrix, Side], Awaitable[int]], json: Any = None) -> Prepare:
    """A new object for every call (the call consumes or changes it)."""

    async def prepare(m: Matrix, side: Side, role: str) -> Req:
        return Req(path={param: await make(m, side)}, json=json)

    return prepare


async def _refresh_body(m: Matrix, side: Side, role: str) -> Req:
    from server.accounts.services import _issue

    async with m.ctx.db.transaction():
        issued = await _issue(m.ctx, m.users["member"])
    return Req(json={"refresh_token": issued.refresh_token})


async def _activate_body(m: Matrix, side: Side, role: str) -> Req:
    from server.accounts.services import create_invite

    user_id = int(await m.ctx.db.fetchval("SELECT id FROM users WHERE phone = '13900000030'"))
    invite = await create_invite(m.ctx, user_id, m.users["admin"])
    return Req(json={"code": invite.code, "password": "matrix-password-1"})


async def _new_grant_body(m: Matrix, side: Side, role: str) -> Req:
    _, phone = await m.user()
    return Req(json={"phone": phone, "role": "staff", "station_id": side.station})


async def _leave_body(m: Matrix, side: Side, role: str) -> Req:
    activity = await m.activity(side, required=True, start=timedelta(days=1))
    return Req(path={"activity_id": activity}, json={"reason": "出差在外", "member_id": side.member})


async def _new_org_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(json={"name": "新党小组", "kind": "group", "parent_id": side.branch})


async def _new_station_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(json={"name": "新服务站", "org_id": side.branch})


async def _new_member_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(json={"name": "新党员", "phone": m.phone(), "org_id": side.branch})


async def _import_body(m: Matrix, side: Side, role: str) -> Req:
    csv = f"姓名,手机号,所在支部\n导入党员,{m.phone()},{side.branch}\n".encode()
    return Req(content=csv, params={"dry_run": "false"}, headers={"content-type": "text/csv"})


async def _kiosk_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(path={"station_id": side.station},
               json={"name": "新签到屏", "public_key_jwk": public_jwk(Ed25519PrivateKey.generate().public_key(), "x")})


def _activity_json(side: Side) -> dict[str, Any]:
    return {"type": "other", "title": "矩阵新活动", "station_id": side.station, "starts_at": _now(timedelta(days=3)),
            "ends_at": _now(timedelta(days=3, hours=2))}


async def _new_activity_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(json=_activity_json(side))


async def _activity_code(m: Matrix, side: Side) -> str:
    starts, ends = await m.ctx.db.fetchrow(
        "SELECT checkin_opens_at, checkin_closes_at FROM activities WHERE id = $1", side.activity
    )
    return m.ctx.tokens.activity_token(side.activity, side.station, int(starts.timestamp()), int(ends.timestamp()))


async def _checkin_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(json={"client_uuid": uuid.uuid4().hex, "token": await _activity_code(m, side), "scanned_at": _now()})


async def _sync_body(m: Matrix, side: Side, role: str) -> Req:
    item = {"client_uuid": uuid.uuid4().hex, "token": await _activity_code(m, side), "scanned_at": _now()}
    return Req(json={"items": [item]})


async def _staff_checkin_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(json={"member_id": side.member, "activity_id": side.activity, "client_uuid": uuid.uuid4().hex,
                     "scanned_at": _now()})


async def _pending_checkin(m: Matrix, side: Side) -> int:
    return await m.checkin(side, None, status="pending_review", at=datetime.now(UTC) - timedelta(days=4))


async def _adjust_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(json={"member_id": side.member, "delta": 1, "reason": "表现突出"})


async def _rule_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(json={"code": f"matrix_{m.next()}", "name": "矩阵规则", "category": "reward", "trigger": "manual", "points": 1})


async def _first_rule(m: Matrix) -> int:
    return int(await m.ctx.db.fetchval("SELECT MIN(id) FROM point_rules"))


async def _rule_versions(m: Matrix, side: Side, role: str) -> Req:
    return Req(path={"rule_id": await _first_rule(m)})


async def _rule_patch(m: Matrix, side: Side, role: str) -> Req:
    return Req(path={"rule_id": await _first_rule(m)}, json={"needs_approval": False})


async def _pairing_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(json={"member_id": side.member, "kind": "resident", "name": f"结对对象{m.next()}"})


async def _visit_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(path={"pairing_id": side.pairing}, json={
        "client_uuid": uuid.uuid4().hex, "visited_at": _now(timedelta(hours=-1)), "mode": "phone", "content": "电话问候",
    })


async def _complete_body(m: Matrix, side: Side, role: str) -> Req:
    activity = await m.activity(side, records_hours=True, start=timedelta(hours=-2), hours=3, kind="volunteer")
    await m.checkin(side, activity, at=datetime.now(UTC) - timedelta(minutes=90))
    return Req(json={"activity_id": activity, "member_id": side.member, "checked_out_at": _now(timedelta(minutes=-1))})


async def _correction_body(m: Matrix, side: Side, role: str) -> Req:
    return Req(path={"hours_id": await m.hours_record(side, locked=True)}, json={"hours": 1.5, "reason": "提前离开"})


# ---------------------------------------------------------------------------------------- the table


@dataclass
class Case:
    method: str
    route: str  # exactly as the app lists it
    prepare: Prepare
    a: Expect  # side A (or the only column, for routes without an object)
    b: Expect | None = None  # side B
    x: Expect | None = None  # side X (another street); routes with an id in the path default to 404 for all
    public: bool = False  # anonymous callers get the same as everyone (a[0])

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.route

    def columns(self) -> list[tuple[str, Expect]]:
        out = [("A", self.a)]
        if self.b is not None:
            out.append(("B", self.b))
        x = self.x if self.x is not None else (every(404) if "{" in self.route and not self.public else None)
        if x:  # () means: no object of another street applies (e.g. the installation-wide point rules)
            out.append(("X", x))
        return out


V = "/api/v1"
# (member, other member, staff A, staff B, secretary B, admin)
REACH_A_200: Expect = (200, 404, 200, 404, 404, 200)  # M1's own object, read
REACH_B_200: Expect = (404, 404, 404, 200, 200, 200)  # a 和平苑第一党支部 member's object, read
STATION_A: Expect = (404, 404, 200, 404, 404, 200)  # station A's staff and the admin
STATION_B: Expect = (404, 404, 404, 200, 404, 200)  # station B belongs to the community, not to the branch
ACTIVITY_B: Expect = (404, 404, 404, 200, 200, 200)  # organised by 和平苑第一党支部 at station B
ORG_A: Expect = (200, 200, 200, 404, 404, 200)  # boards and lists of 幸福里第一党支部 (members see their own branch)
ORG_B: Expect = (404, 404, 404, 200, 200, 200)
REPORT_A: Expect = (403, 403, 200, 404, 404, 200)
REPORT_B: Expect = (403, 403, 404, 200, 200, 200)
REPORT_X: Expect = (403, 403, 404, 404, 404, 404)
MEMBERS_ONLY: Expect = (200, 200, 403, 403, 403, 403)
ADMIN_ONLY: Expect = (403, 403, 403, 403, 403, 200)
STAFF_LIKE: Expect = (403, 403, 200, 200, 200, 200)
ANYONE: Expect = every(200)

CASES: list[Case] = [
    # ---- auth (login, refresh and activate are public; the body decides)
    Case("POST", f"{V}/auth/login", fixed(json={"phone": "13900000001", "password": "hongyi-member"}), ANYONE, public=True),
    Case("POST", f"{V}/auth/refresh", _refresh_body, ANYONE, public=True),
    Case("POST", f"{V}/auth/logout", fixed(), every(204)),
    Case("POST", f"{V}/auth/activate", _activate_body, ANYONE, public=True),
    Case("GET", f"{V}/me", fixed(), ANYONE),
    Case("GET", f"{V}/keys", fixed(), ANYONE, public=True),
    Case("GET", f"{V}/health", fixed(), ANYONE, public=True),
    # ---- role grants: admins only, within their subtrees
    Case("GET", f"{V}/grants", station_query, ADMIN_ONLY, ADMIN_ONLY, (403, 403, 403, 403, 403, 404)),
    Case("POST", f"{V}/grants", _new_grant_body, (403, 403, 403, 403, 403, 201), (403, 403, 403, 403, 403, 201),
         (403, 403, 403, 403, 403, 404)),
    Case("DELETE", f"{V}/grants/{{grant_id:int}}", fresh("grant_id", Matrix.grant), (403, 403, 403, 403, 403, 204),
         (403, 403, 403, 403, 403, 204), (403, 403, 403, 403, 403, 404)),
    # ---- orgs
    Case("GET", f"{V}/orgs", fixed(), ANYONE),
    Case("POST", f"{V}/orgs", _new_org_body, (404, 404, 404, 404, 404, 201), (404, 404, 404, 404, 403, 201),
         every(404)),
    Case("PATCH", f"{V}/orgs/{{org_id:int}}", on(org_id="branch")(json={"secretary_name": "张书记"}),
         (404, 404, 404, 404, 404, 200), (404, 404, 404, 404, 403, 200)),
    # ---- members
    Case("GET", f"{V}/members", org_query(), ORG_A, ORG_B, every(404)),
    Case("POST", f"{V}/members", _new_member_body, (403, 403, 403, 403, 404, 201), (403, 403, 403, 403, 201, 201),
         (403, 403, 403, 403, 404, 404)),
    Case("GET", f"{V}/members/{{member_id:int}}", on(member_id="member")(), REACH_A_200, REACH_B_200),
    Case("PATCH", f"{V}/members/{{member_id:int}}", on(member_id="member")(json={"tags": ["志愿者"]}),
         (403, 404, 403, 404, 404, 200), (404, 404, 404, 403, 200, 200)),
    Case("GET", f"{V}/members/{{member_id:int}}/card", on(member_id="member")(), REACH_A_200, REACH_B_200),
    Case("POST", f"{V}/members/{{member_id:int}}/invite", on(member_id="member")(),
         (403, 404, 201, 404, 404, 201), (404, 404, 404, 201, 201, 201)),
    Case("POST", f"{V}/members/import", _import_body, (403, 403, 403, 403, 422, 201), (403, 403, 403, 403, 201, 201),
         (403, 403, 403, 403, 422, 422)),
    Case("GET", f"{V}/members/import/template.xlsx", fixed(), (403, 403, 403, 403, 200, 200)),
    # ---- stations and kiosks
    Case("GET", f"{V}/stations", fixed(), ANYONE),
    Case("POST", f"{V}/stations", _new_station_body, (404, 404, 404, 404, 404, 201), (404, 404, 404, 404, 403, 201),
         every(404)),
    Case("GET", f"{V}/stations/{{station_id:int}}", on(station_id="station")(),
         (200, 200, 200, 404, 404, 200), (200, 200, 404, 200, 404, 200)),
    Case("PATCH", f"{V}/stations/{{station_id:int}}", on(station_id="station")(json={"service_hours": "每天 9:00–17:00"}),
         STATION_A, STATION_B),
    Case("GET", f"{V}/stations/{{station_id:int}}/poster", on(station_id="station")(params={"format": "json"}),
         STATION_A, STATION_B),
    Case("GET", f"{V}/stations/{{station_id:int}}/live", on(station_id="station")(), STATION_A, STATION_B),
    Case("GET", f"{V}/stations/{{station_id:int}}/kiosks", on(station_id="station")(), STATION_A, STATION_B),
    Case("POST", f"{V}/stations/{{station_id:int}}/kiosks", _kiosk_body,
         (404, 404, 201, 404, 404, 201), (404, 404, 404, 201, 404, 201)),
    Case("DELETE", f"{V}/kiosks/{{kiosk_id:int}}", on(kiosk_id="kiosk")(),
         (404, 404, 204, 404, 404, 204), (404, 404, 404, 204, 404, 204)),
    # ---- activities
    Case("GET", f"{V}/activities", fixed(), ANYONE),
    Case("POST", f"{V}/activities", _new_activity_body, (404, 404, 201, 404, 404, 201), (404, 404, 404, 201, 404, 201),
         every(404)),
    Case("GET", f"{V}/activities/{{activity_id:int}}", on(activity_id="activity")(),
         (200, 200, 200, 404, 404, 200), (200, 200, 404, 200, 200, 200)),
    Case("PATCH", f"{V}/activities/{{activity_id:int}}", on(activity_id="activity")(json={"description": "带好党员证"}),
         STATION_A, ACTIVITY_B),
    Case("GET", f"{V}/activities/{{activity_id:int}}/qr", on(activity_id="activity")(), STATION_A, ACTIVITY_B),
    Case("GET", f"{V}/activities/{{activity_id:int}}/attendance", on(activity_id="activity")(), STATION_A, ACTIVITY_B),
    Case("GET", f"{V}/activities/{{activity_id:int}}/attendance.xlsx", on(activity_id="activity")(), STATION_A, ACTIVITY_B),
    Case("POST", f"{V}/activities/{{activity_id:int}}/close", fresh("activity_id", Matrix.activity), STATION_A, ACTIVITY_B),
    # ---- leave (请假): a member for themself, staff/managers on a member's behalf
    Case("POST", f"{V}/activities/{{activity_id:int}}/leave-requests", _leave_body,
         (201, 404, 201, 404, 404, 201), (404, 404, 404, 201, 201, 201)),
    Case("GET", f"{V}/leave-requests", fixed(), ANYONE),
    Case("POST", f"{V}/leave-requests/{{leave_id:int}}/decision", fresh("leave_id", Matrix.leave, {"approve": False}),
         (403, 404, 200, 404, 404, 200), (404, 404, 404, 200, 200, 200)),
    Case("POST", f"{V}/leave-requests/{{leave_id:int}}/withdraw", fresh("leave_id", Matrix.leave),
         (200, 404, 404, 404, 404, 404), every(404)),
    # ---- check-ins (a rejected scan is 422 with a reason, not a scope answer)
    Case("POST", f"{V}/checkins", _checkin_body, MEMBERS_ONLY, (422, 422, 403, 403, 403, 403),
         (422, 422, 403, 403, 403, 403)),
    Case("POST", f"{V}/checkins/sync", _sync_body, MEMBERS_ONLY),
    Case("POST", f"{V}/checkins/staff", _staff_checkin_body, (403, 403, 200, 404, 404, 200), (403, 403, 404, 200, 404, 200),
         (403, 403, 404, 404, 404, 404)),
    Case("GET", f"{V}/checkins/review", fixed(), STAFF_LIKE),
    Case("POST", f"{V}/checkins/{{checkin_id:int}}/decision", fresh("checkin_id", _pending_checkin, {"accept": False}),
         (403, 404, 200, 404, 404, 200), STATION_B),
    Case("GET", f"{V}/me/checkins", fixed(), ANYONE),
    # ---- points
    Case("GET", f"{V}/me/points", fixed(), MEMBERS_ONLY),
    Case("GET", f"{V}/points/leaderboard", org_query(), ORG_A, ORG_B, every(404)),
    Case("GET", f"{V}/points/branches", org_query(), ORG_A, ORG_B, every(404)),
    Case("GET", f"{V}/points/trend", org_query(), ORG_A, ORG_B, every(404)),
    Case("POST", f"{V}/points/adjustments", _adjust_body, (403, 403, 201, 404, 404, 201), (403, 403, 404, 201, 201, 201),
         (403, 403, 404, 404, 404, 404)),
    # Point rules are one set for the whole installation (no org): read by anyone, edited by a street admin.
    Case("GET", f"{V}/points/rules", fixed(), ANYONE),
    Case("POST", f"{V}/points/rules", _rule_body, (403, 403, 403, 403, 403, 201)),
    Case("PATCH", f"{V}/points/rules/{{rule_id:int}}", _rule_patch, ADMIN_ONLY, x=()),
    Case("GET", f"{V}/points/rules/{{rule_id:int}}/versions", _rule_versions, ANYONE, x=()),
    # ---- 一帮一 pairings and visits
    Case("GET", f"{V}/pairings", org_query(), ORG_A, ORG_B, every(404)),
    Case("POST", f"{V}/pairings", _pairing_body, (403, 403, 201, 404, 404, 201), (403, 403, 404, 201, 201, 201),
         (403, 403, 404, 404, 404, 404)),
    Case("GET", f"{V}/pairings/{{pairing_id:int}}", on(pairing_id="pairing")(), REACH_A_200, REACH_B_200),
    Case("PATCH", f"{V}/pairings/{{pairing_id:int}}", on(pairing_id="pairing")(json={"goals": "每月上门一次"}),
         (403, 404, 200, 404, 404, 200), REACH_B_200),
    Case("POST", f"{V}/pairings/{{pairing_id:int}}/visits", _visit_body,
         (201, 404, 201, 404, 404, 201), (404, 404, 404, 201, 201, 201)),
    Case("GET", f"{V}/pairings/visits", org_query(), ORG_A, ORG_B, every(404)),
    Case("POST", f"{V}/pairings/visits/{{visit_id:int}}/verify", fresh("visit_id", Matrix.visit, {"approve": False}),
         (403, 404, 200, 404, 404, 200), REACH_B_200),
    Case("GET", f"{V}/pairings/overdue", org_query(), ORG_A, ORG_B, every(404)),
    Case("GET", f"{V}/pairings/stats", org_query(), ORG_A, ORG_B, every(404)),
    # ---- volunteer hours
    Case("GET", f"{V}/me/volunteer-hours", fixed(), MEMBERS_ONLY),
    Case("GET", f"{V}/volunteer-hours", fixed(), ANYONE),
    Case("GET", f"{V}/volunteer-hours/{{hours_id:int}}", on(hours_id="hours")(), REACH_A_200, REACH_B_200),
    Case("POST", f"{V}/volunteer-hours/{{hours_id:int}}/decision", on(hours_id="hours")(json={"approve": True}),
         (403, 404, 200, 404, 404, 200), REACH_B_200),
    Case("POST", f"{V}/volunteer-hours/complete", _complete_body, (403, 403, 201, 404, 404, 201),
         (403, 403, 404, 201, 404, 201), (403, 403, 404, 404, 404, 404)),
    Case("POST", f"{V}/volunteer-hours/{{hours_id:int}}/corrections", _correction_body,
         (201, 404, 201, 404, 404, 201), (404, 404, 404, 201, 201, 201)),
    Case("GET", f"{V}/volunteer-hours/corrections", fixed(), ANYONE),
    Case("POST", f"{V}/volunteer-hours/corrections/{{correction_id:int}}/decision",
         fresh("correction_id", Matrix.correction, {"approve": False}),
         (403, 404, 403, 404, 404, 200), (404, 404, 404, 403, 200, 200)),
    # ---- reports: managers and station staff, within their reach
    Case("GET", f"{V}/reports/points.xlsx", org_query(), REPORT_A, REPORT_B, REPORT_X),
    Case("GET", f"{V}/reports/attendance.xlsx", org_query(), REPORT_A, REPORT_B, REPORT_X),
    Case("GET", f"{V}/reports/volunteer-hours.xlsx", org_query(), REPORT_A, REPORT_B, REPORT_X),
    Case("GET", f"{V}/reports/pairings.xlsx", org_query(), REPORT_A, REPORT_B, REPORT_X),
    # ---- the PWA shell and the API docs are public
    Case("GET", "/", fixed(), ANYONE, public=True),
    Case("GET", "/{path:path}", fixed(path={"path": "q/eyJhbGciOiJFZERTQSJ9.e30.c2ln"}), ANYONE, public=True),
    Case("GET", "/schema", fixed(), ANYONE, public=True),
    Case("GET", "/schema/openapi.json", fixed(), ANYONE, public=True),
    Case("GET", "/schema/scalar", fixed(), ANYONE, public=True),
    Case("GET", "/schema/{path:str}", fixed(path={"path": "nothing-here"}), every(404), public=True),
]


# ---------------------------------------------------------------------------------------- the tests

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


async def _call(m: Matrix, case: Case, role: str, req: Req) -> httpx.Response:
    url = _PARAM.sub(lambda match: str(req.path[match.group(1)]), case.route)
    headers = dict(req.headers)
    token = m.tokens[role]
    if token:
        headers["authorization"] = f"Bearer {token}"
    return await m.client.request(case.method, url, json=req.json, params=req.params, content=req.content, headers=headers)


def _app_routes() -> set[tuple[str, str]]:
    settings = Settings.from_env({"DATABASE_URL": "sqlite:///unused.db", "HONGYI_KEY_FILE": "unused.json"})
    app = create_app(settings)  # routes only: no lifespan, no database
    return {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method not in ("HEAD", "OPTIONS")
    }


def test_every_route_is_in_the_matrix() -> None:
    """A new endpoint must get its row here (who may call it, and what out of scope answers)."""
    listed = [case.key for case in CASES]
    assert len(listed) == len(set(listed)), "a route is listed twice"
    routes = _app_routes()
    assert routes - set(listed) == set(), "routes without a row in the security matrix"
    assert set(listed) - routes == set(), "rows for routes the app no longer has"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method} {c.route}" for c in CASES])
async def test_route_answers_each_caller(matrix: Matrix, case: Case) -> None:
    mismatches = []
    for side_name, expected in case.columns():
        side = matrix.sides[side_name]
        anonymous = expected[0] if case.public else 401
        for role, want in zip(ROLES, (anonymous, *expected)):
            req = await case.prepare(matrix, side, role)
            response = await _call(matrix, case, role, req)
            got = response.status_code
            if got != want:
                mismatches.append(f"side {side_name}, {role}: {got} (expected {want}) {response.text[:160]}")
                continue
            if got >= 400 and case.route.startswith("/api/"):
                body = response.json()
                expected_codes = {401: {"unauthorized"}, 404: {"not_found"}, 403: {"forbidden", "own_request"}}
                if got in expected_codes and (body.get("code") not in expected_codes[got] or not has_chinese(body.get("detail"))):
                    mismatches.append(f"side {side_name}, {role}: {got} with body {body}")
    assert not mismatches, "\n".join(mismatches)


# Lists answer 200 to everyone: what they hold is the scope. Which sides' objects each caller's list shows
# (exactly: an object missing from a list it belongs in is a defect too).
LISTS: list[tuple[str, dict[str, Any], str, dict[str, set[str]]]] = [
    # (path, query, the side's object shown, role → sides visible)
    ("/api/v1/members", {"limit": 500}, "member",
     {"member": {"A"}, "other_member": set(), "staff_a": {"A"}, "staff_b": {"B"}, "secretary_b": {"B"}, "admin": {"A", "B"}}),
    ("/api/v1/stations", {}, "station",
     {"member": {"A", "B"}, "other_member": {"A", "B"}, "staff_a": {"A"}, "staff_b": {"B"}, "secretary_b": set(),
      "admin": {"A", "B"}}),
    ("/api/v1/activities", {"limit": 500}, "activity",
     {"member": {"A", "B"}, "other_member": {"A", "B"}, "staff_a": {"A"}, "staff_b": {"B"}, "secretary_b": {"B"},
      "admin": {"A", "B"}}),
    ("/api/v1/pairings", {"limit": 500}, "pairing",
     {"member": {"A"}, "other_member": set(), "staff_a": {"A"}, "staff_b": {"B"}, "secretary_b": {"B"}, "admin": {"A", "B"}}),
    ("/api/v1/volunteer-hours", {"limit": 500}, "hours",
     {"member": {"A"}, "other_member": set(), "staff_a": {"A"}, "staff_b": {"B"}, "secretary_b": {"B"}, "admin": {"A", "B"}}),
    # Orgs: the subtrees one manages and the chain above one's own branch or station.
    ("/api/v1/orgs", {}, "branch",
     {"member": {"A"}, "other_member": {"A"}, "staff_a": set(), "staff_b": set(), "secretary_b": {"B"}, "admin": {"A", "B"}}),
]


@pytest.mark.parametrize(("path", "query", "attribute", "visible"), LISTS, ids=[item[0] for item in LISTS])
async def test_lists_hold_only_what_is_in_scope(
    matrix: Matrix, path: str, query: dict[str, Any], attribute: str, visible: dict[str, set[str]]
) -> None:
    wrong = []
    for role in ROLES[1:]:
        response = await matrix.client.get(path, params=query, headers={"authorization": f"Bearer {matrix.tokens[role]}"})
        assert response.status_code == 200, (role, response.text)
        listed = {row["id"] for row in response.json()}
        shown = {name for name, side in matrix.sides.items() if getattr(side, attribute) in listed}
        if shown != visible[role]:
            wrong.append(f"{role}: sides {sorted(shown)} listed, expected {sorted(visible[role])}")
    assert not wrong, "\n".join(wrong)


async def test_staff_never_decide_their_own_checkin(world: Any) -> None:
    """A member who is also staff of the station sees their pending check-in in the queue, but
    approving it (and the points) is for someone else — as for leave, hours, visits and adjustments."""
    from server.core.auth import forget_principal
    from server.seed import _grant

    ctx = world.ctx
    member_user = int(await ctx.db.fetchval("SELECT id FROM users WHERE phone = '13900000001'"))
    await _grant(ctx, member_user, "staff", station_id=world.ids["station_a"])
    forget_principal(ctx, member_user)
    station_code = ctx.tokens.qr_url(ctx.tokens.station_token(world.ids["station_a"], 1))
    me = await world.member(1)
    scanned = (datetime.now(UTC) - timedelta(days=4)).isoformat()  # synced late: review
    pending = (await me.post("/api/v1/checkins", json={"client_uuid": uuid.uuid4().hex, "token": station_code,
                                                        "scanned_at": scanned})).json()
    assert pending["status"] == "pending_review", pending
    assert [c["id"] for c in (await me.get("/api/v1/checkins/review")).json()] == [pending["checkin_id"]]
    own = await me.post(f"/api/v1/checkins/{pending['checkin_id']}/decision", json={"accept": True})
    assert own.status_code == 403 and own.json()["code"] == "own_request" and has_chinese(own.json()["detail"])
    assert await world.count("SELECT COUNT(*) FROM checkins WHERE status = 'pending_review'") == 1
    other = await (await world.staff_a()).post(f"/api/v1/checkins/{pending['checkin_id']}/decision", json={"accept": True})
    assert other.status_code == 200 and other.json()["status"] == "accepted"
