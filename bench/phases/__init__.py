"""The benchmark's phases (bench/main.py runs them in turn), and placing orders, which most use."""

from __future__ import annotations

from .. import procs
from ..environment import SCENARIO_ENV, child_env


def place_orders(scenario: str, orders: int, skus: list[str], rate: float = 0, **env: str) -> dict:
    """Run the injector (bench/inject.py) as a producer of the scenario; what it reports."""
    argv = [
        procs.python(), "-m", "bench.inject", scenario, "--orders", str(orders),
        "--rate", str(rate), "--skus", ",".join(skus),
    ]  # fmt: skip
    return procs.run_to_end("injector", argv, child_env(**{**SCENARIO_ENV[scenario], **env}))
