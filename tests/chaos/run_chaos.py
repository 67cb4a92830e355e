"""`make chaos`: the long randomized robustness run, in namespaces of its own.

Prints the seed first (so a failure can be replayed with CHAOS_SEED=...), then a
summary per fault and the checker's verdict; exits non-zero on any lost
acknowledged execution, unrecovered fault or divergence.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile

from tests.chaos.netns import run_in_private_netns, why_no_netns


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--random", type=int, default=40)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--hold-s", type=float, default=3.0)
    parser.add_argument("--time-bound-s", type=float, default=900.0)
    args = parser.parse_args()
    reason = why_no_netns()
    if reason is not None:
        raise SystemExit(f"cannot run the chaos suite here: {reason}")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"chaos seed {seed} (replay: make chaos CHAOS_SEED={seed})", flush=True)
    with tempfile.TemporaryDirectory(prefix="chaos-") as base:
        result = run_in_private_netns(
            "tests.chaos.robustness",
            base,
            "--random", str(args.random),
            "--seed", str(seed),
            "--hold-s", str(args.hold_s),
            "--time-bound-s", str(args.time_bound_s),
            timeout_s=args.time_bound_s + 300,
        )  # fmt: skip
    for fault in result["faults"]:
        print(json.dumps(fault))
    summary = {k: v for k, v in result.items() if k not in ("faults", "check")}
    summary["checkOk"] = result["check"]["ok"]
    print(json.dumps(summary))
    ok = (
        result["check"]["ok"]
        and result["ackedLost"] == 0
        and result["faultsSurvived"] == result["faultsRun"]
        and result["divergences"] == 0
        and result["converged"]
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
