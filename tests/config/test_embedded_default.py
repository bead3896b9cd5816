"""The embedded default of `make run`: SQLite and the file-system broker, no server at all.

Producer processes and workers write to one SQLite file at once; every event
crosses processes through the file-system transport and is handled.
"""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT


class EmbeddedStack:
    def __init__(self, folder: Path):
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
        self.processes: list[subprocess.Popen] = []

    def start(self, *args: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def run(self, *args: str, timeout: float = 180) -> None:
        process = self.start(*args)
        assert process.wait(timeout=timeout) == 0, process.stdout.read()

    def shell(self, code: str) -> subprocess.Popen:
        return self.start("manage.py", "shell", "--verbosity", "0", "-c", code)

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.database, timeout=30) as db:
            return db.execute(sql).fetchall()

    def wait_until(self, predicate, what: str, timeout: float = 180):
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.5)
        return value

    def stop(self) -> str:
        output = []
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
            try:
                out, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                out, _ = process.communicate()
            output.append(out or "")
        return "\n".join(output)


@pytest.fixture
def embedded(tmp_path):
    stack = EmbeddedStack(tmp_path)
    stack.run("manage.py", "migrate", "--noinput", "-v", "0")
    stack.run("manage.py", "migrate", "--noinput", "-v", "0", "--database", "gateway")
    yield stack
    assert "database is locked" not in stack.stop()


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
        assert producer.wait(timeout=180) == 0, producer.stdout.read()

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
    orders, units = 30, 5
    embedded.start("-m", "celery", "-A", "config", "worker", "-c", "2")
    embedded.run(
        "manage.py", "shell", "--verbosity", "0", "-c",
        "from decimal import Decimal\nfrom inventory.services import product_save\n"
        f"product_save(sku='LAST-5', name='Last five', price=Decimal('5.00'), on_hand={units})",
    )  # fmt: skip
    embedded.wait_until(
        lambda: (
            embedded.query("SELECT available FROM orders_catalogitem WHERE sku='LAST-5'")
            == [(units,)]
        ),
        what="the product in the storefront's catalog",
    )
    place = (
        "from orders.services import OrderItem, order_place\n"
        "address = dict(name='A', line1='1 Road', city='Paris', postal_code='75001',"
        " country='FR')\n"
        f"for _ in range({orders // 2}):\n"
        "    order_place(email='a@example.com', items=[OrderItem('LAST-5', 1)],"
        " shipping_address=address, card_number='4242424242424242')"
    )
    producers = [embedded.shell(place) for _ in range(2)]
    for producer in producers:
        assert producer.wait(timeout=180) == 0, producer.stdout.read()

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
        "SELECT on_hand, reserved, shipped FROM inventory_product WHERE sku='LAST-5'"
    ) == [(0, 0, units)]
