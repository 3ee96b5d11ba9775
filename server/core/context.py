"""What every service needs, built once at start-up and kept on ``app.state.ctx``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import State
from litestar.di import NamedDependency

from server.core.db import Database
from server.keys.tokens import TokenService
from server.settings import Settings


@dataclass
class Context:
    settings: Settings
    db: Database
    tokens: TokenService
    limiter: Any
    caches: dict[str, Any] = field(default_factory=dict)


def provide_ctx(state: State) -> Context:
    return state.ctx


Ctx = NamedDependency[Context]
