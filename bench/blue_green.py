"""Blue-green switch, its automatic rollback and an abort: `python -m bench.blue_green`.

Runs the end-to-end tests in `tests/console/runbooks/test_blue_green_live.py` (a real
3-node cluster on loopback, a real Celery worker, real releases built from this tree,
one patched to crash at start) and collects the figures they print:

  BLUE-GREEN 3 -> 3                  time, the 50/s writer's report
  BLUE-GREEN crashing release ...    the writer's report while the run rolls itself back
  BLUE-GREEN aborted after the ...   the same, an operator aborting with a new member leading

The writer is `daemon/localcluster/writer.py` (a refused attempt goes to the next node
in service, learnt from the layout on disk; failed = never acknowledged within 5 s);
every acknowledged id is checked on every final node. Writes
bench/results/blue_green-<time>.json.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/console/runbooks/test_blue_green_live.py"
FIGURE = re.compile(r"(BLUE-GREEN [^:]*): (.*)$")


def main() -> int:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly", TEST, *sys.argv[1:]],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    figures = {
        match.group(1): match.group(2)
        for line in done.stdout.splitlines()
        if (match := FIGURE.search(line.strip()))
    }
    result = {
        "passed": done.returncode == 0,
        "figures": figures,
        "wallS": round(time.monotonic() - started, 1),
        "summary": done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else [],
    }
    out = ROOT / "bench" / "results" / f"blue_green-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if done.returncode != 0:
        print(done.stdout[-4000:], file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
