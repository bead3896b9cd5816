"""What a handler or a service may raise to tell the backbone what became of a delivery.

Domain code imports these and nothing else of the consumer: how a delivery
is retried or dead-lettered is the backbone's business (``messaging.delivery``).
"""


class PermanentError(Exception):
    """A failure that no retry can fix: the message goes to the dead letters at once."""


class RetryLater(Exception):
    """The message arrived before something it depends on.

    Messages on different queues arrive in no guaranteed order; the retry
    (with backoff) gives the other one time to land.
    """


class DependencyUnavailable(Exception):
    """Something the handler needs is down (its circuit breaker is open).

    The delivery tries again after ``retry_in`` seconds (plus jitter) without
    using up its retries: an outage longer than the retry budget must not
    turn every message behind it into a dead letter.
    """

    def __init__(self, message: str, *, retry_in: float):
        super().__init__(message)
        self.retry_in = retry_in


class NoHandler(Exception):
    """A command was sent that no handler is subscribed to."""
