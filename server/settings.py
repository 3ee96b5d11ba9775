"""Settings from environment variables, with defaults that work on a fresh checkout.

A wrong value stops start-up with one clear line (``SettingsError``), never a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is wrong; the message names the variable and what is expected."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _fraction(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number (a fraction such as 0.2)") from None
    if not 0 <= value <= 1:
        raise SettingsError(f"{name}={value} must be a fraction between 0 and 1 (0.2 = 20 %)")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    public_base_url: str
    key_file: Path
    timezone: str
    offline_soft_hours: int = 72
    offline_hard_days: int = 30
    clock_skew_seconds: int = 300
    kiosk_token_max_age_seconds: int = 60
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    invite_days: int = 14
    login_attempts_per_minute: int = 10
    points_base: int = 60
    race_top: float = 0.2  # 赛马: share of ranked branches banded 先进 (top places)
    race_bottom: float = 0.2  # … and 后进 (bottom places)
    sqlite_synchronous: str = "NORMAL"
    sqlite_checkin_writer: bool = True  # serve: members' check-ins judged and written by a process of their own
    checkin_writer_socket: str | None = None  # set by serve for its workers: where that process listens
    pg_pool_size: int = 10
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    pwa_dist: Path = ROOT / "pwa" / "dist"
    debug: bool = False

    @property
    def dialect(self) -> str:
        return "postgres" if self.database_url.startswith(("postgres://", "postgresql://")) else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        assert self.dialect == "sqlite"
        return Path(self.database_url.removeprefix("sqlite:///"))

    @cached_property  # read several times for every check-in
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("HONGYI_DATA_DIR") or ROOT / "data")
        database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'hongyi.db'}"
        if database_url.startswith("sqlite:///"):
            if database_url == "sqlite:///" or ":memory:" in database_url:
                raise SettingsError("DATABASE_URL must name a SQLite file, e.g. sqlite:///./data/hongyi.db")
        elif database_url.startswith(("postgres://", "postgresql://")):
            parsed = urlparse(database_url)
            if not parsed.hostname and not parsed.path.strip("/"):
                raise SettingsError("DATABASE_URL must name a PostgreSQL host or database")
        else:
            raise SettingsError(
                f"DATABASE_URL={database_url!r} is not supported: use sqlite:///path/file.db or postgresql://user@host/db"
            )
        redis_url = env.get("REDIS_URL") or None
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"REDIS_URL={redis_url!r} must start with redis:// or rediss://")
        public_base_url = (env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
        if not public_base_url.startswith(("http://", "https://")):
            raise SettingsError(f"PUBLIC_BASE_URL={public_base_url!r} must start with http:// or https://")
        timezone = env.get("HONGYI_TIMEZONE") or "Asia/Shanghai"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"HONGYI_TIMEZONE={timezone!r} is not a known time zone") from None
        synchronous = (env.get("SQLITE_SYNCHRONOUS") or "NORMAL").upper()
        if synchronous not in {"NORMAL", "FULL"}:
            raise SettingsError("SQLITE_SYNCHRONOUS must be NORMAL or FULL")
        checkin_writer = (env.get("SQLITE_CHECKIN_WRITER") or "on").lower()
        if checkin_writer not in {"on", "off"}:
            raise SettingsError("SQLITE_CHECKIN_WRITER must be on or off")
        soft = _int(env, "OFFLINE_SOFT_HOURS", 72, 1)
        hard = _int(env, "OFFLINE_HARD_DAYS", 30, 1)
        if hard * 24 <= soft:
            raise SettingsError("OFFLINE_HARD_DAYS must be longer than OFFLINE_SOFT_HOURS")
        race_top = _fraction(env, "HONGYI_RACE_TOP", 0.2)
        race_bottom = _fraction(env, "HONGYI_RACE_BOTTOM", 0.2)
        if race_top + race_bottom > 1:
            raise SettingsError("HONGYI_RACE_TOP + HONGYI_RACE_BOTTOM must not exceed 1")
        origins = tuple(o.strip().rstrip("/") for o in (env.get("CORS_ORIGINS") or "").split(",") if o.strip())
        proxies = tuple(p.strip() for p in (env.get("TRUSTED_PROXIES") or "").split(",") if p.strip())
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            public_base_url=public_base_url,
            key_file=Path(env.get("HONGYI_KEY_FILE") or data_dir / "keys.json"),
            timezone=timezone,
            offline_soft_hours=soft,
            offline_hard_days=hard,
            clock_skew_seconds=_int(env, "CLOCK_SKEW_SECONDS", 300, 0),
            kiosk_token_max_age_seconds=_int(env, "KIOSK_TOKEN_MAX_AGE_SECONDS", 60, 1),
            access_token_minutes=_int(env, "ACCESS_TOKEN_MINUTES", 15, 1),
            refresh_token_days=_int(env, "REFRESH_TOKEN_DAYS", 30, 1),
            invite_days=_int(env, "INVITE_DAYS", 14, 1),
            login_attempts_per_minute=_int(env, "LOGIN_ATTEMPTS_PER_MINUTE", 10, 1),
            points_base=_int(env, "POINTS_BASE", 60, 0),
            race_top=race_top,
            race_bottom=race_bottom,
            sqlite_synchronous=synchronous,
            sqlite_checkin_writer=checkin_writer == "on",
            checkin_writer_socket=env.get("HONGYI_CHECKIN_WRITER_SOCKET") or None,
            pg_pool_size=_int(env, "PG_POOL_SIZE", 10, 1),
            cors_origins=origins,
            trusted_proxies=proxies,
            pwa_dist=Path(env.get("HONGYI_PWA_DIST") or ROOT / "pwa" / "dist"),
            debug=(env.get("HONGYI_DEBUG") or "").lower() in {"1", "true", "yes"},
        )
