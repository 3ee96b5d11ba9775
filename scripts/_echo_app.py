"""The "framework ceiling" for ``bench_checkin.py``: bare Litestar, one POST route, no database.

It decodes the same JSON body a check-in carries into a small msgspec Struct and returns it, so the
difference to the real check-in endpoint is our code (auth, rules, SQL), not HTTP parsing or JSON.
Served by ``bench_checkin.py`` with the same uvicorn settings as ``python -m server serve``
(uvloop, httptools, no access log, no proxy headers, no server header).
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Litestar, get, post


class CheckinEcho(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    client_uuid: str
    token: str
    scanned_at: datetime
    kind: str = "in"


@post("/echo", status_code=200)
async def echo(data: CheckinEcho) -> CheckinEcho:
    return data


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[echo, health])
