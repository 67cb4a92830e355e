"""python -m daemon.ctl ...: the same as the daemonctl command."""

from __future__ import annotations

import sys

from daemon.ctl.parser import main

if __name__ == "__main__":
    sys.exit(main())
