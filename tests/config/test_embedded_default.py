"""The embedded default of `make run`: SQLite and the file-system broker, no server at all.

Two producer processes and a worker write to one SQLite file at once; every
event crosses processes through the file-system transport and is handled.
"""

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

PER_PRODUCER = 60


def test_events_cross_processes_on_sqlite_and_the_filesystem_broker(tmp_path):
    database = tmp_path / "db.sqlite3"
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}},
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"sqlite:///{database}",
        "CELERY_BROKER_URL": "filesystem://",
        "VAR_DIR": str(tmp_path),
    }

    def run(*args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs,
        )  # fmt: skip

    migrate = run("manage.py", "migrate", "--noinput", "-v", "0")
    assert migrate.wait(timeout=180) == 0, migrate.stdout.read()

    worker = run("-m", "celery", "-A", "config", "worker", "-Q", "probe_a,probe_b", "-c", "2")
    try:
        producers = [
            run(
                "manage.py",
                "shell",
                "--verbosity",
                "0",
                "-c",
                "from tests.support.probes import ping\n"
                f"for i in range({PER_PRODUCER}): ping('p{n}-' + str(i))",
            )
            for n in range(2)
        ]
        for producer in producers:
            assert producer.wait(timeout=180) == 0, producer.stdout.read()

        expected = 2 * PER_PRODUCER
        deadline = time.monotonic() + 120
        while True:
            with sqlite3.connect(database, timeout=30) as db:
                counts = dict(
                    db.execute(
                        "SELECT handler, COUNT(*) FROM probe_probeeffect GROUP BY handler"
                    ).fetchall()
                )
                pending = db.execute(
                    "SELECT COUNT(*) FROM messaging_outboxmessage WHERE dispatched_at IS NULL"
                ).fetchone()[0]
            if all(counts.get(h) == expected for h in ("record_ping", "echo_ping", "record_echo")):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"handled so far: {counts}, of {expected} each")
            time.sleep(0.5)
        assert pending == 0
    finally:
        worker.terminate()
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
    assert "database is locked" not in output
