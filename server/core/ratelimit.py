"""Fixed-window counters: in-process for one worker, Redis when REDIS_URL is set (several workers)."""

from __future__ import annotations

import time
from typing import Any


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
    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.from_url(url)

    async def hit(self, key: str, limit: int, window_seconds: int = 60) -> bool:
        now_window = int(time.time()) // window_seconds
        rkey = f"hongyi:rl:{key}:{now_window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            count, _ = await pipe.incr(rkey).expire(rkey, window_seconds * 2).execute()
        return int(count) <= limit

    async def reset(self, key: str) -> None:
        now_window = int(time.time()) // 60
        await self._redis.delete(f"hongyi:rl:{key}:{now_window}")

    async def close(self) -> None:
        await self._redis.aclose()
