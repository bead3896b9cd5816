"""The shop's state as gauges, read when the web's /metrics is scraped, not counted as it goes.

The outbox's backlog, the relay's last run, each queue's depth and
consumers, the sagas still open, the gateway's circuit breaker and each
stream processor's lag are facts of the shared database, broker and Redis,
not of one process. They are read by the figures of the staff dashboard
(``live.figures``), the same reads it makes every few seconds: a few
indexed queries and one broker round trip per queue. Only the web's
/metrics serves them, so a sum over the workers' exporters never counts
them twice; several web processes report the same values (take the max).

A part that fails (the database away, say) is left out of the scrape and
reported by ``eventshop_scrape_collector_success`` 0, logged; the others
and the counters still answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pybreaker
from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from live.figures.broker import QueueProbe, default_probe
from live.figures.business import processors
from live.figures.flow import sagas
from live.figures.gateway import gateway_breaker
from live.figures.outbox import outbox

logger = logging.getLogger(__name__)

BREAKER_STATES = (pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN)


def _gauge(name: str, documentation: str, value: float | None = None, **kwargs):
    gauge = GaugeMetricFamily(name, documentation, **kwargs)
    if value is not None:
        gauge.add_metric([], value)
    return gauge


def outbox_metrics() -> Iterator[Metric]:
    figures = outbox(now=timezone.now())
    yield _gauge(
        "eventshop_outbox_pending_messages",
        "Messages committed to the outbox and not yet dispatched.",
        figures["backlog"],
    )
    yield _gauge(
        "eventshop_outbox_oldest_pending_age_seconds",
        "How long the oldest message not yet dispatched has waited (0 when none waits).",
        figures["oldest_pending_age_seconds"] or 0.0,
    )
    relay = figures["relay"]
    yield _gauge(
        "eventshop_relay_last_run_age_seconds",
        "How long ago the outbox relay last ran, by any worker or relay_outbox (absent: never).",
        relay["last_run_age_seconds"],
    )


def queue_metrics(probe: QueueProbe) -> Iterator[Metric]:
    reading = probe.read(list(settings.MESSAGING_QUEUES))
    yield _gauge(
        "eventshop_broker_reachable",
        "1 when the broker answered for the queue depths, 0 when it did not (or cannot count).",
        1 if reading.is_available else 0,
    )
    depth = GaugeMetricFamily(
        "eventshop_queue_depth",
        "Messages ready in an app queue (not those a worker holds: in flight, or a retry's wait).",
        labels=["queue"],
    )
    consumers = GaugeMetricFamily(
        "eventshop_queue_consumers", "Consumers of an app queue.", labels=["queue"]
    )
    for name, count in reading.queues.items():
        if count.depth is not None:
            depth.add_metric([name], count.depth)
        if count.consumers is not None:
            consumers.add_metric([name], count.consumers)
    yield depth
    yield consumers


def saga_metrics() -> Iterator[Metric]:
    gauge = GaugeMetricFamily(
        "eventshop_sagas",
        "Orchestrated orders' sagas in each open state (running, compensating, needs_attention).",
        labels=["state"],
    )
    for state, count in sagas()["by_state"].items():
        gauge.add_metric([state], count)
    yield gauge


def breaker_metrics() -> Iterator[Metric]:
    found = gateway_breaker()
    yield _gauge(
        "eventshop_gateway_breaker_shared",
        "1 when the card gateway's circuit breaker is shared through Redis (then its state is "
        "below), 0 when each payments process keeps its own.",
        1 if found["is_shared"] else 0,
    )
    if not found["is_shared"]:
        return
    state = GaugeMetricFamily(
        "eventshop_gateway_breaker_state",
        "The card gateway's circuit breaker: 1 for its state, 0 for the others.",
        labels=["state"],
    )
    for name in BREAKER_STATES:
        state.add_metric([name], 1 if found["state"] == name else 0)
    yield state
    yield _gauge(
        "eventshop_gateway_breaker_failures",
        "Failed gateway calls in a row, as the breaker counts them.",
        found["failures"],
    )


def processor_metrics() -> Iterator[Metric]:
    found = processors(now=timezone.now())
    families = {
        "lag_entries": GaugeMetricFamily(
            "eventshop_stream_processor_lag_entries",
            "Entries of the event log a stream processor has still to read, when it last looked.",
            labels=["processor"],
        ),
        "lag_seconds": GaugeMetricFamily(
            "eventshop_stream_processor_lag_seconds",
            "How far behind the log's newest entry a stream processor was, when it last looked.",
            labels=["processor"],
        ),
        "heartbeat_age_seconds": GaugeMetricFamily(
            "eventshop_stream_processor_heartbeat_age_seconds",
            "How long ago a stream processor last beat (every 5 s while it runs).",
            labels=["processor"],
        ),
    }
    for row in found:
        for key, family in families.items():
            if row[key] is not None:
                family.add_metric([row["processor"]], row[key])
    yield from families.values()


class ShopCollector(Collector):
    """The gauges above, each part read at scrape time and reported on its own."""

    def __init__(self, probe: QueueProbe | None = None) -> None:
        self.probe = probe or default_probe

    def parts(self) -> dict[str, Callable[[], Iterator[Metric]]]:
        return {
            "outbox": outbox_metrics,
            "queues": lambda: queue_metrics(self.probe),
            "sagas": saga_metrics,
            "gateway_breaker": breaker_metrics,
            "stream_processors": processor_metrics,
        }

    def collect(self) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            "eventshop_scrape_collector_success",
            "1 when a part of the shop's gauges was read for this scrape, 0 when it failed.",
            labels=["collector"],
        )
        for name, part in self.parts().items():
            try:
                metrics = list(part())
            except Exception:
                # A scrape that fails whole would hide the counters too; the
                # failure is a sample of its own and a log line with its cause.
                logger.warning("Metrics: the %s gauges could not be read", name, exc_info=True)
                success.add_metric([name], 0)
                continue
            success.add_metric([name], 1)
            yield from metrics
        yield success
