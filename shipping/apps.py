from django.apps import AppConfig


class ShippingConfig(AppConfig):
    name = "shipping"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (declaring a handler subscribes it)
