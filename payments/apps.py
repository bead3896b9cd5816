from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from messaging.signals import delivery_retried

        from . import handlers, receivers  # noqa: F401  (declaring a handler subscribes it)

        delivery_retried.connect(
            receivers.announce_deferral, dispatch_uid="payments.announce_deferral"
        )
