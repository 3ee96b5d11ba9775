"""党员联络服务站 and their kiosks. Staff reach their own stations; admins/secretaries the stations
owned by orgs in their subtrees; members may list active stations of their own tree."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from server.core.auth import Principal
from server.core.context import Context
from server.core.errors import APIError, forbidden, not_found
from server.core.sql import Where
from server.core.timeutil import utcnow
from server.keys.keyring import public_key_from_jwk
from server.keys.tokens import KIOSK_KID_PREFIX
from server.stations.schemas import KioskIn, KioskOut, StationIn, StationOut, StationPatch

_SELECT = """
SELECT s.id, s.name, s.org_id, o.name, s.address, s.lat, s.lng, s.geofence_m, s.service_hours, s.poster_version,
       s.status, s.org_path
FROM stations s JOIN orgs o ON o.id = s.org_id
"""


def _out(row: Any) -> StationOut:
    return StationOut(*row[:11])


def _root(path: str | None) -> str | None:
    return f"/{path.strip('/').split('/')[0]}/" if path else None


async def reachable_station(ctx: Context, user: Principal, station_id: int, *, manage: bool = False) -> tuple[StationOut, str]:
    """A station the caller may see; ``manage`` also requires staff/admin/secretary reach."""
    row = await ctx.db.fetchrow(_SELECT + " WHERE s.id = $1", station_id)
    if row is None:
        raise not_found("服务站")
    path = row[11]
    if user.reaches_station(row[0], path):
        return _out(row), path
    root = _root(user.member_org_path)
    if not manage and root and path.startswith(root) and row[10] == "active":
        return _out(row), path
    raise not_found("服务站")


async def list_stations(ctx: Context, user: Principal) -> list[StationOut]:
    where = Where()
    staff = where.sub()
    staff.any_of("s.id", list(user.staff_station_ids))
    managed = where.sub()
    managed.prefix_any("s.org_path", user.manager_paths)
    member = where.sub()
    root = _root(user.member_org_path)
    member.prefix_any("s.org_path", (root,) if root else ())
    member.add("s.status = {}", "active")
    where.either(staff, managed, member)
    rows = await ctx.db.fetch(_SELECT + f" WHERE {where.sql} ORDER BY s.id", *where.args)
    return [_out(r) for r in rows]


async def create_station(ctx: Context, user: Principal, data: StationIn) -> StationOut:
    path = await ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", data.org_id)
    if path is None or not user.manages_path(path):
        raise not_found("组织")
    if not user.admin_of_path(path):
        raise forbidden("只有管理员可以新建服务站")
    async with ctx.db.transaction():
        station_id = await ctx.db.fetchval(
            "INSERT INTO stations (name, org_id, org_path, address, lat, lng, geofence_m, service_hours,"
            " poster_version, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, 'active', $9) RETURNING id",
            data.name, data.org_id, path, data.address, data.lat, data.lng, data.geofence_m, data.service_hours, utcnow(),
        )
    station, _ = await reachable_station(ctx, user, station_id)
    return station


async def update_station(ctx: Context, user: Principal, station_id: int, data: StationPatch) -> StationOut:
    _, path = await reachable_station(ctx, user, station_id, manage=True)
    if not (user.manages_path(path) or station_id in user.staff_station_ids):
        raise not_found("服务站")
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    revoke = changes.pop("revoke_posters", False)
    if "status" in changes and not user.admin_of_path(path):
        raise forbidden("只有管理员可以停用服务站")
    async with ctx.db.transaction():
        for column, value in changes.items():
            await ctx.db.execute(f"UPDATE stations SET {column} = $1 WHERE id = $2", value, station_id)
        if revoke:
            await ctx.db.execute("UPDATE stations SET poster_version = poster_version + 1 WHERE id = $1", station_id)
    station, _ = await reachable_station(ctx, user, station_id)
    return station


def _kiosk_out(row: Any) -> KioskOut:
    return KioskOut(id=row[0], station_id=row[1], name=row[2], kid=f"{KIOSK_KID_PREFIX}{row[0]}", status=row[3],
                    created_at=row[4], revoked_at=row[5])


async def register_kiosk(ctx: Context, user: Principal, station_id: int, data: KioskIn) -> KioskOut:
    await reachable_station(ctx, user, station_id, manage=True)
    try:
        public_key_from_jwk(data.public_key_jwk)
    except ValueError:
        raise APIError(400, "invalid_public_key", "签到屏公钥无效：需要 Ed25519 公钥（JWK，不含私钥）") from None
    jwk = {k: data.public_key_jwk[k] for k in ("kty", "crv", "x")}
    async with ctx.db.transaction():
        kiosk_id = await ctx.db.fetchval(
            "INSERT INTO kiosks (station_id, name, public_key_jwk, status, created_by, created_at)"
            " VALUES ($1, $2, $3, 'active', $4, $5) RETURNING id",
            station_id, data.name, json.dumps(jwk, sort_keys=True), user.user_id, utcnow(),
        )
    row = await ctx.db.fetchrow("SELECT id, station_id, name, status, created_at, revoked_at FROM kiosks WHERE id = $1", kiosk_id)
    return _kiosk_out(row)


async def list_kiosks(ctx: Context, user: Principal, station_id: int) -> list[KioskOut]:
    await reachable_station(ctx, user, station_id, manage=True)
    rows = await ctx.db.fetch(
        "SELECT id, station_id, name, status, created_at, revoked_at FROM kiosks WHERE station_id = $1 ORDER BY id", station_id
    )
    return [_kiosk_out(r) for r in rows]


async def revoke_kiosk(ctx: Context, user: Principal, kiosk_id: int) -> None:
    station_id = await ctx.db.fetchval("SELECT station_id FROM kiosks WHERE id = $1", kiosk_id)
    if station_id is None:
        raise not_found("签到屏")
    await reachable_station(ctx, user, station_id, manage=True)
    await ctx.db.execute(
        "UPDATE kiosks SET status = 'revoked', revoked_at = $1 WHERE id = $2 AND status = 'active'", utcnow(), kiosk_id
    )


async def active_kiosk_jwks(ctx: Context) -> list[dict[str, str]]:
    rows = await ctx.db.fetch("SELECT id, public_key_jwk FROM kiosks WHERE status = 'active' ORDER BY id")
    out = []
    for kiosk_id, text in rows:
        jwk = json.loads(text)
        out.append({**jwk, "kid": f"{KIOSK_KID_PREFIX}{kiosk_id}", "alg": "EdDSA", "use": "sig"})
    return out
