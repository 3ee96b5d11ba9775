"""Who is calling, and what they may see.

Every request except those marked ``exclude_from_auth`` needs a valid bearer access token (default
deny). The principal — user, member and role grants with their org paths — is loaded from the
database and cached for a few seconds per user, so a revoked grant takes effect within seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware.authentication import AbstractAuthenticationMiddleware, AuthenticationResult

from server.core.context import Context

PRINCIPAL_TTL_SECONDS = 3.0


@dataclass(frozen=True)
class Principal:
    user_id: int
    display_name: str
    member_id: int | None
    member_org_path: str | None
    member_status: str | None = None
    admin_paths: tuple[str, ...] = ()
    secretary_paths: tuple[str, ...] = ()
    staff_station_ids: tuple[int, ...] = ()
    staff_station_paths: tuple[str, ...] = ()
    grants: tuple[tuple[str, int | None, int | None], ...] = field(default=())

    @property
    def roles(self) -> list[str]:
        roles = ["member"] if self.member_id else []
        if self.admin_paths:
            roles.append("admin")
        if self.secretary_paths:
            roles.append("secretary")
        if self.staff_station_ids:
            roles.append("staff")
        return roles

    @property
    def is_admin(self) -> bool:
        return bool(self.admin_paths)

    @property
    def is_root_admin(self) -> bool:
        """Admin of a whole tree (an org without parent): may edit street-wide point rules."""
        return any(path.count("/") == 2 for path in self.admin_paths)

    @property
    def manager_paths(self) -> tuple[str, ...]:
        """Org subtrees this user manages as admin or secretary."""
        return self.admin_paths + self.secretary_paths

    @property
    def is_staff_like(self) -> bool:
        return bool(self.admin_paths or self.secretary_paths or self.staff_station_ids)

    def manages_path(self, path: str | None) -> bool:
        return bool(path) and any(path.startswith(p) for p in self.manager_paths)  # type: ignore[union-attr]

    def reaches_station(self, station_id: int, station_org_path: str) -> bool:
        """Staff of the station, or admin/secretary of an org subtree that owns it."""
        return station_id in self.staff_station_ids or self.manages_path(station_org_path)

    def sees_member(self, member_id: int, member_org_path: str) -> bool:
        """Themself; a manager of the member's org subtree; staff of a station whose org subtree holds the member."""
        if member_id == self.member_id or self.manages_path(member_org_path):
            return True
        return any(member_org_path.startswith(p) for p in self.staff_station_paths)

    @property
    def member_reach_paths(self) -> tuple[str, ...]:
        """Org subtrees whose members this user may look up (managers and staff)."""
        return self.manager_paths + self.staff_station_paths

    def admin_of_path(self, path: str | None) -> bool:
        return bool(path) and any(path.startswith(p) for p in self.admin_paths)  # type: ignore[union-attr]


_PRINCIPAL_SQL = """
SELECT u.id, u.display_name, u.member_id, u.is_active, m.org_path, m.status,
       g.role, g.org_id, o.path, g.station_id, s.org_path
FROM users u
LEFT JOIN members m ON m.id = u.member_id
LEFT JOIN role_grants g ON g.user_id = u.id
LEFT JOIN orgs o ON o.id = g.org_id
LEFT JOIN stations s ON s.id = g.station_id
WHERE u.id = $1
"""


async def load_principal(ctx: Context, user_id: int) -> Principal | None:
    cache: dict[int, tuple[float, Principal | None]] = ctx.caches.setdefault("principals", {})
    hit = cache.get(user_id)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    rows = await ctx.db.fetch(_PRINCIPAL_SQL, user_id)
    principal: Principal | None = None
    if rows and rows[0][3]:
        first = rows[0]
        admin: list[str] = []
        secretary: list[str] = []
        staff: list[int] = []
        staff_paths: list[str] = []
        grants = []
        for row in rows:
            role, org_id, org_path, station_id = row[6], row[7], row[8], row[9]
            if role is None:
                continue
            grants.append((role, org_id, station_id))
            if role == "admin" and org_path:
                admin.append(org_path)
            elif role == "secretary" and org_path:
                secretary.append(org_path)
            elif role == "staff" and station_id is not None:
                staff.append(station_id)
                staff_paths.append(row[10])
        principal = Principal(
            user_id=first[0],
            display_name=first[1],
            member_id=first[2],
            member_org_path=first[4],
            member_status=first[5],
            admin_paths=tuple(admin),
            secretary_paths=tuple(secretary),
            staff_station_ids=tuple(staff),
            staff_station_paths=tuple(staff_paths),
            grants=tuple(grants),
        )
    if len(cache) > 50_000:
        cache.clear()
    cache[user_id] = (now + PRINCIPAL_TTL_SECONDS, principal)
    return principal


def forget_principal(ctx: Context, user_id: int) -> None:
    ctx.caches.setdefault("principals", {}).pop(user_id, None)


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        # Straight from the ASGI scope (what ``connection.headers.get`` returns, without building a
        # Headers object on every request).
        header = next((v.decode("latin-1") for k, v in connection.scope["headers"] if k == b"authorization"), "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException("请先登录")
        ctx: Context = connection.app.state.ctx
        user_id = ctx.tokens.verify_access(token.strip())
        if user_id is None:
            raise NotAuthorizedException("登录已过期，请重新登录")
        principal = await load_principal(ctx, user_id)
        if principal is None:
            raise NotAuthorizedException("账号不可用，请重新登录")
        return AuthenticationResult(user=principal, auth=token)

