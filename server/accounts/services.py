"""Login, rotating refresh tokens (stored hashed; reuse of a rotated token revokes its family),
logout, invite codes and activation; role grants (who is staff, secretary or admin where)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.accounts.schemas import GrantOut, InviteOut, RoleGrantIn, RoleGrantOut, TokenOut, UserOut
from server.core.auth import Principal, forget_principal, load_principal
from server.core.context import Context
from server.core.errors import APIError, conflict, forbidden, not_found
from server.core.masking import mask_phone
from server.core.security import hash_password, new_secret, sha256_hex, verify_password
from server.core.sql import Where, placeholders
from server.core.timeutil import utcnow

def _invalid_login() -> APIError:
    return APIError(401, "invalid_credentials", "手机号或密码不正确")


async def user_out(ctx: Context, principal: Principal) -> UserOut:
    row = await ctx.db.fetchrow(
        "SELECT u.phone, m.org_id, o.name FROM users u LEFT JOIN members m ON m.id = u.member_id"
        " LEFT JOIN orgs o ON o.id = m.org_id WHERE u.id = $1",
        principal.user_id,
    )
    grants = []
    for role, org_id, station_id in principal.grants:
        if station_id is not None:
            name = await ctx.db.fetchval("SELECT name FROM stations WHERE id = $1", station_id)
        else:
            name = await ctx.db.fetchval("SELECT name FROM orgs WHERE id = $1", org_id)
        grants.append(GrantOut(role=role, org_id=org_id, station_id=station_id, scope_name=name or ""))
    return UserOut(
        id=principal.user_id, phone=row[0], display_name=principal.display_name, member_id=principal.member_id,
        org_id=row[1], org_name=row[2], roles=principal.roles, grants=grants,
    )


async def _issue(ctx: Context, user_id: int, family: str | None = None) -> TokenOut:
    forget_principal(ctx, user_id)
    principal = await load_principal(ctx, user_id)
    if principal is None:
        raise _invalid_login()
    access, expires_in = ctx.tokens.access_token(user_id, ctx.settings.access_token_minutes)
    refresh = new_secret(32)
    now = utcnow()
    await ctx.db.execute(
        "INSERT INTO refresh_tokens (user_id, token_hash, family, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        user_id, sha256_hex(refresh), family or new_secret(12), now + timedelta(days=ctx.settings.refresh_token_days), now,
    )
    return TokenOut(
        access_token=access, refresh_token=refresh, token_type="bearer", expires_in=expires_in,
        user=await user_out(ctx, principal),
    )


async def login(ctx: Context, phone: str, password: str, client_ip: str) -> TokenOut:
    limit = ctx.settings.login_attempts_per_minute
    # The address first: tries it refuses do not count against the phone, so one throttled sprayer
    # cannot also lock the phone's owner out from elsewhere.
    if not await ctx.limiter.hit(f"login:ip:{client_ip}", limit * 5) or not await ctx.limiter.hit(
        f"login:phone:{phone}", limit
    ):
        raise APIError(429, "rate_limited", "登录尝试过于频繁，请一分钟后再试")
    row = await ctx.db.fetchrow("SELECT id, password_hash, is_active FROM users WHERE phone = $1", phone)
    # Verify even for unknown phones, so response time does not reveal which phones exist.
    ok = verify_password(row[1] if row else None, password)
    if row is None or not ok:
        raise _invalid_login()
    if not row[2]:
        raise APIError(403, "account_disabled", "账号已停用，请联系服务站工作人员")
    await ctx.limiter.reset(f"login:phone:{phone}")
    async with ctx.db.transaction():
        await ctx.db.execute("UPDATE users SET last_login_at = $1 WHERE id = $2", utcnow(), row[0])
        return await _issue(ctx, row[0])


async def refresh(ctx: Context, token: str) -> TokenOut:
    now = utcnow()
    reused = False
    async with ctx.db.transaction():
        row = await ctx.db.fetchrow(
            "SELECT id, user_id, family, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
            sha256_hex(token),
        )
        if row is None:
            raise APIError(401, "invalid_refresh_token", "登录已失效，请重新登录")
        token_id, user_id, family, expires_at, used_at, revoked_at = row
        if used_at is not None and revoked_at is None:
            # A rotated token came back: someone holds a copy. Revoke the whole family (committed, then refuse).
            await ctx.db.execute(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL", now, family
            )
            reused = True
        else:
            if revoked_at is not None or expires_at <= now:
                raise APIError(401, "invalid_refresh_token", "登录已失效，请重新登录")
            active = await ctx.db.fetchval("SELECT is_active FROM users WHERE id = $1", user_id)
            if not active:
                raise APIError(401, "invalid_refresh_token", "账号已停用，请联系服务站工作人员")
            # Conditional: of two refreshes racing with the same token, only one rotates it.
            rotated = await ctx.db.fetchval(
                "UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL RETURNING id", now, token_id
            )
            if rotated is None:
                raise APIError(401, "refresh_token_reused", "登录凭证已被使用过，为安全起见请重新登录")
            return await _issue(ctx, user_id, family)
    assert reused
    raise APIError(401, "refresh_token_reused", "登录凭证已被使用过，为安全起见请重新登录")


async def logout(ctx: Context, user_id: int, token: str | None) -> None:
    now = utcnow()
    async with ctx.db.transaction():
        if token:
            family = await ctx.db.fetchval(
                "SELECT family FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2", sha256_hex(token), user_id
            )
            if family is not None:
                await ctx.db.execute(
                    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL", now, family
                )
                return
        await ctx.db.execute(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL", now, user_id
        )


async def create_invite(ctx: Context, user_id: int, created_by: int) -> InviteOut:
    code = new_secret(16)
    expires_at = utcnow() + timedelta(days=ctx.settings.invite_days)
    await ctx.db.execute(
        "INSERT INTO invite_codes (user_id, code_hash, expires_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
        user_id, sha256_hex(code), expires_at, created_by, utcnow(),
    )
    return InviteOut(code=code, url=f"{ctx.settings.public_base_url}/activate?code={code}", expires_at=expires_at)


async def activate(ctx: Context, code: str, password: str) -> TokenOut:
    now = utcnow()
    async with ctx.db.transaction():
        row: Any = await ctx.db.fetchrow(
            "SELECT id, user_id, expires_at, used_at FROM invite_codes WHERE code_hash = $1", sha256_hex(code)
        )
        if row is None or row[3] is not None or row[2] <= now:
            raise APIError(400, "invalid_invite", "激活码无效或已过期，请联系工作人员重新生成")
        claimed = await ctx.db.fetchval(
            "UPDATE invite_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL RETURNING id", now, row[0]
        )
        if claimed is None:  # used by a concurrent activation a moment ago
            raise APIError(400, "invalid_invite", "激活码无效或已过期，请联系工作人员重新生成")
        await ctx.db.execute(
            "UPDATE users SET password_hash = $1, is_active = $2 WHERE id = $3", hash_password(password), True, row[1]
        )
        return await _issue(ctx, row[1])


async def set_password(ctx: Context, user_id: int, password: str) -> None:
    await ctx.db.execute("UPDATE users SET password_hash = $1 WHERE id = $2", hash_password(password), user_id)


# ---- Role grants: admins decide who is staff of which station and secretary/admin of which org ----

_GRANT_SELECT = """
SELECT g.id, g.user_id, u.display_name, u.phone, u.member_id, m.org_path, u.is_active, g.role, g.org_id, g.station_id,
       COALESCE(o.name, s.name), COALESCE(o.path, s.org_path), g.created_at
FROM role_grants g
JOIN users u ON u.id = g.user_id
LEFT JOIN members m ON m.id = u.member_id
LEFT JOIN orgs o ON o.id = g.org_id
LEFT JOIN stations s ON s.id = g.station_id
"""
_GRANT_PATH = "COALESCE(o.path, s.org_path)"


def _require_admin(user: Principal) -> None:
    if not user.is_admin:
        raise forbidden("只有管理员可以管理角色")


async def _admin_target_path(ctx: Context, user: Principal, *, org_id: int | None, station_id: int | None) -> str:
    """The org path of a grant's scope, if it lies in the caller's admin subtrees (else 404, like a missing id)."""
    if station_id is not None:
        path = await ctx.db.fetchval("SELECT org_path FROM stations WHERE id = $1", station_id)
        if path is None or not user.admin_of_path(path):
            raise not_found("服务站")
        return str(path)
    path = await ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", org_id)
    if path is None or not user.admin_of_path(path):
        raise not_found("组织")
    return str(path)


async def _grant_rows_out(ctx: Context, user: Principal, rows: list[Any]) -> list[RoleGrantOut]:
    # Phones: in full when the caller administers the user — a member of their subtree, or a staff-only
    # login whose every grant lies in their subtrees; otherwise masked as the members API masks them.
    loose = sorted({r[1] for r in rows if r[4] is None})
    outside: set[int] = set()
    if loose:
        scopes = await ctx.db.fetch(
            "SELECT g.user_id, COALESCE(o.path, s.org_path) FROM role_grants g LEFT JOIN orgs o ON o.id = g.org_id"
            f" LEFT JOIN stations s ON s.id = g.station_id WHERE g.user_id IN ({placeholders(len(loose))})",
            *loose,
        )
        outside = {uid for uid, path in scopes if not user.admin_of_path(path)}
    out = []
    for row in rows:
        full = (row[4] is not None and user.admin_of_path(row[5])) or (row[4] is None and row[1] not in outside)
        out.append(RoleGrantOut(
            id=row[0], user_id=row[1], display_name=row[2], phone=row[3] if full else mask_phone(row[3]), member_id=row[4],
            active=bool(row[6]), role=row[7], org_id=row[8], station_id=row[9], scope_name=row[10] or "",
            created_at=row[12],
        ))
    return out


async def list_grants(
    ctx: Context, user: Principal, *, org_id: int | None, station_id: int | None, role: str | None, user_id: int | None
) -> list[RoleGrantOut]:
    _require_admin(user)
    where = Where().prefix_any(_GRANT_PATH, user.admin_paths)
    if org_id is not None:  # grants anywhere in that org's subtree (its stations' too)
        path = await _admin_target_path(ctx, user, org_id=org_id, station_id=None)
        where.add(f"{_GRANT_PATH} LIKE {{}}", path + "%")
    if station_id is not None:
        await _admin_target_path(ctx, user, org_id=None, station_id=station_id)
        where.add("g.station_id = {}", station_id)
    if role is not None:
        where.add("g.role = {}", role)
    if user_id is not None:
        where.add("g.user_id = {}", user_id)
    rows = await ctx.db.fetch(_GRANT_SELECT + f" WHERE {where.sql} ORDER BY {_GRANT_PATH}, g.role, g.id", *where.args)
    return await _grant_rows_out(ctx, user, rows)


async def create_grant(ctx: Context, user: Principal, data: RoleGrantIn) -> RoleGrantOut:
    _require_admin(user)
    if (data.phone is None) == (data.user_id is None):
        raise APIError(400, "user_required", "请提供手机号或用户编号（二选一）")
    if data.role == "staff" and (data.station_id is None or data.org_id is not None):
        raise APIError(400, "invalid_scope", "工作人员角色需要指定服务站（station_id），不能指定组织")
    if data.role != "staff" and (data.org_id is None or data.station_id is not None):
        raise APIError(400, "invalid_scope", "管理员和支部书记角色需要指定组织（org_id），不能指定服务站")
    await _admin_target_path(ctx, user, org_id=data.org_id, station_id=data.station_id)
    if data.phone is not None:
        target = await ctx.db.fetchrow("SELECT id, is_active FROM users WHERE phone = $1", data.phone.strip())
    else:
        target = await ctx.db.fetchrow("SELECT id, is_active FROM users WHERE id = $1", data.user_id)
    if target is None:
        raise not_found("用户")  # members have logins; anyone else needs one first
    if not target[1]:
        raise conflict("account_disabled", "该账号已停用，不能授予角色")
    async with ctx.db.transaction():
        exists = await ctx.db.fetchval(
            "SELECT id FROM role_grants WHERE user_id = $1 AND role = $2 AND COALESCE(org_id, 0) = $3"
            " AND COALESCE(station_id, 0) = $4",
            target[0], data.role, data.org_id or 0, data.station_id or 0,
        )
        if exists is not None:
            raise conflict("grant_exists", "该用户已有这个角色")
        grant_id = await ctx.db.fetchval(
            "INSERT INTO role_grants (user_id, role, org_id, station_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            target[0], data.role, data.org_id, data.station_id, utcnow(),
        )
    forget_principal(ctx, target[0])  # takes effect on the user's next request, not after the cache's seconds
    rows = await ctx.db.fetch(_GRANT_SELECT + " WHERE g.id = $1", grant_id)
    return (await _grant_rows_out(ctx, user, rows))[0]


async def delete_grant(ctx: Context, user: Principal, grant_id: int) -> None:
    _require_admin(user)
    row = await ctx.db.fetchrow(_GRANT_SELECT + " WHERE g.id = $1", grant_id)
    if row is None or not user.admin_of_path(row[11]):
        raise not_found("角色授权")
    if row[1] == user.user_id and row[7] == "admin":
        raise conflict("cannot_revoke_self", "不能撤销自己的管理员权限，请由其他管理员操作")
    await ctx.db.execute("DELETE FROM role_grants WHERE id = $1", grant_id)
    forget_principal(ctx, row[1])
