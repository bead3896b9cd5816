"""The targets are ratios to the naive baseline of the same run; absolute figures get no verdict."""

from bench.targets import largest_worker, record_for, targets_for

WEB = {"closed": {"generator": "python -m bench.loadgen", "rps": 200.0}}


def statuses(ratios: dict) -> list[str]:
    return [t["status"] for t in targets_for(ratios, WEB)]


def test_each_ratio_passes_at_its_bound_and_misses_beyond_it():
    at_bounds = {
        "throughput_ours_over_naive": 1.0,
        "p50_at_half_load_ours_over_naive": 1.1,
        "web_ours_over_naive": 1.0,
        "cpu_per_order_ours_over_naive": 1.05,
    }
    beyond = {
        "throughput_ours_over_naive": 0.99,
        "p50_at_half_load_ours_over_naive": 1.11,
        "web_ours_over_naive": 0.99,
        "cpu_per_order_ours_over_naive": 1.06,
    }

    assert statuses(at_bounds) == ["PASS"] * 4
    assert statuses(beyond) == ["MISS"] * 4


def test_a_ratio_not_measured_is_not_a_verdict():
    # e.g. python -m bench --scenarios ours: no naive baseline to compare with
    assert statuses({}) == ["n/a"] * 4


def test_the_web_target_names_the_load_generator_it_was_read_from():
    wrk = {**WEB, "closed_wrk": {"generator": "wrk -t1 -c8", "rps": 210.0}}

    [_, _, web, _] = targets_for({}, wrk)

    assert "wrk -t1 -c8" in web["target"]


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
    record = {r["figure"]: r for r in record_for(scen, WEB, {}, {"events_per_s": 3000.0}, memory)}

    # then
    throughput = record["Throughput, orders/s"]
    assert (throughput["ours"], throughput["naive"]) == (20.0, 22.0)
    assert record["Latency p50 at 50% of saturation, ms"]["naive"] == 34.0
    assert record["Outbox drain, events/s"]["ours"] == 3000.0
    assert largest_worker(memory, "ours", memory["probe_worker"]) == 101.0
    assert largest_worker(memory, "naive") == 97.0
    assert largest_worker({}, "naive") is None
