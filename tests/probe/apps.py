from django.apps import AppConfig


class ProbeConfig(AppConfig):
    name = "tests.probe"
    label = "probe"

    def ready(self) -> None:
        from tests.support import faults

        from . import handlers  # noqa: F401  (declaring a handler subscribes it)

        faults.install()
