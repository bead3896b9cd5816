"""The settings mypy's Django plugin loads (pyproject.toml), never a process's.

The tests' settings, and the names the benchmark's code reads from its own
settings module (bench.settings), which the tests do not load.
"""

from bench.settings import APP_QUEUES, NAIVE_QUEUES, PROBE_QUEUE  # noqa: F401

from .test import *  # noqa: F403
