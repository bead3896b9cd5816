"""The lock files hold what their sources ask for, and every package in them is pinned."""

import re

from tests.support.paths import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)")


def pins(name: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / name).read_text().splitlines():
        match = PIN.match(line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def requirement_lines(name: str) -> list[str]:
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("-")]


def test_every_source_requirement_is_pinned_and_locked_at_that_version():
    for source, lock in (("requirements.in", "requirements.txt"),
                         ("requirements-dev.in", "requirements-dev.txt")):  # fmt: skip
        asked, locked = pins(source), pins(lock)
        assert len(asked) == len(requirement_lines(source)), f"an unpinned line in {source}"
        assert {name: locked.get(name) for name in asked} == asked, lock


def test_every_locked_package_is_pinned_and_the_two_locks_agree():
    runtime, development = pins("requirements.txt"), pins("requirements-dev.txt")
    for lock in ("requirements.txt", "requirements-dev.txt"):
        assert len(pins(lock)) == len(requirement_lines(lock)), f"an unpinned line in {lock}"
    shared = set(runtime) & set(development)
    assert {name: development[name] for name in shared} == {name: runtime[name] for name in shared}
