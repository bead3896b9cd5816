from django.apps import AppConfig


class ProbeConfig(AppConfig):
    name = "tests.probe"
    label = "probe"

    def ready(self) -> None:
        from tests.support import faults

        from . import receivers  # noqa: F401

        faults.install()
