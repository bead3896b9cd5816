#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import signal
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    if sys.argv[1:2] == ["runserver"]:
        # runserver stops cleanly (status 0) on Ctrl-C but dies of SIGTERM, which
        # is how honcho (make run) and other process managers stop it; Django's
        # autoreloader, off in make run, would have handled it. Read it as Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
