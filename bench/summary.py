"""The summary of a benchmark's runs: medians per scenario, the ratios between them, the targets."""

from __future__ import annotations

from typing import Any

from .cli import Options
from .stats import median
from .targets import closed_loop, record_for, targets_for

TITLES = {
    "ours": "Our flow, choreography",
    "screened": "Our flow, choreography, fraud screening on (stream processor)",
    "orchestration": "Our flow, orchestration",
    "naive": "Naive baseline (delay_on_commit)",
    "celery": "Bare Celery floor (no-op tasks)",
    "kombu": "Transport floor (raw kombu, confirms)",
}


def summarize(options: Options, results: dict, fleet_memory: dict) -> dict:
    scen = {s: scenario_summary(s, results[s]) for s in options.scenarios}
    web = web_summary(results["web"])
    web_naive = web_summary(results.get("web_naive", {}))
    ratios = ratios_of(scen, results, web, web_naive)
    recovery = {}
    if results["recovery"]:
        rr = results["recovery"]
        recovery = {
            "events": options.backlog,
            "events_per_s": median([r["events_per_s"] for r in rr]),
            "events_per_s_runs": [r["events_per_s"] for r in rr],
            "cpu_ms_per_event": median([r["cpu_ms_per_event"] for r in rr]),
            "left_pending": max(r["left_pending"] for r in rr),
            "broker_down_s_per_order": median([r["broker_down_s_per_order"] for r in rr]),
            "broker_down_pending_after": median([r["broker_down_pending_after"] for r in rr]),
        }
    redrive = redrive_summary(results.get("redrive", []))
    ratios.update(
        {k: redrive[k] for k in ("redrive_group_over_one_by_one", "redrive_group_over_floor")
         if k in redrive}
    )  # fmt: skip
    stream = stream_summary(results.get("stream", []))
    ratios.update({key: stream[key] for key in ("stream_aggregates_over_floor",) if key in stream})
    observability = observability_summary(results.get("observability", {}))
    for key in ("throughput_on_over_off", "cpu_per_order_on_over_off"):
        ratios[f"observability_{key}"] = observability.get(key)
    live = live_summary(results.get("live", {}))
    ratios["live_push_p99_ms"] = live.get("push", {}).get("p99_ms")
    ratios["web_push_on_over_off"] = live.get("web_on_over_off")
    watchdog = watchdog_summary(results.get("watchdog", []))
    ratios["watchdog_index_over_table_scan"] = watchdog.get("index_over_table_scan")
    cluster = cluster_summary(results.get("cluster", {}))
    for key in ("throughput_cluster_over_single", "p99_cluster_over_single"):
        ratios[key] = cluster.get(key)
    memory = dict(results["memory"])
    if fleet_memory:
        memory["app_workers"] = fleet_memory
    return {
        "scenarios": scen,
        "ratios": ratios,
        "web": web,
        "web_naive": web_naive,
        "recovery": recovery,
        "redrive": redrive,
        "stream": stream,
        "observability": observability,
        "memory": memory,
        "live": live,
        "watchdog": watchdog,
        "cluster": cluster,
        "targets": targets_for(ratios, web, live),
        "record": record_for(
            scen, web, web_naive, recovery, memory, stream, live, observability, redrive
        ),
    }


def redrive_summary(runs: list[dict]) -> dict:
    """Medians of the redrive phase, and the median of each run's group ÷ its baselines."""
    if not runs:
        return {}
    summary = {
        "letters": runs[0]["letters"],
        "one_by_one_letters": runs[0]["one_by_one_letters"],
        "queued": min(r["queued"] for r in runs),
    }
    for key in ("group", "one_by_one", "floor"):
        summary[f"{key}_per_s"] = median([r[f"{key}_per_s"] for r in runs])
        summary[f"{key}_per_s_runs"] = [r[f"{key}_per_s"] for r in runs]
    summary["redrive_group_over_one_by_one"] = median(
        [r["group_per_s"] / r["one_by_one_per_s"] for r in runs]
    )
    summary["redrive_group_over_floor"] = median(
        [r["group_per_s"] / r["floor_per_s"] for r in runs]
    )
    return summary


def cluster_summary(outcome: dict) -> dict:
    """Medians of each setup, cluster ÷ single (of the medians and round by round), the
    payments workers' throughputs and the node deaths' outages."""
    if not outcome or "skipped" in outcome:
        return dict(outcome)

    def over(a, b):
        return a / b if a and b else None

    summary: dict = {}
    for setup in ("single", "cluster"):
        runs = outcome[setup]
        summary[setup] = {
            key: median([r.get(key) for r in runs])
            for key in ("orders_per_s", "half_load_rate", "p50_ms", "p99_ms")
        }
        summary[setup]["orders_per_s_runs"] = [r.get("orders_per_s") for r in runs]
        summary[setup]["all_complete"] = all(r["complete"] for r in runs)
    pairs = list(zip(outcome["cluster"], outcome["single"], strict=False))
    for key, figure in (
        ("throughput_cluster_over_single", "orders_per_s"),
        ("p50_cluster_over_single", "p50_ms"),
        ("p99_cluster_over_single", "p99_ms"),
    ):
        summary[key] = over(summary["cluster"][figure], summary["single"][figure])
        summary[f"{key}_runs"] = [over(c.get(figure), s.get(figure)) for c, s in pairs]
    summary["payments_workers"] = {
        count: {"orders_per_s": median(runs), "orders_per_s_runs": runs}
        for count, runs in outcome["payments_workers"].items()
    }
    one = summary["payments_workers"].get("1", {}).get("orders_per_s")
    for figures in summary["payments_workers"].values():
        figures["over_one"] = over(figures["orders_per_s"], one)
    deaths = outcome["node_death"]
    summary["node_death"] = {
        "first_completed_after_s": median([d["first_completed_after_s"] for d in deaths]),
        "first_completed_after_s_runs": [d["first_completed_after_s"] for d in deaths],
        "longest_gap_s": median([d["longest_gap_s"] for d in deaths]),
        "all_complete": all(d["complete"] for d in deaths),
    }
    return summary


def stream_summary(runs: list[dict]) -> dict:
    """Medians of the stream phase, and the median of each run's processor ÷ floor."""
    if not runs:
        return {}
    summary = {"entries": runs[0]["entries"]}
    for key in ("floor", "aggregates", "fraud", "replay"):
        summary[f"{key}_per_s"] = median([r[key] for r in runs])
        summary[f"{key}_per_s_runs"] = [r[key] for r in runs]
    summary["stream_aggregates_over_floor"] = median([r["aggregates"] / r["floor"] for r in runs])
    summary["stream_fraud_over_floor"] = median([r["fraud"] / r["floor"] for r in runs])
    return summary


def watchdog_summary(runs: list[dict]) -> dict:
    """The watchdog phase's medians, the index ÷ table scan ratio run by run, and the last plan."""
    if not runs:
        return {}
    return {
        "open_orders": runs[0]["open_orders"],
        "overdue": runs[0]["overdue"],
        "ended": min(r["ended"] for r in runs),
        "select_ms": median([r["select_ms"] for r in runs]),
        "select_ms_runs": [r["select_ms"] for r in runs],
        "select_table_scan_ms": median([r["select_table_scan_ms"] for r in runs]),
        "index_over_table_scan": median([r["index_over_table_scan"] for r in runs]),
        "index_over_table_scan_runs": [r["index_over_table_scan"] for r in runs],
        "sweep_s": median([r["sweep_s"] for r in runs]),
        "sweep_ms_per_order": median([r["sweep_ms_per_order"] for r in runs]),
        "uses_index": all(r["uses_index"] for r in runs),
        "plan": runs[-1]["plan"],
    }


def observability_summary(states: dict) -> dict:
    """Each state's medians, and on ÷ off: of the medians, and run by run (each one round)."""
    summary: dict = {}
    for state, runs in states.items():
        if runs:
            summary[state] = {
                "orders": runs[0]["orders"],
                "orders_per_s": median([r.get("orders_per_s") for r in runs]),
                "orders_per_s_runs": [r.get("orders_per_s") for r in runs],
                "cpu_ms_per_order": median([r.get("cpu_ms_per_order") for r in runs]),
                "cpu_ms_per_order_runs": [r.get("cpu_ms_per_order") for r in runs],
                "python_ms_per_order": median([r.get("python_ms_per_order") for r in runs]),
                "postgres_ms_per_order": median([r.get("postgres_ms_per_order") for r in runs]),
                "rabbitmq_ms_per_order": median([r.get("rabbitmq_ms_per_order") for r in runs]),
                "all_complete": all(r["complete"] and r["settled"] for r in runs),
            }
    on, off = summary.get("on"), summary.get("off")
    if not on or not off:
        return summary

    def over(a, b):
        return a / b if a and b else None

    for key, figure in (
        ("throughput_on_over_off", "orders_per_s"),
        ("cpu_per_order_on_over_off", "cpu_ms_per_order"),
    ):
        summary[key] = over(on[figure], off[figure])
        summary[f"{key}_runs"] = [
            over(a.get(figure), b.get(figure))
            for a, b in zip(states["on"], states["off"], strict=False)
        ]
    return summary


def live_summary(live: dict) -> dict:
    """The live phase's medians: push against polling, the idle streams, the web push on and off."""
    if live.get("skipped"):
        return {"skipped": live["skipped"]}
    pages = live.get("pages", {})
    if not any(pages.values()) and not any(live.get("web", {}).values()):
        return {}
    summary: dict = {"rate": live.get("rate"), "idle": live.get("idle")}
    for mode, runs in pages.items():
        if not runs:
            continue
        summary[mode] = {
            "pages": runs[0]["pages_open_at_most"],
            "orders": sum(r["pages"] for r in runs),
            "steps": sum(r["steps"] for r in runs),
            "steps_on_opening": sum(r["steps_on_opening"] for r in runs),
            "duplicates": sum(r["duplicates"] for r in runs),
            "missed": sum(r["missed"] for r in runs),
            "page_errors": sum(r["page_errors"] for r in runs),
            "first_error": next((r["first_error"] for r in runs if r["first_error"]), ""),
            "all_complete": all(r["complete"] for r in runs),
            "p50_ms": median([r["p50_ms"] for r in runs]),
            "p95_ms": median([r["p95_ms"] for r in runs]),
            "p99_ms": median([r["p99_ms"] for r in runs]),
            "max_ms": max((r["max_ms"] for r in runs if r["max_ms"] is not None), default=None),
            "p50_ms_runs": [r["p50_ms"] for r in runs],
            "p99_ms_runs": [r["p99_ms"] for r in runs],
            "cpu_ms_per_order": {
                group: median([r["cpu_ms_per_order"][group] for r in runs])
                for group in runs[0]["cpu_ms_per_order"]
            },
        }
    web = live.get("web", {})
    for state, runs in web.items():
        if runs:
            summary[f"web_{state}"] = {
                "generator": runs[0]["generator"],
                "rps": median([r["rps"] for r in runs]),
                "p50_ms": median([r["p50_ms"] for r in runs]),
                "p99_ms": median([r["p99_ms"] for r in runs]),
                "errors": sum(r["errors"] for r in runs),
                "rps_runs": [r["rps"] for r in runs],
                "streams_open": min(r["streams_open"] for r in runs),
                "gunicorn_cpu_ms_per_request": median(
                    [r["gunicorn_cpu_ms_per_request"] for r in runs]
                ),
                "push_cpu_ms_per_request": median([r["push_cpu_ms_per_request"] for r in runs]),
            }
    on, off = summary.get("web_on", {}).get("rps"), summary.get("web_off", {}).get("rps")
    summary["web_on_over_off"] = on / off if on and off else None
    summary["web_on_over_off_runs"] = [
        a["rps"] / b["rps"] if b["rps"] else None
        for a, b in zip(web.get("on", []), web.get("off", []), strict=False)
    ]
    return summary


def scenario_summary(scenario: str, runs: dict) -> dict:
    """The medians of one scenario's saturation runs and of its latency runs, level by level."""
    sat = runs["saturation"]
    entry: dict[str, Any] = {
        "title": TITLES[scenario],
        "orders_per_s": median([r.get("orders_per_s") for r in sat]),
        "orders_per_s_runs": [r.get("orders_per_s") for r in sat],
        "cpu_ms_per_order": median([r.get("cpu_ms_per_order") for r in sat]),
        "python_ms_per_order": median([r.get("python_ms_per_order") for r in sat]),
        "postgres_ms_per_order": median([r.get("postgres_ms_per_order") for r in sat]),
        "rabbitmq_ms_per_order": median([r.get("rabbitmq_ms_per_order") for r in sat]),
        "all_complete": all(r["complete"] for r in sat)
        and all(r["complete"] for lv in runs["latency"].values() for r in lv),
        "latency": {},
    }
    for key in ("outbox_rows_per_order", "inbox_rows_per_order", "task_results_per_order"):
        if sat and key in sat[0]:
            entry[key] = median([r.get(key) for r in sat])
    for level, lruns in runs["latency"].items():
        entry["latency"][level] = {
            "rate": median([r["rate"] for r in lruns]),
            "achieved_rate": median([r["injector"]["achieved_rate"] for r in lruns]),
            "orders": median([r["injected"] for r in lruns]),
            "p50_ms": median([r.get("p50_ms") for r in lruns]),
            "p95_ms": median([r.get("p95_ms") for r in lruns]),
            "p99_ms": median([r.get("p99_ms") for r in lruns]),
            "p99_ms_runs": [r.get("p99_ms") for r in lruns],
            "cpu_ms_per_order": median([r.get("cpu_ms_per_order") for r in lruns]),
        }
        for key in ("screening_lag_p50_ms", "screening_lag_p99_ms"):
            if lruns and key in lruns[0]:
                entry["latency"][level][key] = median([r.get(key) for r in lruns])
    return entry


def ratios_of(scen: dict, results: dict, web: dict, web_naive: dict) -> dict:
    def ratio(a: str, b: str, key: str = "orders_per_s"):
        x = scen.get(a, {}).get(key)
        y = scen.get(b, {}).get(key)
        return x / y if x and y else None

    def half_load_p50(scenario: str):
        return scen.get(scenario, {}).get("latency", {}).get("50", {}).get("p50_ms")

    ratios = {
        "throughput_ours_over_naive": ratio("ours", "naive"),
        "throughput_ours_over_celery": ratio("ours", "celery"),
        "throughput_ours_over_kombu": ratio("ours", "kombu"),
        "throughput_orchestration_over_naive": ratio("orchestration", "naive"),
        "cpu_per_order_ours_over_naive": ratio("ours", "naive", "cpu_ms_per_order"),
        "cpu_per_order_ours_over_celery": ratio("ours", "celery", "cpu_ms_per_order"),
        "cpu_per_order_ours_over_kombu": ratio("ours", "kombu", "cpu_ms_per_order"),
    }
    ours, naive = half_load_p50("ours"), half_load_p50("naive")
    ratios["p50_at_half_load_ours_over_naive"] = ours / naive if ours and naive else None
    screened = half_load_p50("screened")
    ratios["p50_at_half_load_screened_over_ours"] = screened / ours if screened and ours else None
    ratios["screening_lag_p99_ms_at_half_load"] = (
        scen.get("screened", {}).get("latency", {}).get("50", {}).get("screening_lag_p99_ms")
    )
    # Per-run ratios (each from one interleaved round), to show their spread.
    if "ours" in results and "naive" in results:
        ratios["throughput_ours_over_naive_runs"] = [
            (a.get("orders_per_s") or 0) / b["orders_per_s"] if b.get("orders_per_s") else None
            for a, b in zip(
                results["ours"]["saturation"], results["naive"]["saturation"], strict=False
            )
        ]
    closed, closed_naive = (closed_loop(w).get("rps") for w in (web, web_naive))
    ratios["web_ours_over_naive"] = closed / closed_naive if closed and closed_naive else None
    # The same generator, one run after the other: what an Idempotency-Key costs.
    plain, keyed = (web.get(kind, {}).get("rps") for kind in ("closed", "closed_keyed"))
    ratios["web_keyed_over_unkeyed"] = keyed / plain if keyed and plain else None
    return ratios


def web_summary(by_kind: dict) -> dict:
    """The medians of one server's web runs, per kind of load."""
    web = {}
    for kind in ("closed", "closed_keyed", "closed_wrk", "open"):
        wruns = by_kind.get(kind)
        if wruns:
            web[kind] = {
                "generator": wruns[0]["generator"],
                "rps": median([r["rps"] for r in wruns]),
                "p50_ms": median([r["p50_ms"] for r in wruns]),
                "p99_ms": median([r["p99_ms"] for r in wruns]),
                "errors": sum(r["errors"] for r in wruns),
                "cpu_ms_per_request": median([r["cpu_ms_per_order"] for r in wruns]),
                "generator_cpu_ms_per_request": median(
                    [r["generator_cpu_ms_per_request"] for r in wruns]
                ),
                "rps_runs": [r["rps"] for r in wruns],
                "p99_ms_runs": [r["p99_ms"] for r in wruns],
            }
    return web
