"""The observability phase's summary: each state's medians, and on ÷ off of them and run by run."""

from bench.summary import observability_summary


def outcome(orders_per_s: float, cpu: float) -> dict:
    return {
        "orders": 200, "complete": True, "settled": True, "orders_per_s": orders_per_s,
        "cpu_ms_per_order": cpu, "python_ms_per_order": cpu / 2,
        "postgres_ms_per_order": cpu / 4, "rabbitmq_ms_per_order": cpu / 4,
    }  # fmt: skip


def test_on_over_off_is_of_the_medians_and_run_by_run_of_each_round():
    # given: three rounds, the second one disturbed on both sides
    states = {
        "on": [outcome(19.0, 84.0), outcome(10.0, 160.0), outcome(18.0, 88.0)],
        "off": [outcome(20.0, 80.0), outcome(12.5, 150.0), outcome(20.0, 80.0)],
    }

    # when
    summary = observability_summary(states)

    # then
    assert summary["on"]["orders_per_s"] == 18.0
    assert summary["off"]["cpu_ms_per_order"] == 80.0
    assert summary["throughput_on_over_off"] == 18.0 / 20.0
    assert summary["cpu_per_order_on_over_off"] == 88.0 / 80.0
    assert summary["throughput_on_over_off_runs"] == [0.95, 0.8, 0.9]
    assert summary["on"]["all_complete"]


def test_a_state_not_measured_gives_no_ratio():
    summary = observability_summary({"on": [outcome(19.0, 84.0)], "off": []})

    assert summary["on"]["orders_per_s"] == 19.0
    assert "throughput_on_over_off" not in summary


def test_an_unsettled_run_is_incomplete():
    states = {"on": [{**outcome(19.0, 84.0), "settled": False}], "off": [outcome(20.0, 80.0)]}

    assert not observability_summary(states)["on"]["all_complete"]
