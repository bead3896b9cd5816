import os

from celery import current_task

from messaging.consumers import handler
from messaging.messages import Envelope
from messaging.publishing import publish

from .events import ProbeEchoed, ProbeFanned, ProbeFatal, ProbePinged, ProbeTroubled, RecordProbe
from .models import ProbeEffect, ProbeSwitch


def _effect(name: str, probe_id: str, envelope: Envelope) -> None:
    ProbeEffect.objects.create(
        probe_id=probe_id,
        handler=name,
        message_id=envelope.message_id,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        worker=current_task.request.hostname or "",
        routing_key=(current_task.request.delivery_info or {}).get("routing_key") or "",
    )


@handler(ProbePinged, queue="probe_a")
def record_ping(event: ProbePinged, envelope: Envelope) -> None:
    _effect("record_ping", event.probe_id, envelope)


@handler(ProbePinged, queue="probe_b")
def echo_ping(event: ProbePinged, envelope: Envelope) -> None:
    _effect("echo_ping", event.probe_id, envelope)
    publish(ProbeEchoed(probe_id=event.probe_id))


@handler(ProbeEchoed, queue="probe_a")
def record_echo(event: ProbeEchoed, envelope: Envelope) -> None:
    _effect("record_echo", event.probe_id, envelope)


def _effect_unless_switched_on(name: str, probe_id: str, envelope: Envelope) -> None:
    _effect(name, probe_id, envelope)
    if ProbeSwitch.objects.filter(probe_id=probe_id, is_failing=True).exists():
        raise RuntimeError(f"probe {probe_id} is switched to fail")


@handler(ProbeTroubled, queue="probe_a")
def fail_while_switched_on(event: ProbeTroubled, envelope: Envelope) -> None:
    _effect_unless_switched_on("fail_while_switched_on", event.probe_id, envelope)


@handler(ProbeFanned, queue="probe_c")
def fanned_record(event: ProbeFanned, envelope: Envelope) -> None:
    _effect("fanned_record", event.probe_id, envelope)


@handler(ProbeFanned, queue="probe_c")
def fanned_record_again(event: ProbeFanned, envelope: Envelope) -> None:
    _effect("fanned_record_again", event.probe_id, envelope)


@handler(ProbeFanned, queue="probe_d")
def fanned_fail_while_switched_on(event: ProbeFanned, envelope: Envelope) -> None:
    _effect_unless_switched_on("fanned_fail_while_switched_on", event.probe_id, envelope)


@handler(RecordProbe, queue="probe_b")
def record_probe(command: RecordProbe, envelope: Envelope) -> None:
    _effect("record_probe", command.probe_id, envelope)


@handler(ProbeFatal, queue="probe_e")
def exit_worker(event: ProbeFatal, envelope: Envelope) -> None:
    # The whole process goes, as a segfault or the OOM killer would take it:
    # no exception, no ack, the message back on the queue.
    os._exit(1)
