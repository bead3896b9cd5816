from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (declaring a handler subscribes it)
