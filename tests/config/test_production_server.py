"""The production start serves its own pages: gunicorn with gunicorn.conf.py and the
production settings answers 200 for the admin, the API docs, the storefront and an order page.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics.groups import group_folder
from tests.support.paths import ROOT
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def fetch(url: str, *, through_proxy: bool = True) -> tuple[int, str]:
    # As the proxy in front would send it (HTTPS was terminated there), or as a
    # supervisor's probe asks the server itself, in plain HTTP.
    headers = {"X-Forwarded-Proto": "https"} if through_proxy else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our own URL)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    """Production settings on a database of their own, static files not collected yet."""
    keep = {"PATH", "HOME", "LANG"}
    return {
        **{k: v for k, v in os.environ.items() if k in keep},
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def leave_metric_files(folder) -> None:
    """What a gunicorn killed mid-run leaves in its folder: a count of its own."""
    subprocess.run(
        [sys.executable, "-c",
         "import sys; from metrics import instruments; from metrics.groups import group_start;"
         " group_start(sys.argv[1]);"
         " instruments.messages_published.labels('OrderPlaced', 'event').inc(7)",
         str(folder)],
        cwd=ROOT, check=True, timeout=60,
    )  # fmt: skip
    assert list(folder.glob("counter_*.db"))


def test_gunicorn_serves_the_shop_under_the_production_settings(production_env, tmp_path):
    # Given a migrated database with a product and an order, and no static files collected
    manage(production_env, "migrate", "--noinput", "--verbosity", "0")
    order_id = manage(
        production_env, "shell", "--verbosity", "0", "-c",
        "from tests.orders.factories import CatalogItemFactory, OrderFactory;"
        " CatalogItemFactory(); print(OrderFactory().id)",
    ).strip()  # fmt: skip
    assert not (tmp_path / "static").exists()

    # and the metric files an earlier run of this gunicorn left behind
    port = free_port()
    metrics_folder = group_folder(tmp_path / "var" / "metrics", f"web-127.0.0.1:{port}")
    leave_metric_files(metrics_folder)

    # When gunicorn starts the way production does, with its configuration file
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**production_env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: listening(port), timeout=60, what="gunicorn to listen")

        # Then each page a newcomer opens answers 200
        pages = {}
        for path in ("/admin/login/", "/api/docs", "/", f"/orders/{order_id}/"):
            pages[path] = fetch(base + path)
        assert {path: status for path, (status, _) in pages.items()} == dict.fromkeys(pages, 200)

        # and the admin's stylesheet is served under its hashed name, from the collected files
        stylesheet = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"',
                               pages["/admin/login/"][1])  # fmt: skip
        assert stylesheet, "the login page links the admin's stylesheet by its hashed name"
        assert fetch(base + stylesheet.group(1))[0] == 200

        # and the probes answer a supervisor's plain HTTP themselves, not with a redirect:
        # liveness 200; readiness its JSON (503 here: no worker ever relayed, no broker folder)
        assert fetch(base + "/healthz", through_proxy=False) == (200, '{"status": "ok"}')
        status, body = fetch(base + "/readyz", through_proxy=False)
        assert status == 503, body
        answer = json.loads(body)
        assert answer["failing"] == ["broker", "relay"]
        assert answer["checks"]["database"]["ok"] is True

        # and so does /metrics, from this run's own emptied folder
        status, body = fetch(base + "/metrics", through_proxy=False)
        assert status == 200, body
        samples = {
            sample.name: sample
            for family in text_string_to_metric_families(body)
            for sample in family.samples
        }
        assert "eventshop_messages_published_total" not in samples  # the earlier run's
        assert samples["eventshop_outbox_pending_messages"].value == 0
        assert metrics_folder.is_dir()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(timeout=40) == 0, (tmp_path / "gunicorn.log").read_text()
        log.close()


def test_with_json_logs_each_line_of_gunicorn_is_json_and_a_request_for_an_order_names_it(
    production_env, tmp_path
):
    # Given an order, and gunicorn started with LOG_FORMAT=json (no static files needed here)
    manage(production_env, "migrate", "--noinput", "--verbosity", "0")
    order_id = manage(
        production_env, "shell", "--verbosity", "0", "-c",
        "from tests.orders.factories import OrderFactory; print(OrderFactory().id)",
    ).strip()  # fmt: skip
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {
        **production_env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "COLLECTSTATIC": "0",
        "LOG_FORMAT": "json",
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )  # fmt: skip
        try:
            wait_for(lambda: listening(port), timeout=60, what="gunicorn to listen")

            # When the API is asked for the order, and for one that does not exist
            base = f"http://127.0.0.1:{port}"
            assert fetch(f"{base}/api/orders/{order_id}/")[0] == 200
            assert fetch(f"{base}/api/orders/{uuid.uuid4()}/")[0] == 404
            wait_for(lambda: log_path.read_text().count("/api/orders/") >= 2, what="access lines")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            assert server.wait(timeout=40) == 0, log_path.read_text()

    # Then every line gunicorn and Django wrote is a JSON object, and the access line of
    # the request for the order names it; the other one names none
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    shown = [r for r in access if f"/api/orders/{order_id}/" in r["message"]]
    assert [(r["order_id"], r["correlation_id"]) for r in shown] == [(order_id, order_id)]
    missing = [r for r in access if r not in shown and "/api/orders/" in r["message"]]
    assert len(missing) == 1 and "order_id" not in missing[0]
    assert any(
        r["logger"] == "gunicorn.error" and "Booting worker" in r["message"] for r in records
    )
