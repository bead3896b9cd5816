"""The targets: ratios of ours to the naive baseline measured in the same run; and the record.

Absolute targets on a small shared machine measure the machine as much as
the code (the same code ran at half the speed on another machine of the same
kind); a ratio to the baseline measured side by side does not. The absolute
figures are kept for the record, with no verdict.
"""

from __future__ import annotations


def closed_loop(web: dict) -> dict:
    """A server's closed-loop figures from the lightest load generator at hand.

    wrk when it ran: the load generator shares the machine's cores with the
    server it measures.
    """
    return web.get("closed_wrk") or web.get("closed") or {}


def targets_for(ratios: dict, web: dict) -> list[dict]:
    def check(name, goal, measured, ok):
        status = "n/a" if measured is None else ("PASS" if ok(measured) else "MISS")
        return {"target": name, "goal": goal, "measured": measured, "status": status}

    generator = closed_loop(web).get("generator", "closed loop")
    return [
        check(
            "Throughput, ours ÷ naive", "≥ 1.0",
            ratios.get("throughput_ours_over_naive"), lambda v: v >= 1.0,
        ),
        check(
            "Latency p50 at 50% of saturation, ours ÷ naive", "≤ 1.1",
            ratios.get("p50_at_half_load_ours_over_naive"), lambda v: v <= 1.1,
        ),
        check(
            f"Web: POST /api/orders/ requests/s, ours ÷ naive ({generator})", "≥ 1.0",
            ratios.get("web_ours_over_naive"), lambda v: v >= 1.0,
        ),
        check(
            "CPU per order, ours ÷ naive", "≤ 1.05",
            ratios.get("cpu_per_order_ours_over_naive"), lambda v: v <= 1.05,
        ),
        check(
            "Fraud screening's cost: latency p50 at 50% of saturation, screened ÷ ours",
            "≤ 1.10",
            ratios.get("p50_at_half_load_screened_over_ours"), lambda v: v <= 1.10,
        ),
        check(
            "Stream processor lag p99 at 50% of saturation (fraud screen), ms", "≤ 1000",
            ratios.get("screening_lag_p99_ms_at_half_load"), lambda v: v <= 1000,
        ),
        check(
            "Stream processor (aggregates) on a backlog, entries/s ÷ raw stream read", "≥ 0.5",
            ratios.get("stream_aggregates_over_floor"), lambda v: v >= 0.5,
        ),
    ]  # fmt: skip


def record_for(
    scen: dict, web: dict, web_naive: dict, recovery: dict, memory: dict, stream: dict
) -> list[dict]:
    """The absolute figures of ours (and of the naive baseline where it has them), no verdict."""

    def flow(scenario: str, key: str):
        return scen.get(scenario, {}).get(key)

    def half_load(scenario: str, key: str):
        return scen.get(scenario, {}).get("latency", {}).get("50", {}).get(key)

    probe = memory.get("probe_worker", {})
    generator = closed_loop(web).get("generator", "closed loop")
    rows = [
        ("Throughput, orders/s", flow("ours", "orders_per_s"), flow("naive", "orders_per_s")),
        ("CPU ms per order", flow("ours", "cpu_ms_per_order"), flow("naive", "cpu_ms_per_order")),
        ("Latency p50 at 50% of saturation, ms",
         half_load("ours", "p50_ms"), half_load("naive", "p50_ms")),
        ("Latency p99 at 50% of saturation, ms",
         half_load("ours", "p99_ms"), half_load("naive", "p99_ms")),
        (f"Web: POST /api/orders/ requests/s ({generator})",
         closed_loop(web).get("rps"), closed_loop(web_naive).get("rps")),
        ("Web: p99 ms, open loop",
         web.get("open", {}).get("p99_ms"), web_naive.get("open", {}).get("p99_ms")),
        ("Outbox drain, events/s", recovery.get("events_per_s"), None),
        ("Event log, raw stream read, entries/s", stream.get("floor_per_s"), None),
        ("Stream processor, aggregates, entries/s", stream.get("aggregates_per_s"), None),
        ("Stream processor, fraud screen, entries/s", stream.get("fraud_per_s"), None),
        ("Replay of the aggregates (rebuild + compare), entries/s",
         stream.get("replay_per_s"), None),
        ("Worker memory, largest worker (PSS MB, main process + pool children)",
         largest_worker(memory, "ours", probe), largest_worker(memory, "naive")),
        ("Worker memory growth over the probe run, MB", probe.get("growth_mb"), None),
    ]  # fmt: skip
    return [{"figure": figure, "ours": ours, "naive": naive} for figure, ours, naive in rows]


def largest_worker(memory: dict, scenario: str, probe: dict | None = None) -> float | None:
    """The most PSS any worker of the scenario had, at start or at the end."""
    workers = [
        w for name, w in memory.get("app_workers", {}).items() if name.startswith(f"{scenario}-")
    ]
    sizes = [(probe or {}).get("start_mb"), (probe or {}).get("end_mb")]
    sizes += [w.get(key) for w in workers for key in ("start_pss_mb", "end_pss_mb")]
    return max([s for s in sizes if s], default=None)
