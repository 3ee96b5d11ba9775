"""Demo data and admin creation, through the same services the API uses."""

from __future__ import annotations

from functools import lru_cache
from datetime import date, timedelta

from server.core.context import Context, open_context
from server.core.security import hash_password
from server.core.timeutil import utcnow
from server.orgs.services import create_root
from server.points import services as points
from server.settings import Settings

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["建国", "秀英", "志强", "桂兰", "海燕", "文明", "淑珍", "卫东", "红梅", "国庆", "丽华", "振华", "玉兰", "德明", "春生",
         "晓东", "翠花", "永红", "建华", "美玲"]

DEMO_PASSWORDS = {"admin": "hongyi-admin", "staff": "hongyi-staff", "secretary": "hongyi-secretary", "member": "hongyi-member"}


async def _org(ctx: Context, name: str, kind: str, parent_id: int) -> int:
    parent_path, depth = await ctx.db.fetchrow("SELECT path, depth FROM orgs WHERE id = $1", parent_id)
    async with ctx.db.transaction():
        org_id = await ctx.db.fetchval(
            "INSERT INTO orgs (name, kind, parent_id, path, depth, status, created_at)"
            " VALUES ($1, $2, $3, '', $4, 'active', $5) RETURNING id",
            name, kind, parent_id, depth + 1, utcnow(),
        )
        await ctx.db.execute("UPDATE orgs SET path = $1 WHERE id = $2", f"{parent_path}{org_id}/", org_id)
    return int(org_id)


@lru_cache(maxsize=8)
def _demo_hash(password: str) -> str:
    """Demo logins share a few known passwords: hash each once (argon2 takes ~0.1 s by design)."""
    return hash_password(password)


async def _user(ctx: Context, phone: str, name: str, password: str | None, member_id: int | None = None) -> int:
    existing = await ctx.db.fetchval("SELECT id FROM users WHERE phone = $1", phone)
    async with ctx.db.transaction():
        if existing is not None:
            await ctx.db.execute(
                "UPDATE users SET password_hash = $1, is_active = $2 WHERE id = $3",
                _demo_hash(password) if password else None, True, existing,
            )
            return int(existing)
        return int(await ctx.db.fetchval(
            "INSERT INTO users (phone, display_name, password_hash, member_id, is_active, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            phone, name, _demo_hash(password) if password else None, member_id, True, utcnow(),
        ))


async def _grant(ctx: Context, user_id: int, role: str, org_id: int | None = None, station_id: int | None = None) -> None:
    await ctx.db.execute(
        "INSERT INTO role_grants (user_id, role, org_id, station_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        user_id, role, org_id, station_id, utcnow(),
    )


async def _member(ctx: Context, name: str, phone: str, org_id: int, index: int) -> int:
    org_path = await ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", org_id)
    now = utcnow()
    tags = [["老党员"], ["志愿者"], ["在职"], ["困难党员"], []][index % 5]
    async with ctx.db.transaction():
        member_id = await ctx.db.fetchval(
            "INSERT INTO members (name, gender, birth_date, phone, join_date, full_date, member_type, status, org_id,"
            " org_path, tags, card_version, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, 'normal', $8, $9, $10, 1, $11, $11) RETURNING id",
            name, "male" if index % 2 else "female", date(1940 + index % 50, 1 + index % 12, 1 + index % 28), phone,
            date(1965 + index % 55, 7, 1), date(1966 + index % 55, 7, 1), "probationary" if index % 13 == 0 else "formal",
            org_id, org_path, tags, now,
        )
        await points.ensure_member_tally(ctx, member_id, org_path)
    return int(member_id)


async def seed_demo(settings: Settings, force: bool = False) -> dict[str, int]:
    async with open_context(settings) as ctx:
        if not force and await ctx.db.fetchval("SELECT COUNT(*) FROM orgs"):
            print("demo data already present (use --force to add another street)")
            return {}
        ids = await _seed(ctx)
    print("红驿 demo seeded. Logins (phone / password):")
    print(f"  街道管理员 admin      13800000000 / {DEMO_PASSWORDS['admin']}")
    print(f"  服务站工作人员 staff  13800000001 / {DEMO_PASSWORDS['staff']}  (幸福里服务站)")
    print(f"  服务站工作人员 staff  13800000002 / {DEMO_PASSWORDS['staff']}  (和平苑服务站)")
    print(f"  支部书记 secretary    13800000003 / {DEMO_PASSWORDS['secretary']}")
    print(f"  党员 member           13900000001 / {DEMO_PASSWORDS['member']}")
    return ids


async def _seed(ctx: Context) -> dict[str, int]:
    street = await create_root(ctx, "红驿街道党工委")
    community_a = await _org(ctx, "幸福里社区党委", "community_committee", street)
    community_b = await _org(ctx, "和平苑社区党委", "community_committee", street)
    branches = [
        await _org(ctx, "幸福里第一党支部", "branch", community_a),
        await _org(ctx, "幸福里商户联合党支部", "joint_branch", community_a),
        await _org(ctx, "和平苑第一党支部", "branch", community_b),
        await _org(ctx, "和平苑流动党员党支部", "floating_branch", community_b),
    ]
    group = await _org(ctx, "第一党小组", "group", branches[0])

    now = utcnow()
    async with ctx.db.transaction():
        station_a = await ctx.db.fetchval(
            "INSERT INTO stations (name, org_id, org_path, address, lat, lng, geofence_m, service_hours, poster_version,"
            " status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, 'active', $9) RETURNING id",
            "幸福里党员联络服务站", community_a, f"/{street}/{community_a}/", "幸福里小区 3 号楼一层", 31.2304, 121.4737, 300,
            "周一至周五 9:00–17:00", now,
        )
        station_b = await ctx.db.fetchval(
            "INSERT INTO stations (name, org_id, org_path, address, service_hours, poster_version, status, created_at)"
            " VALUES ($1, $2, $3, $4, $5, 1, 'active', $6) RETURNING id",
            "和平苑党员联络服务站", community_b, f"/{street}/{community_b}/", "和平苑社区服务中心二楼", "每天 8:30–20:00", now,
        )

    member_ids: list[int] = []
    for index in range(40):
        name = SURNAMES[index % len(SURNAMES)] + GIVEN[(index * 7) % len(GIVEN)]
        org_id = group if index < 4 else branches[index % 4]
        member_ids.append(await _member(ctx, name, f"139{index + 1:08d}", org_id, index))
    await _user(ctx, "13900000001", "王建国", DEMO_PASSWORDS["member"], member_ids[0])
    for member_id, phone in zip(member_ids[1:], (f"139{i + 1:08d}" for i in range(1, 40))):
        name = await ctx.db.fetchval("SELECT name FROM members WHERE id = $1", member_id)
        await _user(ctx, phone, name, None, member_id)
    await ctx.db.execute("UPDATE members SET name = $1 WHERE id = $2", "王建国", member_ids[0])

    admin = await _user(ctx, "13800000000", "街道管理员", DEMO_PASSWORDS["admin"])
    await _grant(ctx, admin, "admin", org_id=street)
    staff_a = await _user(ctx, "13800000001", "幸福里站工作人员", DEMO_PASSWORDS["staff"])
    await _grant(ctx, staff_a, "staff", station_id=station_a)
    staff_b = await _user(ctx, "13800000002", "和平苑站工作人员", DEMO_PASSWORDS["staff"])
    await _grant(ctx, staff_b, "staff", station_id=station_b)
    secretary = await _user(ctx, "13800000003", "幸福里第一党支部书记", DEMO_PASSWORDS["secretary"])
    await _grant(ctx, secretary, "secretary", org_id=branches[0])

    hour = timedelta(hours=1)
    start_now = now.replace(minute=0, second=0, microsecond=0)
    plans = [
        # (station, org, type, title, starts, hours, required)
        (station_a, branches[0], "theme_day", "主题党日：学习新修订的党章", start_now, 3, True),
        (station_a, community_a, "volunteer", "志愿服务：社区环境整治", start_now - hour, 4, False),
        (station_a, branches[0], "party_lecture", "党课：红色家风代代传", start_now - timedelta(days=7), 2, False),
        (station_a, branches[0], "branch_meeting", "支部党员大会（第四季度）", start_now + timedelta(days=5), 2, True),
        (station_b, branches[2], "group_meeting", "党小组会：学习交流", start_now + timedelta(days=2), 2, False),
        (station_b, community_b, "volunteer", "志愿服务：为老助餐", start_now - hour, 3, False),
    ]
    activity_ids = []
    for station, org_id, kind, title, starts, hours, required in plans:
        org_path = await ctx.db.fetchval("SELECT path FROM orgs WHERE id = $1", org_id)
        ends = starts + hours * hour
        status = "closed" if ends < now else "planned"
        async with ctx.db.transaction():
            activity_ids.append(await ctx.db.fetchval(
                "INSERT INTO activities (type, title, description, station_id, org_id, org_path, starts_at, ends_at,"
                " checkin_opens_at, checkin_closes_at, required, records_hours, capacity, status, created_by, created_at)"
                " VALUES ($1, $2, '', $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13, $14) RETURNING id",
                kind, title, station, org_id, org_path, starts, ends, starts - timedelta(minutes=30), ends, required,
                kind == "volunteer", status, admin, now,
            ))
    return {"street": street, "station_a": int(station_a), "station_b": int(station_b), "admin": admin,
            "staff_a": staff_a, "staff_b": staff_b, "secretary": secretary, "first_member": member_ids[0],
            "first_activity": int(activity_ids[0])}


async def create_admin(settings: Settings, *, phone: str, name: str, password: str, org_id: int | None) -> None:
    async with open_context(settings) as ctx:
        if org_id is None:
            org_id = await ctx.db.fetchval("SELECT id FROM orgs WHERE parent_id IS NULL ORDER BY id LIMIT 1")
        if org_id is None:
            org_id = await create_root(ctx, "街道党工委")
        elif await ctx.db.fetchval("SELECT id FROM orgs WHERE id = $1", org_id) is None:
            raise SystemExit(f"no org {org_id}")
        user_id = await _user(ctx, phone, name, password)
        has = await ctx.db.fetchval(
            "SELECT id FROM role_grants WHERE user_id = $1 AND role = 'admin' AND org_id = $2", user_id, org_id
        )
        if has is None:
            await _grant(ctx, user_id, "admin", org_id=org_id)
    print(f"admin {phone} can log in (org {org_id})")
