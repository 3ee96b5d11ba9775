"""Login, rotating refresh tokens (stored hashed; reuse of a rotated token revokes its family),
logout, invite codes and activation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.accounts.schemas import GrantOut, InviteOut, TokenOut, UserOut
from server.core.auth import Principal, forget_principal, load_principal
from server.core.context import Context
from server.core.errors import APIError
from server.core.security import hash_password, new_secret, sha256_hex, verify_password
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
    allowed_phone = await ctx.limiter.hit(f"login:phone:{phone}", limit)
    allowed_ip = await ctx.limiter.hit(f"login:ip:{client_ip}", limit * 5)
    if not (allowed_phone and allowed_ip):
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
