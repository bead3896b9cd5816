"""The embedded default of `make run`: SQLite and the file-system broker, no server at all.

Producer processes and workers write to one SQLite file at once; every event
crosses processes through the file-system transport and is handled.
"""

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from honcho.manager import KILL_WAIT

from tests.support.paths import ROOT
from tests.support.redis import free_port
from tests.support.waiting import wait_for


class EmbeddedStack:
    def __init__(self, folder: Path):
        self.folder = folder
        self.database = folder / "db.sqlite3"
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}
            },
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"sqlite:///{self.database}",
            "GATEWAY_DATABASE_URL": f"sqlite:///{folder / 'gateway.sqlite3'}",
            "CELERY_BROKER_URL": "filesystem://",
            "VAR_DIR": str(folder),
        }
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def start(self, *args: str) -> subprocess.Popen:
        # Output goes to a file, and each process leads a group of its own, so
        # that stopping it stops its pool children too and nothing waits on a
        # pipe an orphan still holds.
        log = self.folder / f"process-{len(self.processes)}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, env=self.env, text=True,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.processes.append((process, log))
        return process

    def output(self, process: subprocess.Popen) -> str:
        return next(log.read_text() for p, log in self.processes if p is process)

    def wait(self, process: subprocess.Popen, timeout: float = 180) -> None:
        assert process.wait(timeout=timeout) == 0, self.output(process)

    def run(self, *args: str, timeout: float = 180) -> None:
        self.wait(self.start(*args), timeout=timeout)

    def shell(self, code: str) -> subprocess.Popen:
        return self.start("manage.py", "shell", "--verbosity", "0", "-c", code)

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.database, timeout=30) as db:
            return db.execute(sql).fetchall()

    def wait_until(self, predicate, what: str, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                statuses = self.query("SELECT status, COUNT(*) FROM orders_order GROUP BY status")
                statuses += self.query(
                    "SELECT reason, handler, COUNT(*) FROM messaging_deadletter GROUP BY 1, 2"
                )
                worker_log = self.processes[2][1].read_text().splitlines()[-25:]
                pytest.fail(
                    f"timed out waiting for {what}; orders by status: {statuses}\n"
                    + "\n".join(worker_log)
                )
            time.sleep(0.5)
        return value

    def stop(self) -> str:
        for process, _ in self.processes:
            _signal_group(process, signal.SIGTERM)
        for process, _ in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=30)
            _signal_group(process, signal.SIGKILL)  # any pool child left behind
        return "\n".join(log.read_text() for _, log in self.processes)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


@pytest.fixture
def embedded(tmp_path):
    stack = EmbeddedStack(tmp_path)
    stack.run("manage.py", "migrate", "--noinput", "-v", "0")
    stack.run("manage.py", "migrate", "--noinput", "-v", "0", "--database", "gateway")
    yield stack
    locked = [line for line in stack.stop().splitlines() if "database is locked" in line]
    assert not locked, "\n".join(locked[:20])


def test_events_cross_processes_on_sqlite_and_the_filesystem_broker(embedded):
    per_producer = 60
    embedded.start("-m", "celery", "-A", "config", "worker", "-Q", "probe_a,probe_b", "-c", "2")
    producers = [
        embedded.shell(
            "from tests.support.probes import ping\n"
            f"for i in range({per_producer}): ping('p{n}-' + str(i))"
        )
        for n in range(2)
    ]
    for producer in producers:
        embedded.wait(producer)

    expected = 2 * per_producer
    handlers = ("record_ping", "echo_ping", "record_echo")
    embedded.wait_until(
        lambda: all(
            dict(
                embedded.query("SELECT handler, COUNT(*) FROM probe_probeeffect GROUP BY handler")
            ).get(h)
            == expected
            for h in handlers
        ),
        what=f"{expected} effects of each handler",
    )
    assert embedded.query(
        "SELECT COUNT(*) FROM messaging_outboxmessage WHERE dispatched_at IS NULL"
    ) == [(0,)]


def test_stock_never_goes_negative_on_sqlite(embedded):
    orders, units, producers = 100, 10, 4
    embedded.start("-m", "celery", "-A", "config", "worker", "-c", "2")
    embedded.run(
        "manage.py", "shell", "--verbosity", "0", "-c",
        "from decimal import Decimal\nfrom inventory.services import product_save\n"
        f"product_save(sku='LAST-10', name='Last ten', price=Decimal('5.00'), on_hand={units})",
    )  # fmt: skip
    embedded.wait_until(
        lambda: (
            embedded.query("SELECT available FROM orders_catalogitem WHERE sku='LAST-10'")
            == [(units,)]
        ),
        what="the product in the storefront's catalog",
    )
    place = (
        "from orders.services import OrderItem, order_place\n"
        "address = dict(name='A', line1='1 Road', city='Paris', postal_code='75001',"
        " country='FR')\n"
        f"for _ in range({orders // producers}):\n"
        "    order_place(email='a@example.com', items=[OrderItem('LAST-10', 1)],"
        " shipping_address=address, card_number='4242424242424242')"
    )
    for producer in [embedded.shell(place) for _ in range(producers)]:
        embedded.wait(producer)

    embedded.wait_until(
        lambda: (
            embedded.query(
                "SELECT COUNT(*) FROM orders_order WHERE status IN ('completed', 'cancelled')"
            )
            == [(orders,)]
        ),
        what="every order to complete or be cancelled",
    )
    statuses = dict(embedded.query("SELECT status, COUNT(*) FROM orders_order GROUP BY status"))
    assert statuses == {"completed": units, "cancelled": orders - units}
    assert embedded.query(
        "SELECT on_hand, reserved, shipped FROM inventory_product WHERE sku='LAST-10'"
    ) == [(0, 0, units)]


# --- Quiet -----------------------------------------------------------------------

ALARMING = re.compile(r"WARNING|ERROR|CRITICAL|Traceback")


def alarming(log: str) -> list[str]:
    return [line for line in log.splitlines() if ALARMING.search(line)]


def test_the_file_system_broker_needs_no_host_and_so_warns_of_none(tmp_path):
    code = (
        "import logging; logging.basicConfig(level=logging.INFO)\n"
        "import django; django.setup()\n"
        "from config.celery import app\n"
        "with app.connection_for_write() as connection:\n"
        "    connection.default_channel\n"
        "    print(connection.info()['transport'])\n"
    )
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**env, "VAR_DIR": str(tmp_path)},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout == "messaging.filesystem:Transport\n"
    assert alarming(result.stderr) == []


# --- Stopping as make run stops it ------------------------------------------------
# honcho stops every process with SIGTERM to its process group, and SIGKILLs what
# is still there KILL_WAIT seconds later: a worker killed so loses the messages it
# had taken from the file-system broker.


def stop_as_honcho_does(process: subprocess.Popen) -> tuple[int, float]:
    """SIGTERM to the process group; its status, and the seconds it took to go."""
    started = time.monotonic()
    _signal_group(process, signal.SIGTERM)
    status = process.wait(timeout=30)
    return status, time.monotonic() - started


def test_a_worker_stopped_as_make_run_stops_it_is_gone_at_once_and_cleanly(embedded):
    # Given a worker on the embedded default, its pool started
    worker = embedded.start("-m", "celery", "-A", "config", "worker", "-c", "2", "-l", "INFO")
    wait_for(lambda: "ready." in embedded.output(worker), timeout=60, what="the worker")
    pool = psutil.Process(worker.pid).children()
    assert len(pool) == 2

    # When it is stopped as honcho stops it
    status, took = stop_as_honcho_does(worker)

    # Then it stopped warm, in time, its pool processes with it, with nothing to alarm anyone
    log = embedded.output(worker)
    assert (status, alarming(log)) == (0, []), log
    assert "Warm shutdown" in log
    assert took < KILL_WAIT, f"{took:.1f} s"
    _, alive = psutil.wait_procs(pool, timeout=5)
    assert alive == []


def test_the_web_server_stopped_as_make_run_stops_it_exits_cleanly(embedded):
    # Given the development server as make run starts it
    embedded.env["DJANGO_RUNSERVER_HIDE_WARNING"] = "true"
    web = embedded.start("manage.py", "runserver", f"127.0.0.1:{free_port()}", "--noreload")
    wait_for(lambda: "Quit the server" in embedded.output(web), timeout=60, what="the server")

    # When it is stopped as honcho stops it
    status, _ = stop_as_honcho_does(web)

    # Then it exits as it does on Ctrl-C
    log = embedded.output(web)
    assert (status, alarming(log)) == (0, []), log
