#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError:
        # One line, not a traceback: the usual cause is a virtualenv that is not the one the
        # requirements went into.
        raise SystemExit(
            "Couldn't import Django: install examples/django/requirements.txt into the Python "
            f"running this ({sys.executable}), or activate the virtualenv that has it"
        ) from None
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
