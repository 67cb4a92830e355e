"""Memory of the replicated state with N execution records applied, and after a snapshot.

`python -m bench.memory --records 1000000`: one process builds a `ReplicatedState`
(daemon/state.py), applies N records the way a node does (`record_executions` batches
of `--batch`, each record shaped like `DaemonNode.execute`'s), and reports its RSS
before, after, after serializing a snapshot (pysyncobj's own `_serialize`, pickled as
its dump file is) and after loading that snapshot into a fresh state, which is what a
restarted or snapshot-installing node holds. It measures the state machine only; a
running node adds the Raft log since its last snapshot (`raft.snapshotIntervalOps`
entries at most) and ~45 MiB of interpreter, HTTP server and pysyncobj.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import sys
import time
from typing import Any

from bench.common import machine_info, rss_mib, save_result
from daemon.contract import format_time
from daemon.ids import new_record_id
from daemon.state import FEED_WINDOW, HISTORY_PER_OPERATION, ReplicatedState

OPERATIONS = 20


def record(i: int, now: float) -> dict[str, Any]:
    return {
        "id": new_record_id(),
        "operationId": f"op-{i % OPERATIONS}",
        "status": "success",
        "duration": 0.123,
        "startedAt": format_time(now),
        "finishedAt": format_time(now),
        "finishedAtEpoch": now,
        "node": "unrdf-daemon-0",
        "attempts": 1,
        "cached": False,
        "error": None,
        "result": {"ok": True},
    }


def run(records: int, batch: int) -> dict[str, Any]:
    import os

    pid = os.getpid()
    gc.collect()
    base = rss_mib(pid)
    state = ReplicatedState()
    started = time.monotonic()
    now = time.time()
    for start in range(0, records, batch):
        chunk = [record(i, now + i / 1000) for i in range(start, min(records, start + batch))]
        state.record_executions(chunk, _doApply=True)
    apply_s = time.monotonic() - started
    gc.collect()
    loaded = rss_mib(pid)
    dump = pickle.dumps(state._serialize(), protocol=pickle.HIGHEST_PROTOCOL)
    gc.collect()
    after_dump = rss_mib(pid)
    restored = ReplicatedState()
    restored._deserialize(pickle.loads(dump))
    digest_equal = restored.digest == state.digest
    del state, dump
    gc.collect()
    restored_rss = rss_mib(pid)
    return {
        "records": records,
        "batch": batch,
        "applyS": round(apply_s, 1),
        "recordsPerS": round(records / apply_s),
        "feedWindow": FEED_WINDOW,
        "historyPerOperation": HISTORY_PER_OPERATION,
        "operations": OPERATIONS,
        "rssBaseMiB": base,
        "rssWithRecordsMiB": loaded,
        "stateMiB": round(loaded - base, 1),
        "snapshotBytes": len(pickle.dumps(restored._serialize())),
        "rssAfterSnapshotMiB": after_dump,
        "rssOfRestoredStateOnlyMiB": restored_rss,
        "restoredDigestEqual": digest_equal,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args(argv)
    command = " ".join(["python -m bench.memory", *sys.argv[1:]])
    data = {"command": command, "machine": machine_info(), **run(args.records, args.batch)}
    path = save_result("memory", data)
    print(json.dumps(data, indent=1, default=str))
    print(f"-> {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
