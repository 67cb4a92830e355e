#!/usr/bin/env python
"""Django's command-line utility; `manage.py up` starts the whole local system."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    from console.env import SettingsError

    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except SettingsError as err:
        sys.exit(f"console: configuration error: {err}")


if __name__ == "__main__":
    main()
