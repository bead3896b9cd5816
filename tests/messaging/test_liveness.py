"""The worker's liveness probe (manage.py worker_alive) against real worker processes.

Alive while it consumes and while it waits for a broker that went away (a
restart would not bring it back); dead once its main process is stuck
(SIGSTOP), killed, or stopped.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command

from tests.support.broker import proxied_url
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for
from tests.support.workers import worker_env, workers_start, workers_stop

pytestmark = pytest.mark.django_db(transaction=True)

MAX_AGE = 3.0


@pytest.fixture
def heartbeats(tmp_path, settings):
    """A heartbeat folder of the test's own, read by this process and written by its workers."""
    settings.WORKER_HEARTBEAT_DIR = tmp_path / "workers"
    return settings.WORKER_HEARTBEAT_DIR


@pytest.fixture
def broker_cut(rabbitmq) -> Iterator[TcpProxy]:
    """A proxy in front of RabbitMQ for one worker, that the test cuts and restores."""
    parts = urlsplit(rabbitmq)
    proxy = TcpProxy((parts.hostname, parts.port or 5672))
    proxy.start()
    yield proxy
    proxy.stop()


def probe(*arguments: str) -> tuple[bool, str]:
    """Run the probe as a supervisor would: alive (exit 0) or not, and what it said."""
    out = StringIO()
    try:
        call_command("worker_alive", *arguments, "--max-age", str(MAX_AGE), stdout=out)
    except CommandError as exc:
        return False, f"{out.getvalue()}{exc}"
    return True, out.getvalue()


def test_a_worker_is_alive_while_it_runs_or_waits_for_the_broker_and_dead_once_stuck_or_killed(
    rabbitmq, broker_cut, heartbeats, django_db_blocker
):
    # Given a worker beating every half second, reaching RabbitMQ through a proxy,
    # and another one stopped cleanly as an operator stops it
    env = {
        **worker_env(rabbitmq, django_db_blocker),
        "WORKER_HEARTBEAT_DIR": str(heartbeats),
        "WORKER_HEARTBEAT_INTERVAL": "0.5",
    }
    workers = workers_start(
        {"cut": ("alive-cut", ["probe_d"], 1), "stopped": ("alive-stopped", ["probe_c"], 1)},
        {**env, "CELERY_BROKER_URL": proxied_url(rabbitmq, broker_cut)},
    )
    cut, stopped = workers["cut"], workers["stopped"]
    try:
        # Then each is alive, found by its node name or by a queue it consumes
        alive, said = probe("--node", cut.hostname)
        assert alive, said
        assert f"{cut.hostname}: alive, beat" in said
        assert "consuming probe_d" in said
        assert probe("--queue", "probe_c")[0]
        assert not probe("--queue", "payments")[0]

        # When one is stopped as an operator stops it, then its heartbeat goes with it
        stopped.stop()
        alive, said = probe("--node", stopped.hostname)
        assert not alive
        assert "No worker heartbeat for node" in said

        # When the broker goes away, the other is still alive: it waits to reconnect
        broker_cut.stop()
        wait_for(
            lambda: "waiting to reconnect" in probe("--node", cut.hostname)[1],
            timeout=20,
            what="the worker to say it waits for the broker",
        )
        assert probe("--node", cut.hostname)[0]
        broker_cut.start()
        wait_for(
            lambda: "consuming probe_d" in probe("--node", cut.hostname)[1],
            timeout=30,
            what="the worker to consume again",
        )

        # When its main process is stuck (stopped by SIGSTOP), it is dead once its beat is stale
        os.kill(cut.process.pid, signal.SIGSTOP)
        try:
            wait_for(
                lambda: not probe("--node", cut.hostname)[0],
                timeout=MAX_AGE + 5,
                what="the stuck worker to be called dead",
            )
            assert "its main process is stuck" in probe("--node", cut.hostname)[1]
        finally:
            os.kill(cut.process.pid, signal.SIGCONT)
        wait_for(lambda: probe("--node", cut.hostname)[0], what="the worker alive again")

        # When it is killed, it is dead at once: its process is gone
        cut.kill()
        alive, said = probe("--node", cut.hostname)
        assert not alive
        assert f"its process (pid {cut.process.pid}) is gone" in said
    finally:
        workers_stop(workers)


def test_no_heartbeat_at_all_says_where_it_looked(heartbeats):
    alive, said = probe()

    assert not alive
    assert str(heartbeats) in said
