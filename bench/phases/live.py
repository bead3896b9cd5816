"""The live phase: the real-time push against polling, idle streams, and the push's cost to the web.

Three measurements, each with ``manage.py live_push`` and a uvicorn of
``config.asgi`` running with REDIS_URL (bench/live_servers.py):

1. Pages at half load. Our workers (bench/fleet.py) and a gunicorn run; the
   injector places orders at half of ours' saturation (the flows phase's,
   else one saturation run here) and prints each order's id as it is
   placed. Every new order gets a page, among ``live_pages`` kept open
   (bench/pages.py): a stream (push) or a poll of ``GET /api/orders/<id>/``
   every second after each answer (polling), in turn run by run, on the
   same load. A step's latency is when the page saw it minus its
   ``occurred_at``, taken in the producer's transaction before it commits:
   an upper bound of committed → seen. Steps already there when the page
   opened are counted apart. Duplicates (a stream sending a step twice) and
   missed steps (in the order's outbox, never seen by its page) are counted.
2. ``live_idle`` idle streams held open on one uvicorn: its RSS before and
   after, and its CPU while it holds them (the keep-alives).
3. ``POST /api/orders/`` requests/s through gunicorn (closed loop, no app
   workers, as the web phase), with the push running and ``live_pages``
   streams open, and without it, in turn run by run.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import psutil

from .. import procs
from ..broker import purge_queues
from ..cli import ROOT, Options
from ..environment import child_env, fresh
from ..fleet import Fleet
from ..live_servers import PushServers, raise_open_files_limit, redis_problem, redis_url
from ..pages import POLL_S, Pages, PolledPage, PushedPage, timestamp
from ..report import fmt
from ..sse import SseStream
from ..stats import median, percentile
from . import flows, place_orders, web

HOST = "127.0.0.1"
MODES = {"push": PushedPage, "poll": PolledPage}
# A step may still be on its way when its page is closed: only those older
# than this count as missed.
IN_FLIGHT_S = 1.0
# The idle streams are opened this many at a time (a browser's tabs do not
# all connect in the same millisecond).
OPENING_AT_ONCE = 50


def run(options: Options, log_dir: Path, results: dict) -> None:
    into = results["live"]
    url = redis_url()
    problem = redis_problem(url)
    if problem:
        into["skipped"] = f"{problem}: set REDIS_URL to a Redis for the push"
        print(f"  skipped: {into['skipped']}", flush=True)
        return
    into["open_files_limit"] = raise_open_files_limit()
    server, port = web.gunicorn("gunicorn-live", "ours", options, log_dir)
    # The idle streams' server: its own keep-alive period, unless the hold is too short for one.
    keepalive = 15.0 if options.live_hold >= 20 else max(0.5, options.live_hold / 2)
    push = PushServers("live", url, log_dir, keepalive=keepalive)
    fleet = Fleet(options, log_dir)
    try:
        server.wait_for_port(port)
        web_runs(options, log_dir, url, server, port, into)
        push.start()
        fleet.start(["ours"])
        into["rate"] = half_load(options, fleet, results, into)
        page_runs(options, push, server, port, fleet, into)
        procs.stop_together([server, *fleet.groups["ours"]])
        into["idle"] = idle_run(options, push, keepalive)
    finally:
        procs.stop_together([push.server, push.publisher, server, *fleet.groups.get("ours", [])])


# --- 3. the web with the push on and off ------------------------------------


def web_runs(options: Options, log_dir: Path, url: str, server, port: int, into: dict) -> None:
    """Closed-loop order placements with the push on and off, in turn (order swapped each run)."""
    for run in range(options.runs):
        states = ["off", "on"] if run % 2 == 0 else ["on", "off"]
        for state in states:
            outcome = web_run(options, log_dir, url, server, port, state == "on")
            into["web"][state].append(outcome)
            print(
                f"  web run {run + 1}/{options.runs} push {state}: "
                f"{fmt(outcome['rps'])} req/s, p99 {fmt(outcome['p99_ms'])} ms, "
                f"{outcome['errors']} errors"
                + (f", {outcome['streams_open']} streams open" if state == "on" else ""),
                flush=True,
            )
    purge_queues(web.web_queues())


def web_run(options, log_dir, url, server, port, push_on: bool) -> dict:
    from orders.models import Order

    skus = fresh()
    purge_queues(web.web_queues())
    orders_url = web.orders_url(port)
    web.load(orders_url, skus, ["--concurrency", str(options.web_workers * 2)], 1)
    push = PushServers("web-push", url, log_dir).start() if push_on else None
    try:
        order_ids = [
            str(i) for i in Order.objects.values_list("id", flat=True)[: options.live_pages]
        ]
        groups = {"gunicorn": server.processes, "push": push.processes if push else lambda: []}
        meter = procs.CpuMeter(groups).start()

        def closed_loop() -> dict:
            if web.WRK:
                return web.load_wrk(orders_url, skus, options.web_concurrency, options.web_seconds)
            flags = ["--concurrency", str(options.web_concurrency)]
            return web.load(orders_url, skus, flags, options.web_seconds)

        if push is None:
            outcome, streams = closed_loop(), 0
        else:
            outcome, streams = asyncio.run(_with_streams(push.port, order_ids, closed_loop))
        cpu = meter.stop()
    finally:
        if push is not None:
            push.stop()
    requests = outcome["requests"] or 1
    outcome.update(
        push=push_on,
        streams_open=streams,
        gunicorn_cpu_ms_per_request=1000 * cpu["gunicorn"] / requests,
        push_cpu_ms_per_request=1000 * cpu["push"] / requests,
    )
    return outcome


async def _with_streams(port: int, order_ids: list[str], load) -> tuple[dict, int]:
    """``load()`` run in a thread while a stream is held open on each order; (its outcome, how
    many streams were still open at its end)."""
    pages = Pages(PushedPage, len(order_ids), HOST, port)
    for order_id in order_ids:
        pages.open(order_id)
    await _until(lambda: all(p.seen or p.error for p in pages.all_pages), 30)
    outcome = await asyncio.to_thread(load)
    still_open = sum(1 for p in pages.all_pages if isinstance(p, PushedPage) and not p.stream.ended)
    await pages.close_all()
    return outcome, still_open


async def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# --- 1. pages at half load: push against polling ------------------------------


def half_load(options: Options, fleet: Fleet, results: dict, into: dict) -> dict:
    """Half of ours' saturation: the flows phase's median if it ran, else one run measured here."""
    runs = results.get("ours", {}).get("saturation") or []
    saturation = median([r.get("orders_per_s") for r in runs])
    source = f"the flows phase's saturation of ours, median of {len(runs)} run" + (
        "s" if len(runs) != 1 else ""
    )
    if not saturation:
        print(
            f"  saturation run: ours, {options.orders} orders (the flows phase did not run)",
            flush=True,
        )
        outcome = flows.measure(fleet, "ours", options.orders, 0, None)
        saturation = outcome.get("orders_per_s")
        source = f"one saturation run of ours in this phase, {options.orders} orders"
        if not saturation:
            raise RuntimeError(f"the live phase's saturation run completed nothing: {outcome}")
    rate = {"orders_per_s": saturation / 2, "saturation": saturation, "source": source}
    print(f"  half load: {fmt(rate['orders_per_s'])} orders/s, from {source}", flush=True)
    return rate


def page_runs(options: Options, push: PushServers, server, web_port: int, fleet, into) -> None:
    """Push and polling in turn, run by run, on the same load."""
    groups = {"push": push.processes, "gunicorn": server.processes, "flow": fleet.processes("ours")}
    for run in range(options.runs):
        for mode in MODES:
            port = push.port if mode == "push" else web_port
            outcome = page_run(options, push.log_dir, mode, port, groups, into["rate"])
            into["pages"][mode].append(outcome)
            print(
                f"  pages run {run + 1}/{options.runs} {mode}: "
                f"p50 {fmt(outcome['p50_ms'])} ms, p99 {fmt(outcome['p99_ms'])} ms "
                f"over {outcome['steps']} steps "
                f"({outcome['steps_on_opening']} there on opening), "
                f"{outcome['duplicates']} duplicates, {outcome['missed']} missed, "
                f"{outcome['pages']} orders, {outcome['page_errors']} page errors",
                flush=True,
            )


def page_run(options, log_dir, mode: str, port: int, groups: dict, rate: dict) -> dict:
    """One run: ``live_pages`` pages open on finished orders, then a page for each new order."""
    from orders.models import Order

    skus = fresh()
    # The pages open when the run starts: orders placed and finished just before.
    place_orders("ours", options.live_pages, skus)
    flows.wait_flow_done(options.live_pages, 60)
    earlier = [str(i) for i in Order.objects.values_list("id", flat=True)]
    per_s = rate["orders_per_s"]
    orders = max(2, round(per_s * options.live_seconds))
    argv = [
        procs.python(), "-m", "bench.inject", "ours", "--orders", str(orders),
        "--rate", str(per_s), "--skus", ",".join(skus), "--print-ids",
    ]  # fmt: skip
    meter = procs.CpuMeter(groups).start()
    pages, measured, injected = asyncio.run(
        _pages_while_injecting(mode, port, options.live_pages, earlier, argv, log_dir)
    )
    cpu = meter.stop()
    complete = flows.wait_flow_done(len(earlier) + injected["sent"], 30)[1]
    return {
        "mode": mode,
        "rate": per_s,
        "orders": orders,
        "injector": injected,
        "complete": complete,
        "pages_open_at_most": pages.most_open,
        **page_figures(measured),
        "polls": sum(getattr(p, "polls", 0) for p in pages.all_pages),
        "cpu": cpu,
        "cpu_ms_per_order": {k: 1000 * cpu[k] / orders for k in groups},
    }


async def _pages_while_injecting(mode, port, size, earlier, argv, log_dir):
    pages = Pages(MODES[mode], size, HOST, port)
    for order_id in earlier:
        pages.open(order_id)
    await _until(lambda: all(p.seen or p.error for p in pages.all_pages), 30)
    measured = []
    with open(log_dir / f"live-injector-{mode}.log", "a") as errors:
        injector = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env=child_env(), stdout=asyncio.subprocess.PIPE, stderr=errors,
            limit=2**20,
        )  # fmt: skip
        last = b""
        assert injector.stdout is not None  # a pipe, as asked
        async for line in injector.stdout:
            if line.startswith(b'{"order_id"'):
                measured.append(pages.open(json.loads(line)["order_id"]))
            elif line.strip():
                last = line
        if await injector.wait() != 0:
            raise RuntimeError(f"the injector failed: see {errors.name}")
    injected = json.loads(last)
    # Every page sees its order close, then any step that follows (a poll later).
    await _until(lambda: all(p.order_closed for p in measured), 30 + len(measured) / 10)
    await asyncio.sleep(POLL_S + 0.5 if mode == "poll" else 0.5)
    await pages.close_all()
    return pages, measured, injected


def page_figures(measured: list) -> dict:
    """The latencies of the steps seen after their page opened; duplicates, misses, errors."""
    from orders.selectors import order_steps

    latencies = sorted(ms for page in measured for ms in page.latencies_ms())
    missed = 0
    for page in measured:
        for step in order_steps(order_id=page.order_id):
            too_late = timestamp(step["occurred_at"]) > page.closed_at - IN_FLIGHT_S
            missed += step["message_id"] not in page.seen and not too_late
    errors = [page.error for page in measured if page.error]
    return {
        "pages": len(measured),
        "steps": len(latencies),
        "steps_on_opening": sum(
            1 for page in measured for seen in page.seen.values() if seen.on_opening
        ),
        "duplicates": sum(page.duplicates for page in measured),
        "missed": missed,
        "page_errors": len(errors),
        "first_error": errors[0] if errors else "",
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
    }


# --- 2. idle streams ----------------------------------------------------------


def idle_run(options: Options, push: PushServers, keepalive: float) -> dict:
    """``live_idle`` streams held by one uvicorn: its memory and CPU, while nothing happens."""
    from orders.models import Order

    order_ids = [str(i) for i in Order.objects.values_list("id", flat=True)[:200]]
    if not order_ids:
        place_orders("ours", 20, fresh())
        order_ids = [str(i) for i in Order.objects.values_list("id", flat=True)]
    figures = asyncio.run(_idle(push, order_ids, options.live_idle, options.live_hold))
    figures.update(keepalive_s=keepalive, orders=len(order_ids))
    print(
        f"  idle: {figures['open_at_end']} of {figures['connections']} streams held "
        f"{fmt(figures['hold_s'])} s: uvicorn RSS {fmt(figures['rss_before_mb'])} → "
        f"{fmt(figures['rss_after_mb'])} MB ({fmt(figures['rss_kb_per_connection'])} KB each), "
        f"CPU {fmt(figures['cpu_pct'], 2)} % while holding",
        flush=True,
    )
    return figures


async def _idle(push: PushServers, order_ids: list[str], count: int, hold: float) -> dict:
    assert push.server is not None, "the push servers run"
    server = psutil.Process(push.server.pid)
    # One stream opened and closed first: the server's first request imports and connects.
    warm = await _open_streams(push.port, order_ids[:1], 1)
    for stream in warm:
        stream.close()
    settle = min(1.0, hold)
    await asyncio.sleep(settle)
    rss_before = server.memory_info().rss
    began = time.monotonic()
    streams = await _open_streams(push.port, [order_ids[i % len(order_ids)] for i in range(count)])
    opening_s = time.monotonic() - began
    await asyncio.sleep(settle)
    rss_after = server.memory_info().rss
    threads, database = server.num_threads(), _database_connections(server)
    cpu0, wall0 = _cpu(server), time.monotonic()
    keepalives0 = sum(s.keepalives for s in streams)
    await asyncio.sleep(hold)
    cpu1, wall1 = _cpu(server), time.monotonic()
    rss_end = server.memory_info().rss
    open_at_end = sum(1 for s in streams if not s.ended)
    keepalives = sum(s.keepalives for s in streams) - keepalives0
    for stream in streams:
        stream.close()
    opened = sum(1 for s in streams if s.status == 200)
    return {
        "connections": count,
        "opened_at_once": OPENING_AT_ONCE,
        "opened": opened,
        "open_at_end": open_at_end,
        "opening_s": opening_s,
        "hold_s": wall1 - wall0,
        "rss_before_mb": rss_before / 2**20,
        "rss_after_mb": rss_after / 2**20,
        "rss_end_mb": rss_end / 2**20,
        "rss_kb_per_connection": (rss_after - rss_before) / 1024 / opened if opened else None,
        "threads": threads,
        "database_connections": database,
        "cpu_pct": 100 * (cpu1 - cpu0) / (wall1 - wall0),
        "keepalives_per_connection": keepalives / opened if opened else None,
        "errors": sorted({s.error for s in streams if s.error})[:3],
    }


def _database_connections(process: psutil.Process) -> int:
    from django.conf import settings

    port = int(settings.DATABASES["default"]["PORT"] or 5432)
    return sum(1 for c in process.net_connections("tcp") if c.raddr and c.raddr.port == port)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def _open_streams(port: int, order_ids: list[str], at_once: int = OPENING_AT_ONCE):
    """A stream on each order (repeats allowed), each open once its timeline arrived."""
    gate = asyncio.Semaphore(at_once)
    streams = []

    async def one(order_id: str) -> None:
        timeline = asyncio.Event()
        stream = SseStream(
            HOST, port, f"/live/orders/{order_id}/stream",
            lambda event: timeline.set() if event.name == "timeline" else None,
        )  # fmt: skip
        streams.append(stream)
        async with gate:
            try:
                if await stream.open() != 200:
                    stream.error = f"answered {stream.status}"
                    stream.ended = True
                    return
            except OSError as exc:
                stream.error, stream.ended = f"{type(exc).__name__}: {exc}", True
                return
            task = asyncio.get_running_loop().create_task(stream.run())
            stream.task = task
            waiting = asyncio.get_running_loop().create_task(timeline.wait())
            await asyncio.wait({task, waiting}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()

    await asyncio.gather(*(one(order_id) for order_id in order_ids))
    return streams
