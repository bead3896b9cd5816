"""A worker's heartbeat file, for a supervisor's liveness probe (``manage.py worker_alive``).

Each worker's consumer writes ``WORKER_HEARTBEAT_DIR/<node name>.json`` from
its event loop every WORKER_HEARTBEAT_INTERVAL seconds (``WorkerHeartbeat``),
and also between two attempts to reach the broker while it reconnects
(``messaging.worker.Consumer.ensure_connected``). A fresh file says the
worker's main process is making progress; a stale one that it is stuck
(its event loop blocked, or the process stopped); a missing one that it
stopped cleanly (the file goes with it). A broker outage is not death: a
restart would not bring the broker back, so a worker waiting for it stays
alive, and says so.

Celery's own ``inspect ping`` would go through the broker (it fails for
every worker at once when the broker does) and needs a free moment of the
worker's event loop and the remote control; the file needs neither.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from celery import bootsteps
from django.conf import settings

logger = logging.getLogger(__name__)

CONSUMING = "consuming"
CONNECTING = "connecting"


@dataclass(frozen=True)
class Heartbeat:
    """What a worker last wrote in its heartbeat file."""

    node: str
    pid: int
    queues: list[str]
    state: str
    beat_at: float  # seconds since the epoch

    def age(self, now: float) -> float:
        return max(now - self.beat_at, 0.0)


@dataclass(frozen=True)
class Liveness:
    """A worker's heartbeat judged: alive or not, and why, in words."""

    heartbeat: Heartbeat
    is_alive: bool
    reason: str


def heartbeat_path(node: str) -> Path:
    return Path(settings.WORKER_HEARTBEAT_DIR) / f"{node}.json"


def heartbeat_write(*, node: str, queues: list[str], state: str) -> None:
    """Replace the worker's heartbeat file at once (a reader never sees half of one)."""
    path = heartbeat_path(node)
    path.parent.mkdir(parents=True, exist_ok=True)
    beat = {
        "node": node,
        "pid": os.getpid(),
        "queues": queues,
        "state": state,
        "beat_at": time.time(),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(beat))
    os.replace(temporary, path)


def heartbeat_remove(node: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        heartbeat_path(node).unlink()


def heartbeats_read() -> list[Heartbeat]:
    """Every worker heartbeat in WORKER_HEARTBEAT_DIR, by node name; unreadable files skipped."""
    found = []
    for path in sorted(Path(settings.WORKER_HEARTBEAT_DIR).glob("*.json")):
        try:
            beat = json.loads(path.read_text())
            found.append(
                Heartbeat(
                    node=str(beat["node"]),
                    pid=int(beat["pid"]),
                    queues=[str(queue) for queue in beat["queues"]],
                    state=str(beat["state"]),
                    beat_at=float(beat["beat_at"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("Skipping %s: not a worker heartbeat file", path)
    return found


def liveness(heartbeat: Heartbeat, *, max_age: float, now: float | None = None) -> Liveness:
    """Whether the worker that wrote this heartbeat is alive: its process runs and beats."""
    age = heartbeat.age(time.time() if now is None else now)
    if not _process_runs(heartbeat.pid):
        return Liveness(heartbeat, False, f"its process (pid {heartbeat.pid}) is gone")
    if age > max_age:
        return Liveness(
            heartbeat,
            False,
            f"its last heartbeat is {age:.1f} s old, more than {max_age:g} s: "
            "its main process is stuck",
        )
    doing = (
        "waiting to reconnect to the broker"
        if heartbeat.state == CONNECTING
        else f"consuming {', '.join(heartbeat.queues)}"
    )
    return Liveness(heartbeat, True, f"beat {age:.1f} s ago, {doing}")


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    # A process killed but not yet reaped by its parent still answers: a zombie is gone.
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Write the worker's heartbeat file from the event loop, every WORKER_HEARTBEAT_INTERVAL.

    Its timer entry fires only while the event loop turns, which is the
    point: a loop blocked for good stops the beats. Stopped for a reconnect,
    the consumer beats between its attempts instead; the file is removed when
    the worker stops.
    """

    label = "WorkerHeartbeat"

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.tref = None

    def start(self, c):
        self.beat(c, CONSUMING)
        self.tref = c.timer.call_repeatedly(
            settings.WORKER_HEARTBEAT_INTERVAL, self.beat, (c, CONSUMING)
        )

    @staticmethod
    def beat(c, state: str) -> None:
        queues = sorted(c.app.amqp.queues.consume_from or c.app.amqp.queues)
        try:
            heartbeat_write(node=c.hostname, queues=queues, state=state)
        except OSError as exc:
            # A full disk must not stop the worker; the probe will say it is stale.
            logger.warning("Could not write the worker's heartbeat file: %s", exc)

    def stop(self, c):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def close(self, c):
        # Only when the worker stops: a reconnect stops the step but does not close it.
        self.stop(c)
        heartbeat_remove(c.hostname)

    shutdown = close
