"""Rolling upgrade, quick rollback and automatic rollback: `python -m bench.upgrade`.

Runs the end-to-end tests in `tests/console/runbooks/test_upgrade_live.py` (a real
3-node cluster on loopback, a real Celery worker, real releases built from this tree,
one patched to crash at start) and collects the figures they print:

  UPGRADE 3 nodes          time, leader changes, the 50/s writer's report
  QUICK ROLLBACK 3 nodes   time, the writer's report
  CRASHING RELEASE         the writer's report while the run rolls itself back

The writer is `daemon/localcluster/writer.py` (a refused attempt goes to the next node;
failed = never acknowledged within 5 s); every acknowledged id is checked on every node.
Writes bench/results/upgrade-<time>.json.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/console/runbooks/test_upgrade_live.py"
FIGURE = re.compile(r"^(UPGRADE 3 nodes|QUICK ROLLBACK 3 nodes|CRASHING RELEASE[^:]*): (.*)$")


def main() -> int:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly", TEST],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    figures = {
        match.group(1): match.group(2)
        for line in done.stdout.splitlines()
        if (match := FIGURE.match(line.strip()))
    }
    result = {
        "passed": done.returncode == 0,
        "figures": figures,
        "wallS": round(time.monotonic() - started, 1),
        "summary": done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else [],
    }
    out = ROOT / "bench" / "results" / f"upgrade-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if done.returncode != 0:
        print(done.stdout[-4000:], file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
