#!/usr/bin/env python3
"""All benchmarks in one run, written up as ``docs/benchmarks.md``: figure, ceiling, ratio, target.

Runs, one after another, each as its own process with ``--json-out`` (every script keeps its own
databases, servers, checks and clean-up; see each script's docstring):

=============  ================================================================================
check-in       ``bench_checkin.py``: POST /checkins at c=64 on SQLite and PostgreSQL, and the
               ceiling in the same run: a bare Litestar POST echo (``_echo_app.py``)
naive          ``bench_naive_piccolo.py``: the same load on a naive per-request Piccolo check-in
               (``_naive_piccolo_app.py``) on PostgreSQL — the baseline of "PostgreSQL ≥ 2× naive"
sync           ``bench_sync.py --part sync``: a 500-item offline sync, and its floor in the same
               run: the same rows written with plain bulk inserts (sqlite3 executemany / asyncpg COPY)
leaderboard    ``bench_sync.py --part rank``: top 50 and own rank over 100k members / 5M ledger rows
赛马           ``bench_rankings.py``: leaderboards by period, 赛马 over 500 branches, trend
reports        ``bench_reports.py --db both``: the four xlsx reports for 10k members
=============  ================================================================================

Targets (issue 6): check-in on SQLite ≥ 5,000/s at c=64 with p99 ≤ 50 ms and ≥ 0.5× the echo;
PostgreSQL ≥ 2× the naive path; reports ≤ 3 s each for 10k members. The other benchmarks have no
target; their rows say so. Missing a target is a finding, not an error: the exit code is 0 unless a
benchmark crashed, timed out or failed its own database checks (then 1; the report is still written).

The machine is shared: the report records CPUs, load average before and after, and per benchmark
the share of the CPUs that *other* processes used while it was timed. Run it in a quiet window.

    .venv/bin/python scripts/bench.py                  # full run (tens of minutes) → docs/benchmarks.md
    .venv/bin/python scripts/bench.py --quick          # seconds per benchmark, small data → a temp file
    .venv/bin/python scripts/bench.py --only check-in,naive --db postgres --workers 2
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))
from _bench_common import PG_ADMIN_URL, ensure_venv  # noqa: E402

ensure_venv()
SUITES = ["check-in", "naive", "sync", "leaderboard", "赛马", "reports"]

# Targets of issue 6.
CHECKIN_SQLITE_PER_S = 5000.0
CHECKIN_P99_MS = 50.0
CHECKIN_ECHO_RATIO = 0.5
PG_NAIVE_RATIO = 2.0
REPORT_SECONDS = 3.0
REPORT_MEMBERS = 10_000


@dataclass
class Suite:
    name: str
    script: str
    args: list[str]
    timeout: float
    rc: int | str | None = None  # exit code, or "timeout" / "interrupted"
    seconds: float = 0.0
    data: dict[str, Any] | None = None
    tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.data is not None

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        if self.rc == 0:
            return "crashed (no figures written)"
        if self.rc == 1:
            return "failed its own checks (exit 1)"
        return f"crashed ({self.rc if isinstance(self.rc, str) else f'exit {self.rc}'})"


# --------------------------------------------------------------------------- the plan


def plan(args: argparse.Namespace) -> list[Suite]:
    quick = args.quick
    db = args.db
    engines = ["--db", db]
    long = 900.0 if quick else 3600.0
    load = (["--seconds", "2", "--warmup", "1", "--members", "600", "--activities", "20"] if quick
            else ["--seconds", str(args.seconds), "--warmup", "2"])
    load += ["--concurrency", str(args.concurrency), "--workers", str(args.workers)]
    suites = [
        Suite("check-in", "bench_checkin.py", [*engines, *load, "--echo-workers", str(os.cpu_count() or 2)], long),
        Suite("naive", "bench_naive_piccolo.py", load, long),
        Suite("sync", "bench_sync.py", [*engines, "--part", "sync", *(["--runs", "3", "--http-runs", "1"] if quick else [])],
              long),
        Suite("leaderboard", "bench_sync.py", [*engines, "--part", "rank",
                                               *(["--members", "1000", "--ledger-rows", "50000", "--repeat", "5"]
                                                 if quick else [])], long * 2),
        Suite("赛马", "bench_rankings.py", [*engines, *(["--members", "1000", "--ledger-rows", "50000", "--repeat", "3"]
                                                       if quick else [])], long * 2),
        Suite("reports", "bench_reports.py", [*engines, *(["--members", "600", "--branches", "2", "--meetings", "2",
                                                            "--repeat", "1"] if quick else [])], long),
    ]
    wanted = set(args.only.split(",")) if args.only else set(SUITES)
    if db == "sqlite":
        wanted.discard("naive")  # a PostgreSQL baseline
    return [s for s in suites if s.name in wanted]


# --------------------------------------------------------------------------- running


def run_suite(suite: Suite, workdir: Path) -> None:
    """The script as a child in its own process group, output passed through (and its tail kept),
    figures read back from its ``--json-out`` file. Stopped by its PID on timeout or Ctrl-C: it
    handles SIGTERM like Ctrl-C and stops its own servers and drops its databases."""
    out = workdir / f"{suite.script}-{suite.name}.json".replace(" ", "_")
    cmd = [sys.executable, str(SCRIPTS / suite.script), *suite.args, "--json-out", str(out)]
    print(f"\n=== {suite.name}: {' '.join(cmd[1:])}", flush=True)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"  {line}", end="", flush=True)
            tail.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        suite.rc = proc.wait(timeout=suite.timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        suite.rc = "timeout"
    except KeyboardInterrupt:
        _stop(proc)
        suite.rc = "interrupted"
        raise
    finally:
        reader.join(timeout=5)
        suite.seconds = time.monotonic() - started
        suite.tail = list(tail)
        if out.exists():
            try:
                suite.data = json.loads(out.read_text())
            except ValueError:
                suite.data = None
    print(f"=== {suite.name}: {suite.status} in {suite.seconds:.0f} s", flush=True)


def _stop(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 120.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------- the machine


def machine(before: tuple[float, float, float], after: tuple[float, float, float]) -> dict[str, Any]:
    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    model = ""
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    except OSError:
        pass
    memory = ""
    try:
        kib = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")))
        memory = f"{kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    dirty = [ln[3:] for ln in git("status", "--porcelain", "--untracked-files=no").splitlines() if ln.strip()]
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "memory": memory, "load_before": before, "load_after": after,
        "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "postgres": _pg_version(),
        "commit": git("rev-parse", "--short=12", "HEAD"), "commit_subject": git("log", "-1", "--format=%s"),
        "dirty": dirty, "wrk": bool(_which("wrk")),
    }


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def _pg_version() -> str:
    try:
        import asyncio

        import asyncpg

        async def version() -> str:
            conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        return asyncio.run(version())
    except Exception:  # noqa: BLE001 — only for the report
        return "not reachable"


# --------------------------------------------------------------------------- the report


def _n(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:,.{digits}f}{unit}"


def _ratio(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.2f}×"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("**met**" if ok else "**not met**")


def _share(value: float | None) -> str:
    return "?" if value is None or value != value else f"{value:.0%}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def _failed_checks(targets: list[dict[str, Any]]) -> list[str]:
    return [f"{t['name']} ({t['engine']}): {c['text']}" for t in targets for c in t.get("checks", []) if not c["ok"]]


def _suite_problem(suite: Suite | None) -> list[str]:
    if suite is None:
        return ["Not run (`--only`/`--db` left it out).", ""]
    if suite.data is None:
        lines = [f"**{suite.status}** after {suite.seconds:.0f} s — no figures. Last lines of its output:", "", "```"]
        return lines + suite.tail[-25:] + ["```", ""]
    if not suite.ok:
        return [f"**{suite.status}** — figures below are from that run; see the failed checks.", ""]
    return []


def checkin_section(checkin: Suite | None, naive: Suite | None) -> tuple[list[str], list[tuple[str, bool | None, str]]]:
    lines = ["## Check-in (`bench_checkin.py`, `bench_naive_piccolo.py`)", ""]
    verdicts: list[tuple[str, bool | None, str]] = []
    lines += _suite_problem(checkin)
    if checkin is None:
        return lines, []
    if checkin.data is None:
        return lines, [("check-in targets", None, checkin.status)]
    d = checkin.data
    targets = d["targets"]
    echo = {t["workers"]: t for t in targets if t["name"].startswith("echo")}
    real = {t["engine"]: t for t in targets if t["name"] == "check-in"}
    naive_t = naive.data["targets"][0] if naive is not None and naive.data else None
    lines.append(f"`POST /api/v1/checkins`, {d['seconds']:g} s per target at concurrency {d['concurrency']}, "
                 f"{d['members']:,} members × {d['activities']} open activities, every request a distinct accepted "
                 f"check-in; load generator: "
                 f"{'wrk' if targets[0]['tool'] == 'wrk' else 'the asyncio client in scripts/bench_checkin.py'}. Ceiling: a bare Litestar app with one POST route "
                 "decoding the same body (`scripts/_echo_app.py`), same uvicorn settings, same run. Baseline on PostgreSQL: "
                 "the same check-in written the straightforward way (`scripts/_naive_piccolo_app.py`: an ordinary "
                 "Litestar route, one Piccolo query per step — 18 statements a check-in, more when a tally row is new, against the real server's 8 —, "
                 "no caches, Piccolo's own connection pool), on the same schema, data, load and database checks.")
    lines.append("")
    rows = []
    if "sqlite" in real:
        t = real["sqlite"]
        ceiling = echo.get(t["workers"], {}).get("rps")
        if d.get("sqlite_writer") and echo:
            # The check-in writer is a second process: the server uses every core, so the ceiling to
            # compare with is the echo on every core too (the one-worker ratio is listed as well).
            same = ceiling
            ceiling = echo[max(echo)].get("rps")
            rows.append(["SQLite ÷ echo with the same workers (the writer aside)",
                         _ratio(t["ok_rps"] / same if same else None), f"echo {_n(same, ' req/s')}", "—", "—", "—",
                         _share(t["other_load"])])
        ratio = t["ok_rps"] / ceiling if ceiling else None
        ok_rate = t["ok_rps"] >= CHECKIN_SQLITE_PER_S
        ok_p99 = t["p99_ms"] is not None and t["p99_ms"] <= CHECKIN_P99_MS
        ok_ratio = ratio is not None and ratio >= CHECKIN_ECHO_RATIO
        other = _share(t["other_load"])
        rows.append(["SQLite check-ins/s", _n(t["ok_rps"], "/s"), f"echo {_n(ceiling, ' req/s')}", _ratio(ratio),
                     f"≥ {CHECKIN_SQLITE_PER_S:,.0f}/s", _met(ok_rate), other])
        rows.append(["SQLite p99 latency", _n(t["p99_ms"], " ms", 1), "—", "—", f"≤ {CHECKIN_P99_MS:.0f} ms",
                     _met(ok_p99), other])
        rows.append(["SQLite ÷ echo", _ratio(ratio), f"echo {_n(ceiling, ' req/s')}", _ratio(ratio),
                     f"≥ {CHECKIN_ECHO_RATIO}×", _met(ok_ratio), other])
        rows.append(["SQLite p50 latency", _n(t["p50_ms"], " ms", 1), "—", "—", "—", "—", other])
        verdicts += [("check-in SQLite ≥ 5,000/s", ok_rate, _n(t["ok_rps"], "/s")),
                     ("check-in SQLite p99 ≤ 50 ms", ok_p99, _n(t["p99_ms"], " ms", 1)),
                     ("check-in SQLite ≥ 0.5× echo", ok_ratio, _ratio(ratio))]
    if "postgres" in real:
        t = real["postgres"]
        ceiling = echo.get(t["workers"], {}).get("rps")
        other = _share(t["other_load"])
        rows.append([f"PostgreSQL check-ins/s ({t['workers']} worker(s))", _n(t["ok_rps"], "/s"),
                     f"echo {_n(ceiling, ' req/s')}", _ratio(t["ok_rps"] / ceiling if ceiling else None), "—", "—", other])
        rows.append(["PostgreSQL p50 / p99", f"{_n(t['p50_ms'], ' ms', 1)} / {_n(t['p99_ms'], ' ms', 1)}", "—", "—", "—",
                     "—", other])
        if naive_t is not None:
            ratio = t["ok_rps"] / naive_t["ok_rps"] if naive_t["ok_rps"] else None
            ok = ratio is not None and ratio >= PG_NAIVE_RATIO
            rows.append(["PostgreSQL ÷ naive Piccolo path", _ratio(ratio),
                         f"naive {_n(naive_t['ok_rps'], '/s')} (p99 {_n(naive_t['p99_ms'], ' ms', 0)})", _ratio(ratio),
                         f"≥ {PG_NAIVE_RATIO:.0f}×", _met(ok), _share(naive_t["other_load"])])
            verdicts.append(("check-in PostgreSQL ≥ 2× naive Piccolo", ok, _ratio(ratio)))
        else:
            rows.append(["PostgreSQL ÷ naive Piccolo path", "—", "naive: " + (naive.status if naive else "not run"), "—",
                         f"≥ {PG_NAIVE_RATIO:.0f}×", _met(None), "?"])
            verdicts.append(("check-in PostgreSQL ≥ 2× naive Piccolo", None, "no baseline"))
    for workers, t in sorted(echo.items()):
        rows.append([f"ceiling: bare Litestar echo ({workers} worker(s))", _n(t["rps"], " req/s"), "—", "—", "—", "—",
                     _share(t["other_load"])])
    lines += _table(["measure", "figure", "ceiling / baseline", "ratio", "target", "met?", "other load"], rows)
    lines.append("")
    for engine, t in real.items():
        busy = [p for p in t.get("server_cpu") or [] if p["running"] >= 0.01]
        if busy:
            lines.append(f"Server processes during the {'SQLite' if engine == 'sqlite' else 'PostgreSQL'} load, as a share "
                         "of one core running / waiting for a CPU (`/proc/<pid>/schedstat`; the process near 100 % "
                         "running sets the rate): "
                         + ", ".join(f"{p['process']} {p['running']:.0%} / {p['waiting']:.0%}" for p in busy) + ".")
            lines.append("")
    if naive is not None:
        lines += _suite_problem(naive)
    failed = _failed_checks(targets) + (_failed_checks(naive.data["targets"]) if naive and naive.data else [])
    checked = len(real) + (1 if naive_t else 0)
    lines.append("Database checks after the load (every body replayed once; exactly one check-in, attempt and ledger "
                 "entry each; root tally = ledger): "
                 + ("all passed." if not failed else "**FAILED**: " + "; ".join(failed)) + f" ({checked} target(s))")
    lines.append("")
    return lines, verdicts


def _rows_by(data: dict[str, Any], key: str, engine: str) -> dict[str, Any] | None:
    return next((r for r in data["rows"] if r.get("key") == key and r["engine"] == engine), None)


def sync_section(suite: Suite | None) -> list[str]:
    lines = ["## Offline sync, 500 items (`bench_sync.py --part sync`)", ""]
    lines += _suite_problem(suite)
    if suite is None or suite.data is None:
        return lines
    d = suite.data
    lines.append(f"One member's batch of {d['items']} distinct valid items (500 open activities), processed in-process "
                 "(`CheckinProcessor.process`, median of runs with a fresh member each; the first run also pays the "
                 "Ed25519 checks of 500 new codes), and through the whole app over ASGI. Floor, same run and database: "
                 "the same rows (check-ins, attempts, ledger entries, year and period tally) written with nothing but "
                 "bulk inserts in one transaction — plain sqlite3 `executemany` on SQLite, asyncpg `COPY` on "
                 "PostgreSQL.")
    lines.append("")
    rows = []
    for engine in ("sqlite", "postgres"):
        sync, http, floor = (_rows_by(d, k, engine) for k in ("sync", "sync_http", "sync_floor"))
        if sync is None:
            continue
        other = _share(d.get("other_load", {}).get(f"sync {engine}"))
        ratio = sync["median_ms"] / floor["median_ms"] if floor and floor["median_ms"] else None
        rows.append([f"{engine}: sync in-process", _n(sync["median_ms"], " ms", 1),
                     f"floor {_n(floor['median_ms'] if floor else None, ' ms', 1)}", _ratio(ratio), "— (none set)", "—",
                     other])
        if http is not None:
            rows.append([f"{engine}: sync over HTTP (ASGI)", _n(http["median_ms"], " ms", 1), "—", "—", "— (none set)",
                         "—", other])
        rows.append([f"{engine}: first run (cold token cache)", _n(sync["first_ms"], " ms", 1), "—", "—", "—", "—", other])
    lines += _table(["measure", "figure", "ceiling (floor)", "sync ÷ floor", "target", "met?", "other load"], rows)
    lines += ["", "Database check: " + "; ".join(n for n in d["notes"] if "check" in n), ""]
    return lines


def query_section(title: str, suite: Suite | None, intro: str) -> list[str]:
    lines = [title, ""]
    lines += _suite_problem(suite)
    if suite is None or suite.data is None:
        return lines
    d = suite.data
    lines += [intro.format(**d), ""]
    rows = [[r["what"], r["engine"], _n(r["median_ms"], " ms", 2), _n(r["p90_ms"], " ms", 2), _n(r["first_ms"], " ms", 2),
             "—", "— (none set)", "—", r["note"]] for r in d["rows"]]
    lines += _table(["query", "db", "median", "p90", "first", "ceiling", "target", "met?", "note"], rows)
    lines += [""] + [f"- {n}" for n in d["notes"]] + [""]
    return lines


def reports_section(suite: Suite | None, quick: bool) -> tuple[list[str], list[tuple[str, bool | None, str]]]:
    lines = ["## Reports (`bench_reports.py`)", ""]
    lines += _suite_problem(suite)
    if suite is None:
        return lines, []
    if suite.data is None:
        return lines, [("reports ≤ 3 s", None, suite.status)]
    d = suite.data
    applies = d["members"] >= REPORT_MEMBERS
    lines.append(f"Each xlsx report for the street root over a year: {d['members']:,} members, {d['meetings']} required "
                 f"meetings per branch, volunteer hours, pairings and visits; median of {d['repeat']} run(s), then one "
                 "run under tracemalloc for the peak of Python allocations."
                 + ("" if applies else f" The ≤ {REPORT_SECONDS:g} s target is for {REPORT_MEMBERS:,} members: not "
                                       "judged at this size."))
    lines.append("")
    rows = []
    slow = []
    for r in d["rows"]:
        ok = r["max_s"] <= REPORT_SECONDS if applies else None
        if ok is False:
            slow.append(f"{r['report']} ({r['engine']}) {r['max_s']:.2f} s")
        rows.append([r["report"], r["engine"], _n(r["median_s"], " s", 2), _n(r["max_s"], " s", 2),
                     _n(r["tracemalloc_peak_mib"], " MiB", 1), _n(r["ru_maxrss_mib"], " MiB"), "—",
                     f"≤ {REPORT_SECONDS:g} s", _met(ok), _share(d.get("other_load", {}).get(f"reports {r['engine']}"))])
    slowest = max((r["max_s"] for r in d["rows"]), default=float("nan"))
    verdicts = [(f"every report ≤ {REPORT_SECONDS:g} s at {REPORT_MEMBERS:,} members", (not slow) if applies else None,
                 (f"slowest {slowest:.2f} s" if not slow else "over: " + ", ".join(slow)) if applies
                 else f"not judged at {d['members']:,} members")]
    lines += _table(["report", "db", "median", "max", "peak Python memory", "process max RSS", "ceiling", "target",
                     "met?", "other load"], rows)
    lines.append("")
    return lines, verdicts


def render(suites: list[Suite], meta: dict[str, Any], quick: bool, started: datetime, finished: datetime) -> str:
    by = {s.name: s for s in suites}
    lines = ["# Benchmarks", ""]
    if quick:
        lines += ["> **Quick run** (`scripts/bench.py --quick`): seconds per benchmark on small data, to check that the "
                  "suite works. These figures are not the project's figures; run `scripts/bench.py` without `--quick`.", ""]
    lines += [f"Written by `scripts/bench.py{' --quick' if quick else ''}`. Every figure comes from this one run; ratios "
              "are taken against ceilings measured in the same run on the same machine.", ""]
    checkin_lines, verdicts = checkin_section(by.get("check-in"), by.get("naive"))
    report_lines, report_verdicts = reports_section(by.get("reports"), quick)
    verdicts += report_verdicts
    lines += ["## Summary", ""]
    rows = [[name, _met(ok), figure] for name, ok, figure in verdicts]
    rows += [[f"{s.name} benchmark", s.status, f"{s.seconds:.0f} s"] for s in suites]
    lines += _table(["target / benchmark", "result", "figure"], rows)
    lines.append("")
    cpus = meta["cpus"]
    lb, la = meta["load_before"], meta["load_after"]
    others = {}
    for s in suites:
        if s.data is None:
            continue
        for t in s.data.get("targets", []):
            others[f"{s.name}: {t['name']} {t['engine']}"] = t.get("other_load")
        for k, v in s.data.get("other_load", {}).items():
            others[f"{s.name}: {k}"] = v
    measured = [v for v in others.values() if v is not None]
    lines += ["## Machine and run", ""]
    lines += _table(["", ""], [
        ["date", f"{started.astimezone().strftime('%Y-%m-%d %H:%M %Z')} → {finished.astimezone().strftime('%H:%M %Z')}"
                 f" ({(finished - started).total_seconds() / 60:.0f} min)"],
        ["git commit", f"`{meta['commit']}` {meta['commit_subject']}"
                       + (f" (+ uncommitted changes in {len(meta['dirty'])} file(s))" if meta["dirty"] else "")],
        ["CPUs", f"{cpus} × {meta['cpu_model'] or '?'}, {meta['memory']} memory"],
        ["load average (1/5/15 min)", f"before {lb[0]:.2f} / {lb[1]:.2f} / {lb[2]:.2f}; after {la[0]:.2f} / {la[1]:.2f} /"
                                      f" {la[2]:.2f} (includes the benchmarks themselves)"],
        ["other load while timing", (f"max {max(measured):.0%}, mean {sum(measured) / len(measured):.0%} of all CPUs "
                                     "(per benchmark in the tables)") if measured else "not measured"],
        ["software", f"Python {meta['python']}, SQLite {meta['sqlite']}, PostgreSQL {meta['postgres']}, load generator "
                     f"{'wrk' if meta['wrk'] else 'the asyncio client (no wrk installed)'}"],
    ])
    if measured and max(measured) > 0.05:
        lines += ["", f"**Other processes used up to {max(measured):.0%} of the CPUs while benchmarks were timed**: "
                  "the absolute figures of this run are low; ratios to the ceilings measured alongside hold up better."]
    lines += ["", "*Other load*: the share of all CPUs used while a benchmark was timed by processes that are not "
              "part of it (other sessions' tests, builds, their PostgreSQL backends). Above a few percent the "
              "figures are low; compare ratios from the same run rather than absolute numbers across runs.", ""]
    lines += checkin_lines
    lines += sync_section(by.get("sync"))
    lines += query_section(
        "## Leaderboard and own rank (`bench_sync.py --part rank`)", by.get("leaderboard"),
        "`points.leaderboard` (top 50) and `points.rank_in_org` for the year, {members:,} members over 500 branches, "
        "{ledger_rows:,} ledger rows; median / p90 of repeated calls. No ceiling or target is set for these.")
    lines += query_section(
        "## Rankings by period and 赛马 (`bench_rankings.py`)", by.get("赛马"),
        "Leaderboards by year / quarter / month, rank of the median member, 支部赛马 over 500 branches and the "
        "12-month trend; {members:,} members, {ledger_rows:,} ledger rows, median / p90 of {repeat} calls. No ceiling "
        "or target is set for these.")
    lines += report_lines
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short loads, small data (validates the suite in minutes)")
    parser.add_argument("--out", type=Path, help="markdown file (default docs/benchmarks.md; with --quick a temp file)")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--only", help=f"comma-separated subset of: {','.join(SUITES)}")
    parser.add_argument("--seconds", type=float, default=10.0, help="check-in load per target (default 10)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers on PostgreSQL (real and naive alike)")
    args = parser.parse_args()
    if args.only and not set(args.only.split(",")) <= set(SUITES):
        parser.error(f"--only takes names from: {', '.join(SUITES)}")
    out = args.out or (Path(tempfile.gettempdir()) / "hongyi-benchmarks-quick.md" if args.quick
                       else ROOT / "docs" / "benchmarks.md")
    suites = plan(args)
    before = os.getloadavg()
    started = datetime.now(timezone.utc)
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="hongyi-bench-") as workdir:
        for suite in suites:
            try:
                run_suite(suite, Path(workdir))
            except KeyboardInterrupt:
                interrupted = True
                break
    finished = datetime.now(timezone.utc)
    meta = machine(before, os.getloadavg())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(suites, meta, args.quick, started, finished))
    print(f"\nwrote {out}")
    for suite in suites:
        print(f"  {suite.name:12} {suite.status} ({suite.seconds:.0f} s)")
    if interrupted:
        return 130
    return 0 if all(s.ok for s in suites) else 1


if __name__ == "__main__":
    sys.exit(main())
