from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"
    verbose_name = "Real time"

    def ready(self) -> None:
        from messaging.signals import delivery_retried

        from . import receivers

        delivery_retried.connect(receivers.count_retry, dispatch_uid="live.count_retry")
