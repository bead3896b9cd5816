from messaging.messages import Command, Event


class ProbePinged(Event):
    probe_id: str
    note: str = ""


class ProbeEchoed(Event):
    probe_id: str


class ProbeTroubled(Event):
    probe_id: str


class ProbeFanned(Event):
    """Two handlers on probe_c, then one on probe_d (see tests/messaging/test_fan_out.py)."""

    probe_id: str


class RecordProbe(Command):
    probe_id: str


class ProbeLogged(Event):
    """No handler takes it: it goes only to the event log (tests/messaging/test_eventlog.py)."""

    probe_id: str
    seq: int = 0


class ProbeFatal(Event):
    """Its handler kills the worker that runs it, every time (tests/messaging/test_quorum.py)."""

    probe_id: str
