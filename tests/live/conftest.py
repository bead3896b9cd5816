"""The order flow's fixtures, for the real-time tests that run orders through the workers."""

from tests.flow.conftest import stock  # noqa: F401
