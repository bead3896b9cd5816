from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"

    def ready(self) -> None:
        from . import handlers  # noqa: F401  (declaring a handler subscribes it)
