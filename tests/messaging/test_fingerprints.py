"""A dead letter's fingerprint: one cause, one fingerprint, whatever the values in its message."""

from messaging.fingerprints import ROOT, fingerprint_of, innermost_own_frame, message_normalise

OURS = str(ROOT / "payments" / "handlers.py")
THEIRS = "/usr/lib/python3.12/site-packages/celery/app/trace.py"


def traceback_through(*frames: tuple[str, str], last: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for path, function in frames:
        lines += [f'  File "{path}", line 12, in {function}', "    something()"]
    return "\n".join([*lines, last])


def test_the_values_in_a_message_are_replaced_so_that_one_cause_reads_the_same():
    first = message_normalise(
        "order 3f2b8c1e-1f7a-4a51-9c5e-1b2a3c4d5e6f: stock 'SKU-1' short by 3"
        " at 2026-12-01T10:00:00Z"
    )
    second = message_normalise(
        'order 0a1b2c3d-0000-4000-8000-000000000000: stock "SKU-22" short by 17 at 2026-11-30 09:12'
    )
    assert first == second == "order <uuid>: stock <value> short by <n> at <time>"


def test_the_innermost_frame_of_our_code_is_kept_not_the_frameworks():
    text = traceback_through(
        (THEIRS, "trace_task"), (OURS, "charge_for_order"), (THEIRS, "execute"), last="KeyError: 1"
    )
    assert innermost_own_frame(text) == "payments/handlers.py:charge_for_order"
    assert innermost_own_frame(traceback_through((THEIRS, "run"), last="KeyError: 1")) == ""


def test_letters_of_one_cause_share_a_fingerprint_and_another_cause_does_not():
    def fingerprint(error: str, handler: str = "payments.charge_for_order", frame=OURS):
        text = traceback_through((THEIRS, "trace_task"), (frame, "charge"), last=error)
        return fingerprint_of(
            handler=handler, reason="retries_exhausted", error=error, traceback_text=text
        )

    one = fingerprint("RuntimeError: order 17 failed after 5.5 s")
    assert one.exception_type == "RuntimeError"
    assert one.message == "order <n> failed after <n> s"
    assert one.frame == "payments/handlers.py:charge"
    assert fingerprint("RuntimeError: order 99 failed after 0.1 s").digest == one.digest
    assert fingerprint("ValueError: order 17 failed after 5.5 s").digest != one.digest
    assert fingerprint("RuntimeError: no card for order 17").digest != one.digest
    assert (
        fingerprint("RuntimeError: order 17 failed after 5.5 s", handler="x.y").digest != one.digest
    )
    other_frame = str(ROOT / "inventory" / "services.py")
    assert (
        fingerprint("RuntimeError: order 1 failed after 1 s", frame=other_frame).digest
        != one.digest
    )


def test_a_letter_that_never_reached_a_handler_is_fingerprinted_by_its_sentence():
    found = fingerprint_of(
        handler="probe.nope", reason="unknown_task", error="no task named 'probe.nope'",
        traceback_text="",
    )  # fmt: skip
    assert (found.exception_type, found.message, found.frame) == ("", "no task named <value>", "")
