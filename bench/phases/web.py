"""The web phase: POST /api/orders/ through gunicorn, ours and the naive baseline's, in turn.

Each server is loaded by a closed loop (the Python load generator, and wrk
when it is installed) and an open loop at a set rate, from a fresh database,
with no app workers running. Ours is also loaded by the Python closed loop
with an Idempotency-Key on each request, right after the one without, for
the key's cost as a ratio of the two.
"""

from __future__ import annotations

import resource
import secrets
import shutil
import time
from pathlib import Path

from .. import procs
from ..broker import purge_queues
from ..cli import ROOT, Options
from ..cpu import cpu_summary, meter_for
from ..environment import SCENARIO_ENV, child_env, fresh
from ..profiling import spy_on, stop_spies
from ..report import fmt

# The web phase's servers: ours, and the naive baseline's when it is benchmarked.
WEB_SCENARIOS = {"ours": "web", "naive": "web_naive"}
# wrk (Debian's package), when installed: a load generator in C that takes a
# small share of the two cores it shares with the server.
WRK = shutil.which("wrk")


def web_scenarios(options: Options) -> list[str]:
    return ["ours", *(["naive"] if "naive" in options.scenarios else [])]


def run(options: Options, log_dir: Path, results: dict) -> None:
    """Every run of every load against each server, the servers in turn run by run."""
    # scenario -> (server, its port)
    servers: dict[str, tuple[procs.Managed, int]] = {}
    try:
        for scenario in web_scenarios(options):
            servers[scenario] = gunicorn(f"gunicorn-{scenario}", scenario, options, log_dir)
        for server, port in servers.values():
            server.wait_for_port(port)
        for run in range(options.runs):
            for scenario, (server, port) in servers.items():
                url = orders_url(port)
                web_run(options, scenario, server, url, results[WEB_SCENARIOS[scenario]], run)
        if options.profile is not None:
            profile_run(options, *servers["ours"], log_dir)
        purge_queues(web_queues())
    finally:
        for server, _ in servers.values():
            server.stop()


def gunicorn(
    name: str, scenario: str, options: Options, log_dir: Path
) -> tuple[procs.Managed, int]:
    """The scenario's web server, started (not yet listening), and its port."""
    port = procs.free_port()
    env = child_env(
        DJANGO_SETTINGS_MODULE="bench.settings_production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        **SCENARIO_ENV[scenario],
    )
    argv = [
        procs.python(), "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}",
        "-w", str(options.web_workers), "--log-level", "warning",
    ]  # fmt: skip
    return procs.Managed(name, argv, env, log_dir), port


def profile_run(options: Options, server: procs.Managed, port: int, log_dir: Path) -> None:
    """One more closed-loop run with py-spy attached to our server's processes."""
    profile = options.profile
    assert profile is not None, "called only with --profile"
    profile.mkdir(parents=True, exist_ok=True)
    spies = spy_on(server, "web-gunicorn", profile, log_dir)
    time.sleep(2)
    skus = fresh()
    outcome = load(orders_url(port), skus, ["--concurrency", str(options.web_concurrency)], 10)
    stop_spies(spies)
    print(f"  web profile run: {fmt(outcome['rps'])} req/s under the profiler", flush=True)


def orders_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api/orders/"


def web_run(options: Options, scenario: str, server, url: str, into: dict, run: int) -> None:
    """One run of every load against one server, from a fresh database."""
    skus = fresh()
    purge_queues(web_queues())
    # Warm every gunicorn worker's connections before measuring.
    load(url, skus, ["--concurrency", str(options.web_workers * 2)], 1)
    keyed = ["closed_keyed"] if scenario == "ours" else []
    for kind in ["closed", *keyed, *(["closed_wrk"] if WRK else []), "open"]:
        meter = meter_for(server.processes).start()
        outcome = web_load(kind, url, skus, options)
        cpu = meter.stop()
        outcome.update(cpu_summary(cpu, 0.0, outcome["requests"]))
        outcome["cpu"] = cpu
        into[kind].append(outcome)
        print(
            f"  web run {run + 1}/{options.runs} {scenario} {kind}: {fmt(outcome['rps'])} req/s, "
            f"p50 {fmt(outcome['p50_ms'])} ms, p99 {fmt(outcome['p99_ms'])} ms, "
            f"{outcome['errors']} errors",
            flush=True,
        )


def web_load(kind: str, url: str, skus: list[str], options: Options) -> dict:
    """One web run: closed loop (Python client or wrk) or open loop at the set rate."""
    if kind == "closed_wrk":
        return load_wrk(url, skus, options.web_concurrency, options.web_seconds)
    if kind in ("closed", "closed_keyed"):
        flags = ["--concurrency", str(options.web_concurrency)]
        flags += ["--keyed"] if kind == "closed_keyed" else []
    else:
        flags = ["--rate", str(options.web_rate)]
    return load(url, skus, flags, options.web_seconds)


def web_queues() -> list[str]:
    """Where the web servers' orders go: our apps' queues and the naive twins'."""
    from django.conf import settings

    return [*settings.APP_QUEUES, *settings.NAIVE_QUEUES]


def load(url: str, skus: list[str], flags: list[str], seconds: float) -> dict:
    argv = [
        procs.python(), "-m", "bench.loadgen", url, "--skus", ",".join(skus),
        "--seconds", str(seconds), *flags,
    ]  # fmt: skip
    before = children_cpu_seconds()
    outcome = procs.run_to_end("load generator", argv, child_env())
    outcome["generator"] = "python -m bench.loadgen"
    outcome["generator_cpu_ms_per_request"] = per_request(
        children_cpu_seconds() - before, outcome["requests"]
    )
    return outcome


def load_wrk(url: str, skus: list[str], connections: int, seconds: float) -> dict:
    """Closed loop through wrk: each connection sends its next order once the last answered."""
    assert WRK is not None, "run only where wrk is installed"
    argv = [
        WRK, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
        "-s", str(ROOT / "bench" / "wrk_orders.lua"), url, "--", ",".join(skus),
    ]  # fmt: skip
    before = children_cpu_seconds()
    raw = procs.run_to_end("wrk", argv, child_env())
    failures = {
        key: raw[key]
        for key in ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx_3xx")
        if raw[key]
    }
    return {
        **{k: raw[k] for k in ("requests", "seconds", "p50_ms", "p95_ms", "p99_ms", "max_ms")},
        "rps": raw["requests"] / raw["seconds"] if raw["seconds"] else 0.0,
        "errors": sum(failures.values()),
        "first_error": ", ".join(f"{key}: {count}" for key, count in failures.items()),
        "generator": f"wrk -t1 -c{connections}",
        "generator_cpu_ms_per_request": per_request(
            children_cpu_seconds() - before, raw["requests"]
        ),
    }


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_request(cpu_seconds: float, requests: int) -> float | None:
    return 1000 * cpu_seconds / requests if requests else None
