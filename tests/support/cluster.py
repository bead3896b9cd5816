"""A RabbitMQ cluster of three nodes of its own on this machine, beside the machine's own node.

Each node runs the installed ``rabbitmq-server`` as the ``rabbitmq`` user
(its files under a temporary folder owned by that user), listens on a free
port of 127.0.0.1 given in a configuration file of its own (the system-wide
one pins 5672) and shares the machine's Erlang cookie, which
``rabbitmqctl`` finds through the rabbitmq user's HOME. The machine's own
node, ``rabbit@localhost``, is never touched: every command names its node
with ``-n``. Nodes are killed, not stopped politely, when the cluster is
torn down, and also at exit if a test was interrupted: no beam is left.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQ_HOME = "/var/lib/rabbitmq"  # where the machine's Erlang cookie is
STARTUP_TIMEOUT = 90.0
# The vhost the cluster tests and the benchmark run on.
CLUSTER_VHOST = "shop"


def cluster_available() -> tuple[bool, str]:
    """Whether this machine can run a cluster of its own, and why not."""
    if os.geteuid() != 0:
        return False, "starting RabbitMQ nodes as the rabbitmq user needs root"
    if not Path(RABBITMQ_SERVER).exists() or shutil.which("rabbitmqctl") is None:
        return False, "the rabbitmq-server package is not installed"
    try:
        pwd.getpwnam("rabbitmq")
    except KeyError:
        return False, "there is no rabbitmq user"
    return True, ""


def cluster_beams(root: str = "") -> list[psutil.Process]:
    """The Erlang VMs of clusters of ours (of the one under ``root``, if given) still running."""
    found = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "beam.smp":
            with contextlib.suppress(psutil.Error):
                base = process.environ().get("RABBITMQ_MNESIA_BASE", "")
                if f"{tempfile.gettempdir()}/rabbit-cluster-" in base and base.startswith(root):
                    found.append(process)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rabbitmqctl(node: str, *args: str, timeout: float = 60) -> str:
    """``rabbitmqctl -n node …`` (as root: the Debian wrapper runs it as rabbitmq); its output."""
    done = subprocess.run(
        [shutil.which("rabbitmqctl") or "rabbitmqctl", "-q", "-n", node, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl -n {node} {' '.join(args)}: {done.stderr or done.stdout}")
    return done.stdout


@dataclass
class Node:
    """One node: its name, its AMQP port, its folder; the process while it runs."""

    name: str
    port: int
    dist_port: int
    base: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def ctl(self, *args: str, timeout: float = 60) -> str:
        return rabbitmqctl(self.name, *args, timeout=timeout)

    @property
    def pid_file(self) -> Path:
        return self.base / "run" / "rabbit.pid"

    def environment(self) -> dict[str, str]:
        config = self.base / "rabbitmq.conf"
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": RABBITMQ_HOME,
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "ERL_CRASH_DUMP": str(self.base / "log" / "erl_crash.dump"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def prepare(self) -> None:
        for folder in ("mnesia", "log", "run"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            # Two cores and four nodes: each keeps to a small share of memory and disk.
            "vm_memory_high_watermark.relative = 0.2\n"
            "disk_free_limit.absolute = 50MB\n"
        )
        # An env file of our own: the system-wide one names rabbit@localhost.
        (self.base / "rabbitmq-env.conf").write_text("")
        # No plugins: the management plugin's port would clash with the machine's node.
        (self.base / "enabled_plugins").write_text("[].\n")
        user = pwd.getpwnam("rabbitmq")
        for path in [self.base, *self.base.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)

    def start(self) -> None:
        """Start the node's Erlang VM and return once the node runs its app."""
        user = pwd.getpwnam("rabbitmq")
        log = (self.base / "log" / "console.out").open("ab")
        self.process = subprocess.Popen(
            [RABBITMQ_SERVER],
            cwd=RABBITMQ_HOME, env=self.environment(), user=user.pw_uid, group=user.pw_gid,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.wait_running()

    def wait_running(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"node {self.name} exited:\n{self.console()}")
            try:
                self.ctl("await_startup", "--timeout", "10", timeout=20)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    console = self.console()
                    raise RuntimeError(f"node {self.name} did not start:\n{console}") from None
                time.sleep(0.5)

    def console(self) -> str:
        with contextlib.suppress(OSError):
            return (self.base / "log" / "console.out").read_text(errors="replace")[-4000:]
        return ""

    def beam_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.pid_file.read_text().strip())
        return None

    def kill(self) -> None:
        """``kill -9`` of the node's beam.smp (and of what it started): a crash, no goodbye."""
        pid = self.beam_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None
        with contextlib.suppress(OSError):
            self.pid_file.unlink()

    def stop(self) -> None:
        """Stop the node as an operator would (``rabbitmqctl stop``)."""
        self.ctl("stop", timeout=120)
        if self.process is not None:
            self.process.wait(timeout=60)
            self.process = None

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Cluster:
    """Three nodes joined to the first; ``url(vhost)`` lists them all, ``;`` between them."""

    def __init__(self, size: int = 3) -> None:
        # Names of their own: two clusters (a test and the benchmark) may run at once.
        token = uuid.uuid4().hex[:6]
        self.root = Path(tempfile.mkdtemp(prefix="rabbit-cluster-"))
        self.nodes = [
            Node(f"c{index}_{token}@localhost", free_port(), free_port(), self.root / f"c{index}")
            for index in range(1, size + 1)
        ]
        os.chown(self.root, pwd.getpwnam("rabbitmq").pw_uid, -1)
        self._closed = False
        atexit.register(self.close)

    def start(self) -> Cluster:
        try:
            for node in self.nodes:
                node.prepare()
                node.start()
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.name)
                node.ctl("start_app")
            running = self.running_nodes()
            if running != {node.name for node in self.nodes}:
                raise RuntimeError(f"the cluster runs only {sorted(running)}")
        except BaseException:
            self.close()
            raise
        return self

    def running_nodes(self) -> set[str]:
        """The nodes the cluster says are running, asked of one that runs."""
        status = json.loads(self.running_node().ctl("cluster_status", "--formatter", "json"))
        return set(status["running_nodes"])

    def add_vhost(self, vhost: str) -> None:
        first = self.running_node()
        first.ctl("add_vhost", vhost)
        first.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def url(self, vhost: str) -> str:
        return ";".join(node.url(vhost) for node in self.nodes)

    def running_node(self) -> Node:
        return next(node for node in self.nodes if node.is_running)

    def node_named(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def queues(self, vhost: str, *, consumers: bool = False) -> list[dict]:
        """Each queue's name, type, leader, members and members online, as a running node says;
        and, if asked, its messages ready and unacknowledged and its consumers."""
        columns = ["name", "type", "leader", "members", "online", "messages"]
        if consumers:
            columns += ["messages_ready", "messages_unacknowledged", "consumers"]
        out = self.running_node().ctl("list_queues", "-p", vhost, *columns, "--formatter", "json")
        return json.loads(out)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)
