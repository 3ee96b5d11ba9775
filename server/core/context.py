"""What every service needs, built once at start-up and kept on ``app.state.ctx``."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import State
from litestar.di import NamedDependency

from server.core import engines
from server.core.db import Database, DatabaseUnavailable, create_database
from server.keys.keyring import KeyRing
from server.keys.tokens import TokenService
from server.settings import Settings


@dataclass
class Context:
    settings: Settings
    db: Database
    tokens: TokenService
    limiter: Any
    caches: dict[str, Any] = field(default_factory=dict)
    checkin_writer: Any = None  # server.checkins.writer.WriterClient, when serve started the writer process


# Young-generation collections every 100k allocations instead of 700: each request allocates
# hundreds of short-lived objects, and frequent collections showed up as p99 latency.
GC_THRESHOLDS = (100_000, 50, 100)


@asynccontextmanager
async def open_context(settings: Settings, *, serving: bool = False) -> AsyncIterator[Context]:
    """The services of one process, for as long as the block runs. ``serving``: a long-lived server
    process (the web app, the check-in writer) — logins throttled through Redis when configured,
    a database that cannot take writes tolerated (reads are served, writes answer 503), and the
    garbage collector set for many short requests."""
    from server.core.ratelimit import MemoryLimiter, RedisLimiter
    from server.points import services as points

    db = create_database(settings)
    await db.start()
    engines.attach(db)
    keyring = KeyRing.load_or_create(settings.key_file)
    limiter = RedisLimiter(settings.redis_url) if serving and settings.redis_url else MemoryLimiter()
    ctx = Context(settings=settings, db=db, tokens=TokenService(keyring, settings.public_base_url), limiter=limiter)
    try:
        try:
            await points.ensure_default_rules(ctx)
        except DatabaseUnavailable as exc:
            if not serving:
                raise
            # A read-only or full database (a restored backup owned by someone else, a volume mounted
            # read-only): serve the reads; every write answers 503 until it is fixed.
            logging.getLogger("hongyi").warning("database not writable, serving reads only: %s", exc)
        if serving:
            # Everything alive now lives as long as the process: keep it out of the cyclic GC's
            # full collections, which otherwise walk it every time (latency spikes under load).
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
        yield ctx
    finally:
        await limiter.close()
        await db.close()


def provide_ctx(state: State) -> Context:
    return state.ctx


Ctx = NamedDependency[Context]
