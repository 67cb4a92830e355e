"""Rolling upgrade, quick rollback and automatic rollback: `python -m bench.upgrade`.

Runs end-to-end tests (a real cluster on loopback, a real Celery worker, real releases
built from this tree) and collects the figures they print:

  --nodes 3 (default): `tests/console/runbooks/test_upgrade_live.py`
    UPGRADE 3 nodes          time, leader changes, the 50/s writer's report
    QUICK ROLLBACK 3 nodes   time, the writer's report
    CRASHING RELEASE         the writer's report while the run rolls itself back
  --nodes 5: `tests/console/runbooks/test_upgrade_faults_five.py`
    UPGRADE 5 nodes          time, leader changes, the writer's report
  --all-fail (with either): the all-fail test of `test_upgrade_faults.py` (3 nodes)
    ALL-FAIL RELEASE         time to roll back, the writer's report

The writer is `daemon/localcluster/writer.py` (a refused attempt goes to the next node;
failed = never acknowledged within 5 s); every acknowledged id is checked on every node.
Writes bench/results/upgrade-<nodes>n-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = {
    3: ["tests/console/runbooks/test_upgrade_live.py"],
    5: ["tests/console/runbooks/test_upgrade_faults_five.py"],
}
ALL_FAIL = (
    "tests/console/runbooks/test_upgrade_faults.py::"
    "test_a_release_whose_executions_all_fail_is_rolled_back_by_the_error_ratio_gate"
)
# pytest's progress dots may precede a figure printed by the test on the same line.
FIGURE = re.compile(
    r"^[.sxFE]*(UPGRADE \d+ nodes|QUICK ROLLBACK \d+ nodes|CRASHING RELEASE[^:]*"
    r"|ALL-FAIL RELEASE[^:]*|STEPS \d+ nodes): (.*)$"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upgrade", description=__doc__)
    parser.add_argument("--nodes", type=int, choices=sorted(TESTS), default=3)
    parser.add_argument("--all-fail", action="store_true", help="also the all-fail release")
    args = parser.parse_args(argv)
    tests = TESTS[args.nodes] + ([ALL_FAIL] if args.all_fail else [])
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly", *tests],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    figures = {
        match.group(1): match.group(2)
        for line in done.stdout.splitlines()
        if (match := FIGURE.match(line.strip()))
    }
    result = {
        "nodes": args.nodes,
        "tests": tests,
        "passed": done.returncode == 0,
        "figures": figures,
        "wallS": round(time.monotonic() - started, 1),
        "summary": done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else [],
    }
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = ROOT / "bench" / "results" / f"upgrade-{args.nodes}n-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if done.returncode != 0:
        print(done.stdout[-4000:], file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
