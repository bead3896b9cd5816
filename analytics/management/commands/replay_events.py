"""``manage.py replay_events``: rebuild a projection from the log, compare it with the live one."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from analytics.projections import PROCESSORS, UnknownProjection, processor_named
from analytics.replay import (
    ReplayError,
    ReplayResult,
    projection_replay,
    projection_swap,
    replay_start,
)
from messaging.eventlog import LogError, event_log

# Redis counts a stretch of its log entry by entry: past this many the bar
# shows no total (the count alone would hold Redis up).
TOTAL_COUNT_LIMIT = 100_000


class Command(BaseCommand):
    help = (
        "Rebuild a projection from the event log into its shadow, compare it with the live "
        "projection and print the difference (exit status 1 when they differ); --swap makes "
        "the shadow live. Nothing is published, emailed or charged during a replay."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--list", dest="list_names", action="store_true", help="print the projections' names"
        )
        parser.add_argument("--projection", metavar="NAME", help=", ".join(PROCESSORS))
        parser.add_argument(
            "--from",
            dest="start",
            default="first",
            metavar="first|OFFSET|ISO-TIME",
            help="where in the log to start (default: first, the oldest entry kept)",
        )
        parser.add_argument("--swap", action="store_true", help="make the rebuilt shadow live")

    def handle(
        self, *args, list_names=False, projection=None, start="first", swap=False, **options
    ):
        if list_names:
            for name in PROCESSORS:
                self.stdout.write(name)
            return
        if not projection:
            raise CommandError(f"name a projection with --projection: {', '.join(PROCESSORS)}")
        try:
            processor_class = processor_named(projection)
            log = event_log()
            where = replay_start(start, log=log)
        except (UnknownProjection, ReplayError, LogError) as exc:
            raise CommandError(str(exc)) from None
        result = self._replay(processor_class, where, log)
        self._print(result)
        if swap:
            projection_swap(processor_class)
            self.stdout.write(f"The shadow of {projection} is now live, at offset {result.offset}.")
            return
        if not result.same:
            raise CommandError(f"the rebuilt {projection} differs from the live one")

    def _replay(self, processor_class, where, log) -> ReplayResult:
        first = log.first() or 0
        begin = where if isinstance(where, int) else first
        bars: list[tqdm] = []
        # The offset the bar has counted up to (a log's offsets need not be consecutive).
        counted = [begin - 1]

        def progress(step) -> None:
            if not bars:
                total = None
                if step.until is not None:
                    total = log.entries_between(begin - 1, step.until, limit=TOTAL_COUNT_LIMIT)
                bars.append(
                    tqdm(total=total, unit=" entries", desc=f"Replaying {processor_class.name}",
                         file=self.stderr)
                )  # fmt: skip
            if step.offset is not None and step.offset > counted[0]:
                more = log.entries_between(counted[0], step.offset, limit=TOTAL_COUNT_LIMIT)
                bars[0].update(more or 0)
                counted[0] = step.offset

        try:
            return projection_replay(processor_class, start=where, on_progress=progress, log=log)
        finally:
            for bar in bars:
                bar.close()

    def _print(self, result: ReplayResult) -> None:
        self.stdout.write(
            f"Replayed {result.entries} entries up to offset {result.offset}. "
            f"{'Shadow and live are the same.' if result.same else 'Shadow and live differ:'}"
        )
        width = max(len(table.table) for table in result.tables)
        for table in result.tables:
            mark = "same" if table.same else "DIFFERENT"
            self.stdout.write(
                f"  {table.table:<{width}}  live {table.live_rows:>8} rows {table.live_checksum}"
                f"  shadow {table.shadow_rows:>8} rows {table.shadow_checksum}  {mark}"
            )
            for row in table.only_live:
                self.stdout.write(f"    only live:   {row}")
            for row in table.only_shadow:
                self.stdout.write(f"    only shadow: {row}")
