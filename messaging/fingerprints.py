"""A dead letter's fingerprint: what its cause is, so that letters of one cause group together.

Two letters have the same cause when the same handler failed for the same
reason, with the same exception, the same message once its values are taken
out (ids, numbers, quoted values, times), in the same function of our own
code. The frame is the innermost one of this project's files, not Django's,
Celery's or kombu's: theirs is where an error surfaces, ours is where it is
fixed. Its line number is left out, so that a deploy that moves code around
does not split a group.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

# The project's root: a frame in a file under it, and not under an installed
# package's folder, is ours.
ROOT = Path(__file__).resolve().parent.parent
_NOT_OURS = ("site-packages", "dist-packages", ".venv", "/lib/python")

_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+, in (?P<function>\S+)', re.MULTILINE)
_DESCRIBED = re.compile(r"(?P<type>[A-Za-z_][\w.]*): (?P<message>.*)", re.DOTALL)
# Most specific first: a UUID or a time holds numbers of its own.
_VALUES = [
    (re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"), "<uuid>"),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
        ),
        "<time>",
    ),
    (re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""), "<value>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]{12,}\b"), "<hex>"),
    (re.compile(r"[-+]?\b\d+(?:\.\d+)?\b"), "<n>"),
]
MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class Fingerprint:
    digest: str
    exception_type: str
    message: str
    frame: str


def fingerprint_of(*, handler: str, reason: str, error: str, traceback_text: str) -> Fingerprint:
    """The fingerprint of a dead letter with this handler, reason, error and traceback."""
    exception_type, text = _exception_and_message(error, traceback_text)
    message = message_normalise(text)
    frame = innermost_own_frame(traceback_text)
    parts = "\x1f".join([handler, reason, exception_type, message, frame])
    digest = hashlib.sha256(parts.encode()).hexdigest()[:32]
    return Fingerprint(digest=digest, exception_type=exception_type, message=message, frame=frame)


def message_normalise(text: str) -> str:
    """The message with its values replaced by placeholders, its whitespace collapsed."""
    for pattern, placeholder in _VALUES:
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())[:MAX_MESSAGE_CHARS]


def innermost_own_frame(traceback_text: str) -> str:
    """``path:function`` of the innermost frame in this project's code, or "" if none."""
    own = ""
    for match in _FRAME.finditer(traceback_text):
        path = match["path"]
        if any(part in path for part in _NOT_OURS):
            continue
        try:
            relative = Path(path).resolve().relative_to(ROOT)
        except ValueError:
            continue
        own = f"{relative}:{match['function']}"
    return own


def _exception_and_message(error: str, traceback_text: str) -> tuple[str, str]:
    # A delivery's error is "Type: message" (messaging.delivery._describe);
    # the consumer's own (undecodable, unknown task...) is a plain sentence.
    found = _DESCRIBED.match(error)
    if found:
        return found["type"].rsplit(".", 1)[-1], found["message"]
    lines = traceback_text.strip().splitlines()
    found = _DESCRIBED.match(lines[-1]) if lines else None
    return (found["type"].rsplit(".", 1)[-1] if found else ""), error
