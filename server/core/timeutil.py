from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """Aware datetimes only: a time without an offset is ambiguous for an offline phone."""
    if value.tzinfo is None:
        raise ValueError("datetime without offset")
    return value.astimezone(UTC)


def local_date(value: datetime, tz: ZoneInfo) -> date:
    return value.astimezone(tz).date()


def aware(value: datetime | None) -> datetime | None:
    """SQLite rows come back aware via Piccolo's converter; make sure (defensive for raw rows)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
