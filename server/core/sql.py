"""Small helpers for hand-written SQL that runs on both engines."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

ORG_PATH = re.compile(r"/(?:[0-9]{1,18}/)*")  # an org's materialised path, e.g. "/1/5/12/"


class Where:
    """Collects ``AND``-ed conditions with ``$n`` placeholders numbered in order."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, condition: str, *values: Any) -> "Where":
        """``condition`` uses ``{}`` for each value, e.g. ``add("m.org_id = {}", 5)``."""
        self.parts.append(condition.format(*(self.arg(v) for v in values)))
        return self

    def prefix_any(self, column: str, prefixes: tuple[str, ...] | list[str]) -> "Where":
        """``column`` starts with one of ``prefixes`` (org subtree paths); nothing matches if empty.

        A path (digits and slashes only, checked) is written into the SQL as a literal: PostgreSQL
        re-uses a prepared statement's generic plan, and a ``LIKE $1`` there is estimated at a few
        rows — for a whole street it then loops over every member once per page of a report."""
        if not prefixes:
            self.parts.append("1 = 0")
        else:
            self.parts.append("(" + " OR ".join(f"{column} LIKE {self._pattern(p)}" for p in prefixes) + ")")
        return self

    def _pattern(self, prefix: str) -> str:
        return f"'{prefix}%'" if ORG_PATH.fullmatch(prefix) else self.arg(prefix + "%")

    def any_of(self, column: str, values: tuple[Any, ...] | list[Any]) -> "Where":
        if not values:
            self.parts.append("1 = 0")
        else:
            self.parts.append(f"{column} IN (" + ", ".join(self.arg(v) for v in values) + ")")
        return self

    def either(self, *builders: "Where") -> "Where":
        """OR of sub-conditions built with ``sub()``."""
        alternatives = [" AND ".join(b.parts) or "1 = 1" for b in builders]
        self.parts.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")")
        return self

    def sub(self) -> "Where":
        """A Where sharing this one's argument list (for ``either``)."""
        child = Where()
        child.args = self.args
        return child

    @property
    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "1 = 1"


@lru_cache(maxsize=256)
def placeholders(count: int, first: int = 1) -> str:
    """``$1, $2, …`` for an ``IN (…)`` list of ``count`` values."""
    return ", ".join(f"${n}" for n in range(first, first + count))


@lru_cache(maxsize=4096)
def path_ids(path: str) -> tuple[int, ...]:
    """'/1/5/12/' → (1, 5, 12): the org and all its ancestors (a street has few paths: remembered)."""
    return tuple(int(p) for p in path.strip("/").split("/") if p)
