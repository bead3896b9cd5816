"""The targets of issue 6, checked against the summary's figures."""

from __future__ import annotations


def closed_loop(web: dict) -> dict:
    """A server's closed-loop figures from the lightest load generator at hand.

    wrk when it ran: the load generator shares the machine's cores with the
    server it measures.
    """
    return web.get("closed_wrk") or web.get("closed") or {}


def targets_for(scen, ratios, web, recovery, memory) -> list[dict]:
    def check(name, target, measured, ok):
        status = "n/a" if measured is None else ("PASS" if ok(measured) else "MISS")
        return {"target": name, "goal": target, "measured": measured, "status": status}

    latency50 = scen.get("ours", {}).get("latency", {}).get("50", {})
    probe = memory.get("probe_worker", {})
    app_workers = memory.get("app_workers", {})
    peak = (
        max(
            [probe.get("end_mb") or 0, probe.get("start_mb") or 0]
            + [w.get("end_pss_mb") or 0 for w in app_workers.values()]
            + [w.get("start_pss_mb") or 0 for w in app_workers.values()]
        )
        or None
    )
    closed = closed_loop(web)
    return [
        check(
            "Throughput, ours ÷ naive", "≥ 0.8 (aim 1.0)",
            ratios.get("throughput_ours_over_naive"), lambda v: v >= 0.8,
        ),
        check(
            "Latency p50 at 50% of saturation (ours)", "≤ 25 ms",
            latency50.get("p50_ms"), lambda v: v <= 25,
        ),
        check(
            "Latency p99 at 50% of saturation (ours)", "≤ 100 ms",
            latency50.get("p99_ms"), lambda v: v <= 100,
        ),
        check(
            f"Web: POST /api/orders/ requests/s ({closed.get('generator', 'closed loop')})",
            "≥ 300", closed.get("rps"), lambda v: v >= 300,
        ),
        check(
            "Web: p99 at 100 requests/s", "≤ 50 ms",
            web.get("open", {}).get("p99_ms"), lambda v: v <= 50,
        ),
        check(
            "Outbox drain, events/s", "≥ 2,000",
            recovery.get("events_per_s"), lambda v: v >= 2000,
        ),
        check(
            "Worker memory, largest worker (PSS, main process + pool child)", "≤ 150 MB",
            peak, lambda v: v <= 150,
        ),
        check(
            "Worker memory growth over the probe run", "≤ 10 MB (our reading of 'worth the name')",
            probe.get("growth_mb"), lambda v: v <= 10,
        ),
    ]  # fmt: skip
