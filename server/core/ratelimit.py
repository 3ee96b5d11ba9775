"""Fixed-window counters: in-process for one worker, Redis when REDIS_URL is set (several workers)."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("hongyi.ratelimit")


class MemoryLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    async def hit(self, key: str, limit: int, window_seconds: int = 60) -> bool:
        """Count one attempt; False when the key is over its limit in this window."""
        now_window = int(time.time()) // window_seconds
        window, count = self._windows.get(key, (now_window, 0))
        if window != now_window:
            window, count = now_window, 0
        count += 1
        self._windows[key] = (window, count)
        if len(self._windows) > 100_000:  # drop stale windows
            self._windows = {k: v for k, v in self._windows.items() if v[0] == now_window}
        return count <= limit

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)

    async def close(self) -> None:
        pass


class RedisLimiter:
    """Counters shared by every worker. While Redis cannot be reached each worker counts on its own
    (a warning is logged once a minute): logins keep working and stay throttled, per worker."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self._fallback = MemoryLimiter()
        self._warned_at = 0.0

    def _unreachable(self, exc: Exception) -> None:
        now = time.time()
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning("Redis unreachable (%s): login throttling counts per worker until it is back", type(exc).__name__)

    async def hit(self, key: str, limit: int, window_seconds: int = 60) -> bool:
        from redis.exceptions import RedisError

        now_window = int(time.time()) // window_seconds
        rkey = f"hongyi:rl:{key}:{now_window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                count, _ = await pipe.incr(rkey).expire(rkey, window_seconds * 2).execute()
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            return await self._fallback.hit(key, limit, window_seconds)
        return int(count) <= limit

    async def reset(self, key: str) -> None:
        from redis.exceptions import RedisError

        await self._fallback.reset(key)
        now_window = int(time.time()) // 60
        try:
            await self._redis.delete(f"hongyi:rl:{key}:{now_window}")
        except (RedisError, OSError) as exc:
            self._unreachable(exc)

    async def close(self) -> None:
        await self._redis.aclose()
