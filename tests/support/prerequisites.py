"""What a test needs from the machine: outside CI a missing service skips it, in CI it fails."""

import os

import pytest

IN_CI = bool(os.environ.get("CI"))


def require(condition: bool, what: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available")
