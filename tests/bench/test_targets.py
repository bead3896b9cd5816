"""The targets are ratios to the naive baseline of the same run; absolute figures get no verdict."""

from bench.targets import OBSERVABILITY, largest_worker, record_for, targets_for

WEB = {"closed": {"generator": "python -m bench.loadgen", "rps": 200.0}}


def statuses(ratios: dict) -> list[str]:
    return [t["status"] for t in targets_for(ratios, WEB)]


def test_each_ratio_passes_at_its_bound_and_misses_beyond_it():
    at_bounds = {
        "throughput_ours_over_naive": 1.0,
        "p50_at_half_load_ours_over_naive": 1.1,
        "web_ours_over_naive": 1.0,
        "cpu_per_order_ours_over_naive": 1.05,
        "p50_at_half_load_screened_over_ours": 1.10,
        "screening_lag_p99_ms_at_half_load": 1000,
        "stream_aggregates_over_floor": 0.5,
        "live_push_p99_ms": 250,
        "web_push_on_over_off": 0.95,
        "observability_throughput_on_over_off": 0.95,
        "observability_cpu_per_order_on_over_off": 1.05,
    }
    beyond = {
        "throughput_ours_over_naive": 0.99,
        "p50_at_half_load_ours_over_naive": 1.11,
        "web_ours_over_naive": 0.99,
        "cpu_per_order_ours_over_naive": 1.06,
        "p50_at_half_load_screened_over_ours": 1.11,
        "screening_lag_p99_ms_at_half_load": 1001,
        "stream_aggregates_over_floor": 0.49,
        "live_push_p99_ms": 251,
        "web_push_on_over_off": 0.94,
        "observability_throughput_on_over_off": 0.94,
        "observability_cpu_per_order_on_over_off": 1.06,
    }

    assert statuses(at_bounds) == ["PASS"] * 11
    assert statuses(beyond) == ["MISS"] * 11


def test_a_ratio_not_measured_is_not_a_verdict():
    # e.g. python -m bench --scenarios ours: no naive baseline to compare with
    assert statuses({}) == ["n/a"] * 11


def test_the_web_target_names_the_load_generator_it_was_read_from():
    wrk = {**WEB, "closed_wrk": {"generator": "wrk -t1 -c8", "rps": 210.0}}

    [_, _, web, *_] = targets_for({}, wrk)

    assert "wrk -t1 -c8" in web["target"]


def test_the_push_targets_name_the_pages_open_and_the_load_generator():
    live = {"push": {"pages": 50}, "web_off": {"generator": "wrk -t1 -c8"}}

    *_, latency, web, _, _ = targets_for({}, WEB, live)

    assert "50 pages open" in latency["target"]
    assert "push on ÷ off (wrk -t1 -c8)" in web["target"]


def test_the_record_keeps_the_live_figures_push_and_polling_side_by_side():
    live = {
        "push": {"p50_ms": 9.0, "p99_ms": 40.0, "duplicates": 0, "missed": 1},
        "poll": {"p50_ms": 950.0, "p99_ms": 1100.0},
        "idle": {"connections": 1000, "rss_after_mb": 180.0, "rss_kb_per_connection": 85.0},
        "web_off": {"rps": 200.0},
        "web_on": {"rps": 194.0},
    }

    record = {r["figure"]: r["ours"] for r in record_for({}, WEB, {}, {}, {}, {}, live)}

    assert record["Push: latency p99 at 50% of saturation, committed → seen, ms"] == 40.0
    assert record["Polling every second: latency p99, same load, ms"] == 1100.0
    assert record["Push: steps a stream sent twice + steps it missed (must be 0)"] == 1
    assert record["Streaming server RSS holding 1,000 idle streams, MB"] == 180.0
    assert record["Web: POST /api/orders/ requests/s, push on"] == 194.0


def test_the_record_keeps_the_observability_figures_on_and_off():
    observability = {
        "on": {"orders_per_s": 19.0, "cpu_ms_per_order": 84.0},
        "off": {"orders_per_s": 20.0, "cpu_ms_per_order": 80.0},
    }

    rows = record_for({}, WEB, {}, {}, {}, {}, None, observability)

    record = {r["figure"]: r["ours"] for r in rows}
    assert record[f"Throughput with {OBSERVABILITY} on, orders/s"] == 19.0
    assert record[f"CPU ms per order with {OBSERVABILITY} off"] == 80.0


def test_the_record_keeps_the_absolute_figures_of_ours_and_the_naive_baseline():
    # given
    scen = {
        "ours": {"orders_per_s": 20.0, "latency": {"50": {"p50_ms": 45.0}}},
        "naive": {"orders_per_s": 22.0, "latency": {"50": {"p50_ms": 34.0}}},
    }
    memory = {
        "probe_worker": {"start_mb": 90.0, "end_mb": 95.0, "growth_mb": 1.0},
        "app_workers": {
            "ours-orders": {"start_pss_mb": 90.0, "end_pss_mb": 101.0},
            "naive-orders": {"start_pss_mb": 88.0, "end_pss_mb": 97.0},
        },
    }

    # when
    stream = {"floor_per_s": 20000.0, "aggregates_per_s": 11000.0, "replay_per_s": 10500.0}
    record = {
        r["figure"]: r for r in record_for(scen, WEB, {}, {"events_per_s": 3000.0}, memory, stream)
    }

    # then
    throughput = record["Throughput, orders/s"]
    assert (throughput["ours"], throughput["naive"]) == (20.0, 22.0)
    assert record["Latency p50 at 50% of saturation, ms"]["naive"] == 34.0
    assert record["Outbox drain, events/s"]["ours"] == 3000.0
    assert record["Stream processor, aggregates, entries/s"]["ours"] == 11000.0
    assert record["Event log, raw stream read, entries/s"]["ours"] == 20000.0
    assert largest_worker(memory, "ours", memory["probe_worker"]) == 101.0
    assert largest_worker(memory, "naive") == 97.0
    assert largest_worker({}, "naive") is None
