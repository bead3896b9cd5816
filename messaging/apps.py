from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging backbone"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the subscription checks)
            logs,
            receivers,  # noqa: F401  (the log fields, and JSON logs in workers)
        )

        logs.warnings_logged()
