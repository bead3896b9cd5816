"""The cluster phase's figures: its summary and its section of the report, from its runs.

The phase itself takes minutes (tests/bench/test_smoke.py runs it tiny, as a
slow test); here its parts are checked on runs of known figures.
"""

from bench.report import cluster_section
from bench.summary import cluster_summary


def setup_run(orders_per_s: float, p99_ms: float) -> dict:
    return {
        "orders_per_s": orders_per_s, "half_load_rate": orders_per_s / 2, "p50_ms": p99_ms / 2,
        "p99_ms": p99_ms, "complete": True,
    }  # fmt: skip


OUTCOME = {
    "single": [setup_run(100, 40), setup_run(90, 60), setup_run(110, 50)],
    "cluster": [setup_run(50, 80), setup_run(60, 120), setup_run(40, 100)],
    "payments_workers": {"1": [100, 90, 110], "2": [95, 85, 90], "4": [80, 70, 75]},
    "node_death": [
        {"first_completed_after_s": 6.0, "longest_gap_s": 7.0, "complete": True},
        {"first_completed_after_s": 4.0, "longest_gap_s": 5.0, "complete": True},
        {"first_completed_after_s": 5.0, "longest_gap_s": 6.0, "complete": True},
    ],
}


def test_the_summary_gives_medians_and_cluster_over_single_round_by_round():
    summary = cluster_summary(OUTCOME)

    assert summary["single"]["orders_per_s"] == 100
    assert summary["cluster"]["orders_per_s"] == 50
    assert summary["throughput_cluster_over_single"] == 0.5
    assert summary["throughput_cluster_over_single_runs"] == [0.5, 60 / 90, 40 / 110]
    assert summary["p99_cluster_over_single"] == 2.0
    assert summary["payments_workers"]["4"]["orders_per_s"] == 75
    assert summary["payments_workers"]["4"]["over_one"] == 0.75
    assert summary["node_death"]["first_completed_after_s"] == 5.0
    assert summary["node_death"]["all_complete"]


def test_the_report_section_shows_the_ratios_the_workers_and_the_outage():
    lines: list[str] = []

    cluster_section(lines.append, cluster_summary(OUTCOME))

    text = "\n".join(lines)
    assert text.startswith("## Cluster")
    assert "throughput **0.50**" in text and "p99 **2.00**" in text
    assert "| 4 | 75 | 80, 70, 75 | 0.75 |" in text
    assert "completed **5.00 s** after it" in text


def test_a_skipped_phase_says_why():
    lines: list[str] = []

    cluster_section(lines.append, cluster_summary({"skipped": "needs root"}))

    assert "Skipped: needs root." in lines
