"""The backbone's signals on the spans: a retry is an event of the delivery that failed."""

import pytest

from messaging.delivery import delivery_run
from tests.probe.events import ProbePinged
from tests.support.envelopes import envelope_of
from tests.support.probes import new_probe_id
from tests.support.retries import failing_handler
from tests.support.tracing import records

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_retried_delivery_records_when_it_comes_again(rabbitmq, exported):
    with failing_handler() as handler:
        # When a delivery fails and its retry is published
        envelope = envelope_of(ProbePinged(probe_id=new_probe_id()))
        wire = envelope.to_wire()
        outcome = delivery_run(handler=handler, args=(), kwargs={"envelope": wire}, retries=0)

    # Then its span says a retry was scheduled
    assert outcome == "retried"
    (process,) = [span for span in records(exported) if span.name == "process ProbePinged"]
    assert "retry scheduled" in process.events
