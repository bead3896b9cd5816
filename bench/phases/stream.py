"""The stream phase: the processors on a backlog in the event log, against a raw read of it.

Each run reads the same backlog three ways, side by side: the raw read (the
floor: consume and decode, no state), each processor from the first entry
with its projection emptied (what ``stream_processor`` does on a backlog),
and a replay of the aggregates into the shadow with its comparison (what
``replay_events`` does).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ..broker import purge_queues
from ..cli import Options
from ..report import fmt
from ..stream_backlog import stream_read_raw, stream_refill


def run(options: Options, log_dir: Path, results: dict) -> None:
    head = stream_refill(options.stream_backlog)
    print(f"  {options.stream_backlog} entries in the stream, last offset {head}", flush=True)
    for run_number in range(options.runs):
        floor = stream_read_raw(head)
        outcome = {"floor": floor["entries_per_s"], "entries": floor["entries"]}
        for name in ("aggregates", "fraud"):
            outcome[name] = process_backlog(name, head)
        outcome["replay"] = replay_backlog("aggregates")
        results["stream"].append(outcome)
        print(
            f"  stream run {run_number + 1}/{options.runs}: raw read "
            f"{fmt(outcome['floor'])} entries/s, aggregates {fmt(outcome['aggregates'])}, "
            f"fraud {fmt(outcome['fraud'])}, replay {fmt(outcome['replay'])}",
            flush=True,
        )
    # The fraud screen's verdicts went to payments' queue, which no worker reads here.
    purge_queues()


def process_backlog(name: str, head: int) -> float:
    """Entries per second of one processor taking the whole backlog into an empty projection."""
    from analytics.models import ProcessorState, Slot
    from analytics.projections import processor_named
    from analytics.replay import projection_shadow_reset
    from analytics.runner import Runner

    processor_class = processor_named(name)
    _empty_live(processor_class)
    projection_shadow_reset(processor_class)
    runner = Runner(processor_class, stop=threading.Event(), slot=Slot.LIVE, until=head)
    started = time.perf_counter()
    runner.run()
    seconds = time.perf_counter() - started
    state = ProcessorState.objects.get(processor=name, slot=Slot.LIVE)
    assert state.offset == head, f"{name} stopped at {state.offset}, not {head}"
    return (head + 1) / seconds


def replay_backlog(name: str) -> float:
    from analytics.projections import processor_named
    from analytics.replay import projection_replay

    started = time.perf_counter()
    result = projection_replay(processor_named(name), start="first")
    seconds = time.perf_counter() - started
    assert result.same, f"the replay of {name} differs from the live projection"
    assert result.offset is not None, f"the replay of {name} read nothing"
    return (result.offset + 1) / seconds


def _empty_live(processor_class) -> None:
    from django.db import transaction

    from analytics.models import ProcessorState, SeenMessage, SkippedEntry, Slot

    with transaction.atomic():
        for model in processor_class.models:
            model.objects.filter(slot=Slot.LIVE).delete()
        for model in (SeenMessage, SkippedEntry, ProcessorState):
            model.objects.filter(processor=processor_class.name, slot=Slot.LIVE).delete()
