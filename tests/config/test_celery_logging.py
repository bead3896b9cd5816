"""A worker's and beat's INFO lines leave out the tasks beat runs every few seconds."""

import logging

import pytest
from celery.app import trace

import config.celery  # noqa: F401  (attaches the filter to Celery's loggers)

HOUSEKEEPING = "orders.saga_check_deadlines"


def record(logger: str, level: int, message: str, args) -> logging.LogRecord:
    return logging.getLogger(logger).makeRecord(logger, level, __file__, 1, message, args, None)


def shown(line: logging.LogRecord) -> bool:
    return logging.getLogger(line.name).filter(line)


@pytest.mark.parametrize(
    ("logger", "message", "args"),
    [
        ("celery.worker.strategy", trace.LOG_RECEIVED, ({"name": HOUSEKEEPING, "id": "1"},)),
        ("celery.app.trace", trace.LOG_SUCCESS,
         ({"name": HOUSEKEEPING, "id": "1", "runtime": 0.01, "return_value": 0},)),
        ("celery.beat", "Scheduler: Sending due task %s (%s)", (HOUSEKEEPING, HOUSEKEEPING)),
    ],
)  # fmt: skip
def test_a_periodic_tasks_routine_lines_are_left_out(logger, message, args):
    assert not shown(record(logger, logging.INFO, message, args))


def test_a_deliverys_lines_and_a_periodic_tasks_failure_stay():
    delivery = {"name": "payments.charge_for_order", "id": "2", "runtime": 0.2, "return_value": 1}
    assert shown(record("celery.app.trace", logging.INFO, trace.LOG_SUCCESS, (delivery,)))
    failure = {"name": HOUSEKEEPING, "id": "3", "exc": "boom", "description": "raised"}
    assert shown(record("celery.app.trace", logging.ERROR, trace.LOG_FAILURE, (failure,)))
