"""A process group's folder: processes that count apart, one scrape that adds them up."""

import os
import subprocess
import sys
import textwrap

from prometheus_client.parser import text_string_to_metric_families

from metrics.groups import group_folder, group_folders_of_dead_processes_remove

# A worker's life in miniature, in a process of its own (it switches prometheus_client to
# files): the metrics are imported first (as Django's setup does), then the group starts,
# then two forked children and the parent count, and the parent scrapes them all.
GROUP = textwrap.dedent(
    """
    import os, sys
    from prometheus_client import generate_latest
    from metrics import instruments
    from metrics.groups import group_registry, group_start

    folder = group_start(sys.argv[1])
    for n in (2, 3):
        pid = os.fork()
        if pid == 0:
            instruments.deliveries.labels("probe.metrics", "ProbePinged", "handled").inc(n)
            os._exit(0)
        os.waitpid(pid, 0)
    instruments.deliveries.labels("probe.metrics", "ProbePinged", "handled").inc()
    sys.stdout.write(generate_latest(group_registry(folder)).decode())
    """
)


def counted(output: str) -> float:
    samples = [
        sample
        for family in text_string_to_metric_families(output)
        for sample in family.samples
        if sample.name == "eventshop_deliveries_total"
    ]
    return sum(sample.value for sample in samples)


def run_group(folder) -> str:
    found = subprocess.run(
        [sys.executable, "-c", GROUP, str(folder)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return found.stdout


def test_a_groups_scrape_adds_up_every_process_and_a_new_start_forgets_the_last_run(tmp_path):
    folder = group_folder(tmp_path, "worker-payments@host")

    # When a group's parent and two children count, then the group starts again and does the same
    first = run_group(folder)
    second = run_group(folder)

    # Then each scrape added up the three processes, and only its own run's
    assert counted(first) == 6
    assert counted(second) == 6


def test_a_groups_folder_name_is_safe_for_a_file_name(tmp_path):
    assert group_folder(tmp_path, "web-unix:/run/shop.sock").name == "web-unix_run_shop.sock"
    assert group_folder(tmp_path, "worker-payments@host").name == "worker-payments@host"


def test_the_folders_of_workers_that_are_gone_are_removed(tmp_path):
    # Given the folder of a worker that was killed, and that of one still running (this process)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    killed = group_folder(tmp_path, f"worker-celery@host-{gone}")
    running = group_folder(tmp_path, f"worker-celery@host-{os.getpid()}")
    web = group_folder(tmp_path, "web-127.0.0.1:8000")
    for folder in (killed, running, web):
        folder.mkdir()

    # When a worker starts and clears up
    removed = group_folders_of_dead_processes_remove(tmp_path, "worker-")

    # Then only the killed worker's folder went
    assert removed == [killed]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, web.name])
