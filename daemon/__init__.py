"""One node of the Raft-replicated daemon cluster. Imports nothing from Django."""

import os

# DAEMON_VERSION lets a rolling upgrade label builds without a new wheel.
__version__ = os.environ.get("DAEMON_VERSION", "0.1.0")
