from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (declaring a handler subscribes it)
