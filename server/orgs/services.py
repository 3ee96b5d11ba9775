"""党组织 tree. ``path`` ('/1/5/12/') is kept on orgs and copied to members, stations and activities
so every scope filter is one prefix match; moving a subtree rewrites those prefixes in one unit."""

from __future__ import annotations

from typing import Any

import msgspec

from server.core.auth import Principal
from server.core.context import Context
from server.core.errors import APIError, forbidden, not_found
from server.core.sql import Where
from server.core.timeutil import utcnow
from server.orgs.schemas import OrgIn, OrgOut, OrgPatch

_COLUMNS = "id, name, kind, parent_id, path, depth, secretary_name, status"


def _out(row: Any) -> OrgOut:
    return OrgOut(*row)


async def get_org(ctx: Context, org_id: int) -> OrgOut | None:
    row = await ctx.db.fetchrow(f"SELECT {_COLUMNS} FROM orgs WHERE id = $1", org_id)
    return _out(row) if row else None


async def list_orgs(ctx: Context, user: Principal) -> list[OrgOut]:
    """Managers see their subtrees; everyone sees the chain of orgs above them (to name their branch)."""
    where = Where()
    managed = where.sub()
    managed.prefix_any("path", user.manager_paths)
    own_paths = [p for p in (user.member_org_path, *user.staff_station_paths) if p]
    ancestors = where.sub()
    ancestor_ids = sorted({int(i) for p in own_paths for i in p.strip("/").split("/") if i})
    ancestors.any_of("id", ancestor_ids)
    where.either(managed, ancestors)
    rows = await ctx.db.fetch(f"SELECT {_COLUMNS} FROM orgs WHERE {where.sql} ORDER BY path", *where.args)
    return [_out(r) for r in rows]


async def create_org(ctx: Context, user: Principal, data: OrgIn) -> OrgOut:
    parent = await get_org(ctx, data.parent_id)
    if parent is None or not user.manages_path(parent.path):
        raise not_found("上级组织")
    if not user.admin_of_path(parent.path):
        raise forbidden("只有管理员可以新建组织")
    async with ctx.db.transaction():
        org_id = await ctx.db.fetchval(
            "INSERT INTO orgs (name, kind, parent_id, path, depth, secretary_name, status, created_at)"
            " VALUES ($1, $2, $3, '', $4, $5, 'active', $6) RETURNING id",
            data.name, data.kind, parent.id, parent.depth + 1, data.secretary_name, utcnow(),
        )
        await ctx.db.execute("UPDATE orgs SET path = $1 WHERE id = $2", f"{parent.path}{org_id}/", org_id)
    created = await get_org(ctx, org_id)
    assert created is not None
    return created


async def create_root(ctx: Context, name: str, kind: str = "street_committee") -> int:
    """A tree root (a 街道党工委); only the CLI and the demo seed make these."""
    async with ctx.db.transaction():
        org_id = await ctx.db.fetchval(
            "INSERT INTO orgs (name, kind, parent_id, path, depth, status, created_at)"
            " VALUES ($1, $2, NULL, '', 0, 'active', $3) RETURNING id",
            name, kind, utcnow(),
        )
        await ctx.db.execute("UPDATE orgs SET path = $1 WHERE id = $2", f"/{org_id}/", org_id)
    return int(org_id)


async def update_org(ctx: Context, user: Principal, org_id: int, data: OrgPatch) -> OrgOut:
    org = await get_org(ctx, org_id)
    if org is None or not user.manages_path(org.path):
        raise not_found("组织")
    if not user.admin_of_path(org.path):
        raise forbidden("只有管理员可以修改组织")
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    new_parent = changes.pop("parent_id", None)
    async with ctx.db.transaction():
        for column, value in changes.items():
            await ctx.db.execute(f"UPDATE orgs SET {column} = $1 WHERE id = $2", value, org_id)
        if new_parent is not None and new_parent != org.parent_id:
            await _move(ctx, user, org, new_parent)
    updated = await get_org(ctx, org_id)
    assert updated is not None
    return updated


async def _move(ctx: Context, user: Principal, org: OrgOut, new_parent_id: int) -> None:
    from server.points.services import rebuild_member_tallies

    if org.parent_id is None:
        raise APIError(400, "cannot_move_root", "顶级组织不能移动")
    parent = await get_org(ctx, new_parent_id)
    if parent is None or not user.admin_of_path(parent.path):
        raise not_found("上级组织")
    if parent.path.startswith(org.path):
        raise APIError(400, "cycle", "不能把组织移动到它自己的下级组织中")
    old_prefix, new_prefix = org.path, f"{parent.path}{org.id}/"
    depth_shift = parent.depth + 1 - org.depth
    like = old_prefix + "%"
    db = ctx.db
    await db.execute("UPDATE orgs SET parent_id = $1 WHERE id = $2", parent.id, org.id)
    await db.execute(
        "UPDATE orgs SET path = $1 || substr(path, $2), depth = depth + $3 WHERE path LIKE $4",
        new_prefix, len(old_prefix) + 1, depth_shift, like,
    )
    for table in ("members", "stations", "activities"):
        await db.execute(
            f"UPDATE {table} SET org_path = $1 || substr(org_path, $2) WHERE org_path LIKE $3",
            new_prefix, len(old_prefix) + 1, like,
        )
    members = await db.fetch("SELECT id FROM members WHERE org_path LIKE $1", new_prefix + "%")
    for (member_id,) in members:
        await rebuild_member_tallies(ctx, member_id)
