"""``python -m server``: serve, migrate, seed-demo, create-admin, keys."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from server.settings import Settings, SettingsError


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"配置错误 / configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _check_database(settings: Settings) -> None:
    from server.core.db import DatabaseUnavailable, create_database

    db = create_database(settings)
    try:
        await db.start()
        await db.fetchval("SELECT 1")
    except (DatabaseUnavailable, OSError, Exception) as exc:  # one clear line, whatever the driver says
        print(f"数据库不可用 / database unavailable ({settings.database_url.split('@')[-1]}): {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        await db.close()


def cmd_serve(args: argparse.Namespace) -> None:
    settings = _settings()
    asyncio.run(_check_database(settings))
    from server.keys.keyring import KeyFileError, KeyRing

    try:
        KeyRing.load_or_create(settings.key_file)  # create once, before workers race for it
    except KeyFileError as exc:
        print(f"密钥文件错误 / key file error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.workers > 1 and not settings.redis_url:
        # Each worker would count login attempts on its own: N workers, N times the allowed tries.
        print("提示：多进程运行未设置 REDIS_URL，登录限流按进程分别计数 / warning: without REDIS_URL each worker"
              " throttles logins on its own", file=sys.stderr)
    import uvicorn

    writer = _start_checkin_writer(settings)
    print(
        f"红驿 Hongyi serving on http://{args.host}:{args.port} ({settings.dialect}, {args.workers} worker(s)"
        f"{', check-in writer pid ' + str(writer.process.pid) if writer and writer.process else ''})",
        flush=True,
    )
    try:
        uvicorn.run(
            "server.asgi:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            log_level="warning" if not args.access_log else "info",
            access_log=args.access_log,
            proxy_headers=False,
            server_header=False,
        )
    finally:
        if writer is not None:
            writer.stop()


def _start_checkin_writer(settings: Settings) -> object | None:
    """SQLite: members' check-ins are judged and written by a process of their own (see
    ``server.checkins.writer``); the web workers find it through the environment they inherit."""
    if settings.dialect != "sqlite" or not settings.sqlite_checkin_writer:
        return None
    import secrets

    from server.checkins.writer import WriterProcess

    name = f"hongyi-checkin-writer-{os.getpid()}-{secrets.token_hex(4)}"
    if sys.platform.startswith("linux"):
        address = "@" + name  # abstract: nothing on disk to leave behind
    else:
        import tempfile

        address = os.path.join(tempfile.gettempdir(), name + ".sock")
    writer = WriterProcess(address)
    if not writer.start():
        print("提示：签到写入进程未能启动，由各工作进程自行处理签到 / warning: the check-in writer did not start;"
              " workers judge check-ins themselves", file=sys.stderr, flush=True)
    os.environ["HONGYI_CHECKIN_WRITER_SOCKET"] = writer.address  # the workers connect (or retry) there
    return writer


def cmd_checkin_writer(args: argparse.Namespace) -> None:
    from server.checkins.writer import run_writer

    run_writer(_settings(), args.socket, args.parent)


def cmd_migrate(args: argparse.Namespace) -> None:
    from server.migrate import migrate_down, migrate_up

    settings = _settings()
    asyncio.run(_check_database(settings) if settings.dialect == "postgres" else asyncio.sleep(0))
    if args.down:
        asyncio.run(migrate_down(settings))
        print("migrations reverted")
    else:
        asyncio.run(migrate_up(settings))
        print("migrations applied")


def cmd_seed_demo(args: argparse.Namespace) -> None:
    from server.seed import seed_demo

    settings = _settings()
    asyncio.run(seed_demo(settings, force=args.force))


def cmd_create_admin(args: argparse.Namespace) -> None:
    from server.seed import create_admin

    settings = _settings()
    password = args.password or os.environ.get("HONGYI_ADMIN_PASSWORD") or getpass.getpass("密码 / password: ")
    if len(password) < 8:
        print("密码至少 8 位 / password must have at least 8 characters", file=sys.stderr)
        raise SystemExit(2)
    asyncio.run(create_admin(settings, phone=args.phone, name=args.name, password=password, org_id=args.org_id))


def cmd_keys(args: argparse.Namespace) -> None:
    from server.keys.keyring import KeyFileError, KeyRing

    settings = _settings()
    path = settings.key_file
    try:
        if args.action == "generate":
            ring = KeyRing.load_or_create(path)
            print(f"signing key {ring.signing.kid} in {path}")
        elif args.action == "rotate":
            key = KeyRing.rotate(path)
            print(f"new signing key {key.kid}; older keys still verify until retired. Restart the server to use it.")
        elif args.action == "retire":
            if not args.kid:
                print("keys retire needs a kid", file=sys.stderr)
                raise SystemExit(2)
            KeyRing.retire(path, args.kid)
            print(f"key {args.kid} retired: codes signed with it no longer verify after a restart")
        else:
            keys = KeyRing.list(path) if path.exists() else []
            signing = KeyRing(keys).signing.kid if any(k.status == "active" for k in keys) else None
            for key in keys:
                mark = " (signing)" if key.kid == signing else ""
                print(f"{key.kid}\t{key.status}{mark}\tcreated {key.created_at}")
    except KeyFileError as exc:
        print(f"密钥文件错误 / key file error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m server", description="红驿 Hongyi")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API and the PWA")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    serve.add_argument("--access-log", action="store_true")
    serve.set_defaults(func=cmd_serve)

    writer = sub.add_parser("checkin-writer", help="(started by serve) the process that judges and writes check-ins")
    writer.add_argument("--socket", required=True, help="Unix socket to listen on (@name: abstract)")
    writer.add_argument("--parent", type=int, help="stop when this process (serve) stops")
    writer.set_defaults(func=cmd_checkin_writer)

    migrate = sub.add_parser("migrate", help="apply (or --down: revert) database migrations")
    migrate.add_argument("--down", action="store_true")
    migrate.set_defaults(func=cmd_migrate)

    seed = sub.add_parser("seed-demo", help="a small demo street (skipped if data exists, unless --force)")
    seed.add_argument("--force", action="store_true")
    seed.set_defaults(func=cmd_seed_demo)

    admin = sub.add_parser("create-admin", help="create (or reset) a street admin login")
    admin.add_argument("--phone", required=True)
    admin.add_argument("--name", default="管理员")
    admin.add_argument("--password")
    admin.add_argument("--org-id", type=int, help="org to administer (default: the first root org)")
    admin.set_defaults(func=cmd_create_admin)

    keys = sub.add_parser("keys", help="server signing keys")
    keys.add_argument("action", choices=["generate", "rotate", "list", "retire"])
    keys.add_argument("kid", nargs="?")
    keys.set_defaults(func=cmd_keys)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
