"""The websocket benchmark's writer, in its own process (like the collector):
`python -m bench.console_append --count N --rate R --cluster NAME --out FILE`.

Appends N `bench.tick` events through `console.events.journal.append` at a steady
rate (each in its own autocommit transaction, so the wake-up goes out at once), with
the wall-clock time of the append in the payload; writes the ids to --out as JSON.
Run with the environment of the daphne it feeds (DATABASE_URL, REDIS_URL or not).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--cluster", default="bench")
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import django

    django.setup()
    from console.clusters.models import Cluster
    from console.events import journal

    cluster = Cluster.objects.get(name=args.cluster)
    ids: list[int] = []
    late: list[float] = []
    start = time.monotonic()
    for n in range(args.count):
        due = start + n / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            late.append(-delay)
        event = journal.append("bench.tick", actor="system", cluster=cluster, n=n, t=time.time())
        ids.append(event.id)
    elapsed = time.monotonic() - start
    summary = {
        "ids": ids,
        "elapsedS": round(elapsed, 3),
        "achievedRate": round(args.count / elapsed, 1),
        "lateCount": len(late),
        "maxLateMs": round(max(late, default=0.0) * 1000, 1),
    }
    args.out.write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
