"""党员 records. Scope: managers see their org subtrees, station staff the subtree of their station's
org (to find and check in members by name), a member only themself. Out of scope is 404."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from server.core.auth import Principal, forget_principal
from server.core.context import Context
from server.core.errors import APIError, conflict, forbidden, not_found
from server.core.security import hash_id_card
from server.core.sql import Where
from server.core.timeutil import utcnow
from server.members.schemas import MemberIn, MemberOut, MemberPatch
from server.points import services as points

ACTIVE_STATUSES = ("normal", "inflow")
INACTIVE_LOGIN_STATUSES = ("transferred", "history")

_SELECT = """
SELECT m.id, m.name, m.phone, m.gender, m.birth_date, m.id_card_last4, m.join_date, m.full_date, m.member_type,
       m.status, m.org_id, o.name, m.group_id, m.tags, m.card_version, (u.password_hash IS NOT NULL), m.org_path
FROM members m JOIN orgs o ON o.id = m.org_id LEFT JOIN users u ON u.member_id = m.id
"""


def _out(row: Any, mask_phone: bool = False) -> MemberOut:
    tags = row[13]
    if isinstance(tags, str):  # asyncpg returns text[] as list; SQLite via Piccolo's converter too
        tags = msgspec.json.decode(tags)
    phone = row[2]
    if mask_phone and len(phone) >= 7:
        phone = phone[:3] + "****" + phone[-4:]
    return MemberOut(
        id=row[0], name=row[1], phone=phone, gender=row[3], birth_date=row[4], id_card_last4=row[5], join_date=row[6],
        full_date=row[7], member_type=row[8], status=row[9], org_id=row[10], org_name=row[11], group_id=row[12],
        tags=list(tags or []), card_version=row[14], activated=bool(row[15]),
    )


def _pepper(ctx: Context) -> str:
    key = ctx.tokens.keyring.keys[0]
    from cryptography.hazmat.primitives import serialization

    raw = key.private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return raw.hex() + ":id-card"


async def visible_member(ctx: Context, user: Principal, member_id: int) -> tuple[MemberOut, str]:
    row = await ctx.db.fetchrow(_SELECT + " WHERE m.id = $1", member_id)
    if row is None or not user.sees_member(row[0], row[16]):
        raise not_found("党员")
    return _out(row, mask_phone=not (user.manages_path(row[16]) or row[0] == user.member_id)), row[16]


async def list_members(
    ctx: Context, user: Principal, *, q: str | None, org_id: int | None, status: str | None, limit: int, offset: int
) -> list[MemberOut]:
    where = Where()
    reach = where.sub()
    reach.prefix_any("m.org_path", user.member_reach_paths)
    self_only = where.sub()
    self_only.add("m.id = {}", user.member_id or 0)
    where.either(reach, self_only)
    if q:
        needle = q.strip()
        where.add("(m.name LIKE {} OR m.phone LIKE {})", f"%{needle}%", f"%{needle}%")
    if org_id is not None:
        path = await ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", org_id)
        # An org outside my reach is 404 like a missing one (not an empty page); my own branch is fine.
        own = bool(user.member_org_path and user.member_org_path.startswith(str(path)))
        if path is None or not (own or any(str(path).startswith(p) for p in user.member_reach_paths)):
            raise not_found("组织")
        where.add("m.org_path LIKE {}", path + "%")
    if status is not None:
        where.add("m.status = {}", status)
    rows = await ctx.db.fetch(
        _SELECT + f" WHERE {where.sql} ORDER BY m.org_path, m.name, m.id LIMIT {int(limit)} OFFSET {int(offset)}",
        *where.args,
    )
    return [_out(r, mask_phone=not (user.manages_path(r[16]) or r[0] == user.member_id)) for r in rows]


async def _org_path(ctx: Context, user: Principal, org_id: int) -> str:
    path = await ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", org_id)
    if path is None or not user.manages_path(path):
        raise not_found("组织")
    return str(path)


async def create_member(ctx: Context, user: Principal, data: MemberIn) -> MemberOut:
    if not user.manager_paths:
        raise forbidden("只有支部书记或管理员可以新增党员")
    org_path = await _org_path(ctx, user, data.org_id)
    if data.group_id is not None:
        await _org_path(ctx, user, data.group_id)
    async with ctx.db.transaction():
        member_id = await insert_member(ctx, data, org_path, utcnow())
    member, _ = await visible_member(ctx, user, member_id)
    return member


async def insert_member(ctx: Context, data: MemberIn, org_path: str, now: datetime) -> int:
    """The member row, their login (no password until activated) and, if active, a zero tally row.
    The caller holds a write unit and has checked the org (``org_path``) is in scope. Shared by
    ``POST /members`` and the import, so both create exactly the same rows."""
    if await ctx.db.fetchval("SELECT id FROM users WHERE phone = $1", data.phone) is not None:
        raise conflict("phone_taken", "该手机号已被其他账号使用")
    id_hash, last4 = _id_card(ctx, data.id_card)
    member_id = await ctx.db.fetchval(
        "INSERT INTO members (name, gender, birth_date, phone, id_card_hash, id_card_last4, join_date, full_date,"
        " member_type, status, org_id, org_path, group_id, tags, card_version, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15, $15) RETURNING id",
        data.name, data.gender, data.birth_date, data.phone, id_hash, last4, data.join_date, data.full_date,
        data.member_type, data.status, data.org_id, org_path, data.group_id, _tags(ctx, data.tags), now,
    )
    await ctx.db.execute(
        "INSERT INTO users (phone, display_name, password_hash, member_id, is_active, created_at)"
        " VALUES ($1, $2, NULL, $3, $4, $5)",
        data.phone, data.name, member_id, True, now,
    )
    if data.status in ACTIVE_STATUSES:
        await points.ensure_member_tally(ctx, member_id, org_path)
    return int(member_id)


def _tags(ctx: Context, tags: list[str]) -> list[str]:
    # text[] on PostgreSQL; on SQLite Piccolo's registered list adapter stores JSON text.
    return list(tags)


def _id_card(ctx: Context, id_card: str | None) -> tuple[str | None, str | None]:
    if not id_card:
        return None, None
    return hash_id_card(id_card, _pepper(ctx)), id_card.strip().upper()[-4:]


async def update_member(ctx: Context, user: Principal, member_id: int, data: MemberPatch) -> MemberOut:
    row = await ctx.db.fetchrow("SELECT id, org_path, status, org_id FROM members WHERE id = $1", member_id)
    if row is None or not user.sees_member(row[0], row[1]):
        raise not_found("党员")
    if not user.manages_path(row[1]):
        raise forbidden("只有支部书记或管理员可以修改党员信息")
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    revoke_card = changes.pop("revoke_card", False)
    new_org = changes.pop("org_id", None)
    id_card = changes.pop("id_card", msgspec.UNSET)
    now = utcnow()
    async with ctx.db.transaction():
        await ctx.db.lock_member(member_id)
        if "phone" in changes:
            taken = await ctx.db.fetchval(
                "SELECT id FROM users WHERE phone = $1 AND (member_id IS NULL OR member_id <> $2)", changes["phone"], member_id
            )
            if taken is not None:
                raise conflict("phone_taken", "该手机号已被其他账号使用")
            await ctx.db.execute("UPDATE users SET phone = $1 WHERE member_id = $2", changes["phone"], member_id)
        if "name" in changes:
            await ctx.db.execute("UPDATE users SET display_name = $1 WHERE member_id = $2", changes["name"], member_id)
        if "group_id" in changes and changes["group_id"] is not None:
            await _org_path(ctx, user, changes["group_id"])
        if "tags" in changes:
            changes["tags"] = _tags(ctx, changes["tags"])
        if id_card is not msgspec.UNSET:
            changes["id_card_hash"], changes["id_card_last4"] = _id_card(ctx, id_card)
        for column, value in changes.items():
            await ctx.db.execute(f"UPDATE members SET {column} = $1 WHERE id = $2", value, member_id)
        if revoke_card:
            await ctx.db.execute("UPDATE members SET card_version = card_version + 1 WHERE id = $1", member_id)
        rebuild = False
        if new_org is not None and new_org != row[3]:
            new_path = await _org_path(ctx, user, new_org)  # transfer: both ends must be in my scope
            await ctx.db.execute("UPDATE members SET org_id = $1, org_path = $2 WHERE id = $3", new_org, new_path, member_id)
            rebuild = True
        if "status" in changes and (changes["status"] in ACTIVE_STATUSES) != (row[2] in ACTIVE_STATUSES):
            rebuild = True
        if rebuild:
            status = changes.get("status", row[2])
            if status in ACTIVE_STATUSES:
                await points.rebuild_member_tallies(ctx, member_id)
            else:  # only active members are ranked
                await points.drop_member_tallies(ctx, member_id)
        await ctx.db.execute("UPDATE members SET updated_at = $1 WHERE id = $2", now, member_id)
        if "status" in changes:
            # 转出/历史 switch the login off; any other status (e.g. a member transferred back) switches it on.
            active = changes["status"] not in INACTIVE_LOGIN_STATUSES
            await ctx.db.execute("UPDATE users SET is_active = $1 WHERE member_id = $2", active, member_id)
    user_id = await ctx.db.fetchval("SELECT id FROM users WHERE member_id = $1", member_id)
    if user_id is not None:
        forget_principal(ctx, user_id)
    member, _ = await visible_member(ctx, user, member_id)
    return member


async def member_user_id(ctx: Context, member_id: int) -> int:
    user_id = await ctx.db.fetchval("SELECT id FROM users WHERE member_id = $1", member_id)
    if user_id is None:
        raise APIError(409, "no_account", "该党员没有登录账号")
    return int(user_id)


async def card_token(ctx: Context, member_id: int) -> str:
    version = await ctx.db.fetchval("SELECT card_version FROM members WHERE id = $1", member_id)
    return ctx.tokens.member_token(member_id, int(version))
