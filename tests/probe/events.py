from messaging.messages import Command, Event


class ProbePinged(Event):
    probe_id: str
    note: str = ""


class ProbeEchoed(Event):
    probe_id: str


class ProbeTroubled(Event):
    probe_id: str


class RecordProbe(Command):
    probe_id: str
