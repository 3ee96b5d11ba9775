"""Schemathesis against the app's own OpenAPI document, in-process (shared by tests/test_fuzz.py and scripts/fuzz.py).

Cases come from schemathesis' Hypothesis strategies for every operation of ``/schema/openapi.json``,
positive (data that fits the schema) and negative (data that does not), each sent as one of the
fuzz identities — anonymous, a member, station staff and the street admin. Hypothesis runs in a
worker thread and hands every request to the event loop that owns the app (its database pool is
bound to that loop), so the app runs exactly as under the tests' ``world`` fixture.

Each response goes through schemathesis' own checks (no 5xx, status code documented, content type
and body as declared, negative data rejected) plus ours: every error body carries a stable ``code``
and a Chinese ``detail``. Failures are collected, never raised mid-run, so one run reports all of
them.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

ROLES = ("anon", "member", "staff", "admin")
BASE_URL = "http://testserver"
KNOWN_IDS = (1, 2, 3)
# Demo-street logins (server/seed.py) that the fuzz identities use.
PHONES = {"member": "13900000001", "staff": "13800000001", "admin": "13800000000"}

# Whole operations left out (none so far: access tokens are stateless, so even logout cannot end the run).
EXCLUDED: dict[tuple[str, str], str] = {}


@dataclass
class Identities:
    """Access tokens for the fuzz identities, and what must not be taken away from them mid-run."""

    tokens: dict[str, str | None]
    member_id: int
    grant_ids: frozenset[int]

    def spares(self, case: Any) -> bool:
        """False for the few cases that would switch a fuzz identity off for the rest of the run:
        changing the fuzz member's status (转出/历史 disables the login) or revoking a fuzz user's
        role grant. Those paths are tested in test_admin_api / test_grants."""
        path = case.operation.path
        method = case.method.upper()
        params = case.path_parameters or {}
        if method == "PATCH" and path == "/api/v1/members/{member_id}":
            return not (params.get("member_id") == self.member_id and isinstance(case.body, dict) and "status" in case.body)
        if method == "DELETE" and path == "/api/v1/grants/{grant_id}":
            return params.get("grant_id") not in self.grant_ids
        return True


async def prepare_identities(ctx: Any, minutes: int = 60) -> Identities:
    tokens: dict[str, str | None] = {"anon": None}
    user_ids = []
    for role, phone in PHONES.items():
        user_id = int(await ctx.db.fetchval("SELECT id FROM users WHERE phone = $1", phone))
        user_ids.append(user_id)
        tokens[role], _ = ctx.tokens.access_token(user_id, minutes)
    member_id = int(await ctx.db.fetchval("SELECT member_id FROM users WHERE phone = $1", PHONES["member"]))
    grants = await ctx.db.fetch(
        f"SELECT id FROM role_grants WHERE user_id IN ({', '.join(str(u) for u in user_ids)})"
    )
    return Identities(tokens=tokens, member_id=member_id, grant_ids=frozenset(int(row[0]) for row in grants))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def has_chinese(text: object) -> bool:
    return isinstance(text, str) and any("\u4e00" <= ch <= "\u9fff" for ch in text)


def error_body_problem(response: httpx.Response) -> str | None:
    """Every 4xx/5xx answer is ``{"status_code", "code", "detail"}`` with a Chinese ``detail`` (a rejected
    check-in's 422 is its result instead: ``reason`` + Chinese ``message``, as the schema documents)."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"error body is not JSON: {response.text[:200]!r}"
    if not isinstance(body, dict):
        return f"error body is not an object: {body!r:.200}"
    if body.get("status") == "rejected" and "reason" in body:  # a rejected check-in: its documented 422 result
        ok = isinstance(body["reason"], str) and body["reason"] and has_chinese(body.get("message"))
        return None if ok else f"rejected check-in without reason / Chinese message: {body!r:.300}"
    if not isinstance(body.get("code"), str) or not body["code"]:
        return f"error body has no code: {body!r:.300}"
    if not has_chinese(body.get("detail")):
        return f"error detail is not Chinese: {body!r:.300}"
    if body.get("status_code") != response.status_code:
        return f"error body status_code {body.get('status_code')!r} != {response.status_code}"
    return None


@dataclass
class Finding:
    check: str
    operation: str
    role: str
    mode: str
    status: int
    message: str
    request: str


@dataclass
class FuzzReport:
    cases: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    by_role: Counter[str] = field(default_factory=Counter)
    by_mode: Counter[str] = field(default_factory=Counter)
    operations: int = 0
    spared: int = 0  # cases not sent: they would have switched a fuzz identity off
    succeeded: Counter[str] = field(default_factory=Counter)  # 2xx answers per operation
    fuzzed: set[str] = field(default_factory=set)
    swept: set[str] = field(default_factory=set)  # operations whose first case went out as every identity
    excluded: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def failures_by_check(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for finding in self.findings:
            counts[finding.check] += 1
        return dict(sorted(counts.items()))

    def distinct(self) -> dict[tuple[str, str, int], Finding]:
        """One finding per (check, operation, status): what a person has to look at."""
        seen: dict[tuple[str, str, int], Finding] = {}
        for finding in self.findings:
            seen.setdefault((finding.check, finding.operation, finding.status), finding)
        return seen

    def summary(self) -> str:
        classes = Counter(f"{status // 100}xx" for status in self.statuses.elements())
        lines = [
            f"operations fuzzed: {self.operations} (excluded: {', '.join(self.excluded) or 'none'}); "
            f"cases not sent to spare the fuzz identities: {self.spared}",
            f"cases: {self.cases} in {self.seconds:.1f} s ({self.cases / max(self.seconds, 1e-9):.0f}/s)",
            "  by identity: " + ", ".join(f"{role} {self.by_role[role]}" for role in ROLES),
            "  by mode: " + ", ".join(f"{mode} {n}" for mode, n in sorted(self.by_mode.items())),
            "  responses: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())),
            f"  operations with a 2xx answer: {len(self.succeeded)} of {len(self.fuzzed)}"
            + (f" (none: {', '.join(sorted(self.fuzzed - set(self.succeeded)))})" if self.fuzzed - set(self.succeeded) else ""),
            f"5xx responses: {self.server_errors}",
            "failures by check: " + (", ".join(f"{k} {v}" for k, v in self.failures_by_check.items()) or "none"),
        ]
        for (check, operation, status), finding in sorted(self.distinct().items()):
            lines.append(f"  [{check}] {operation} -> {status} as {finding.role} ({finding.mode}): "
                         f"{finding.message.splitlines()[0][:240]}")
            lines.append(f"      {finding.request[:400]}")
        return "\n".join(lines)


def load_schema(app: Any) -> Any:
    """The app's own OpenAPI document, exactly what ``/schema/openapi.json`` serves."""
    raw = app.openapi_schema.to_schema()
    return schemathesis.openapi.from_dict(raw, config=schemathesis.Config())


def _request_kwargs(case: Any, token: str | None) -> dict[str, Any]:
    """schemathesis' requests-style keyword arguments, as an httpx request."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "user-agent"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    out: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "params": kwargs.get("params") or None,
        "headers": headers,
    }
    if kwargs.get("cookies"):
        out["cookies"] = kwargs["cookies"]
    if "json" in kwargs:
        out["json"] = kwargs["json"]
    elif "data" in kwargs:
        data = kwargs["data"]
        if isinstance(data, (bytes, str)):
            out["content"] = data
        else:
            out["data"] = data
    if kwargs.get("files"):
        out["files"] = kwargs["files"]
    return out


def _describe(kwargs: dict[str, Any]) -> str:
    body = kwargs.get("json", kwargs.get("content", kwargs.get("data")))
    query = f" params={kwargs['params']!r}" if kwargs.get("params") else ""
    return f"{kwargs['method']} {kwargs['url']}{query}" + (f" body={body!r}" if body is not None else "")


def run_fuzz(
    app: Any,
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    identities: Identities,
    *,
    examples_per_operation: int,
    seed: int = 20_240_601,
    only: Sequence[str] = (),
    report: FuzzReport | None = None,
) -> FuzzReport:
    """Runs in a worker thread; every request is awaited on ``loop`` (the app's own).
    Pass ``report`` to add another pass (another seed) to an earlier one."""
    schema = load_schema(app)
    report = report if report is not None else FuzzReport()
    report.operations = 0
    report.excluded.clear()
    started = time.perf_counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        key = (operation.method.upper(), operation.path)
        if key in EXCLUDED:
            report.excluded.append(f"{key[0]} {key[1]}")
            continue
        if only and not any(part in operation.path for part in only):
            continue
        report.operations += 1
        _fuzz_operation(operation, loop, client, identities, report, examples_per_operation, seed)
    report.seconds += time.perf_counter() - started
    return report


def _fuzz_operation(
    operation: Any,
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    identities: Identities,
    report: FuzzReport,
    examples: int,
    seed: int,
) -> None:
    strategies = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    try:
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    except Exception:  # noqa: BLE001 — an operation without inputs has no negative form
        pass
    # Random ids almost never exist; the demo street's first few ids do, so some cases get past the
    # lookup and into the service (the same generated query and body otherwise).
    id_names = [p.name for p in operation.path_parameters if p.name.endswith("_id")]
    if id_names:
        strategies.extend(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=dict.fromkeys(id_names, known))
            for known in KNOWN_IDS
        )
    label = f"{operation.method.upper()} {operation.path}"
    report.fuzzed.add(label)

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    # A fixed seed per operation: reproducible runs, and adding an endpoint reshuffles no other one.
    @hypothesis_seed(seed ^ zlib.crc32(label.encode()))
    @given(case=st.one_of(*strategies))
    def one_case(case: Any) -> None:
        if not identities.spares(case):
            report.spared += 1
            return
        if label not in report.swept:  # the first case goes out as every identity (some operations have one case)
            report.swept.add(label)
            roles: Sequence[str] = ROLES
        else:
            roles = [ROLES[(report.cases + report.spared) % len(ROLES)]]  # then in turn
        for role in roles:
            _send(case, role, label, loop, client, identities, report)

    one_case()


def _send(
    case: Any, role: str, label: str, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient,
    identities: Identities, report: FuzzReport,
) -> None:
    kwargs = _request_kwargs(case, identities.tokens[role])
    mode = case.meta.generation.mode.value if case.meta is not None else "positive"
    report.cases += 1
    report.by_role[role] += 1
    report.by_mode[mode] += 1
    try:
        response = asyncio.run_coroutine_threadsafe(client.request(**kwargs), loop).result(timeout=120)
    except Exception as exc:  # noqa: BLE001 — an exception escaping the app counts as a server error (599)
        report.statuses[599] += 1
        report.findings.append(Finding("app_raised", label, role, mode, 599, repr(exc), _describe(kwargs)))
        return
    report.statuses[response.status_code] += 1
    if 200 <= response.status_code < 300:
        report.succeeded[label] += 1
    failures: list[Failure] = []
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:
        failures.extend(group.exceptions)
    except Failure as failure:
        failures.append(failure)
    for failure in failures:
        report.findings.append(Finding(_check_name(failure), label, role, mode, response.status_code,
                                       f"{failure.title}: {failure.message}", _describe(kwargs)))
    problem = error_body_problem(response)
    if problem:
        report.findings.append(Finding("error_body", label, role, mode, response.status_code, problem, _describe(kwargs)))


def _check_name(failure: Failure) -> str:
    checks = getattr(failure, "checks", ()) or ()
    return checks[0] if checks else type(failure).__name__
