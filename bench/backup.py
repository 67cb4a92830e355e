"""Backup, verify and restore at 100,000 and 1,000,000 execution records, and the
cluster's throughput while backups are taken against the same run without.

    .venv/bin/python -m bench.backup                       # 100k and 1M records
    .venv/bin/python -m bench.backup --records 100000 --throughput-s 10

For each size: a state with that many executions (10 operations) is built in this
process and written as a backup file (its build is not measured: replaying 1M records
through Raft would take ~10 minutes here); then, measured:
- restore: `restore_layout` into a new 3-node layout (check + write the data dirs), then
  start the nodes and wait for a leader and quorum;
- backup: `POST /admin/backup` on a follower of that cluster (compaction, the cut on the
  tick thread, pickling, compression), with the file size and the tick-thread time;
- verify: `verify_in_scratch_node` on the backup just taken (check, restore into a scratch
  single node, start it, compare its summary with the manifest);
- throughput: POST /execute/noop from 16 client threads over the 3 nodes for N seconds,
  without backups and then with backups taken back to back from a follower.

The state is bounded: the feed keeps 100,000 records and each operation's history 1,000,
so "records held" is at most 100,000 (+ 10,000 in histories, the same objects) whatever
the total; 1M differs from 100k by its sequence and rollups, not by its size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import ADMIN_TOKEN, OPERATE_TOKEN, Cluster, define_noop, save_result
from daemon import backup
from daemon.contract import format_time
from daemon.restore import restore_layout, verify_in_scratch_node
from daemon.state import ReplicatedState

OPERATIONS = 10


def build_state(records: int) -> dict[str, Any]:
    state = ReplicatedState()
    now = time.time()
    for i in range(OPERATIONS):
        op_id = f"op{i}"
        state.operations[op_id] = {"id": op_id, "name": op_id, "handler": {"kind": "noop"}}
    for i in range(records):
        finished = now - (records - i) * 0.001
        state._apply_record(
            {
                "id": str(uuid.uuid4()),
                "operationId": f"op{i % OPERATIONS}",
                "status": "success" if i % 50 else "failure",
                "duration": 0.5 + (i % 7) * 0.3,
                "startedAt": format_time(finished - 0.001),
                "finishedAt": format_time(finished),
                "finishedAtEpoch": finished,
                "node": f"unrdf-daemon-{i % 3}",
                "attempts": 1,
                "cached": False,
                "error": None,
                "result": None,
            }
        )
    return backup.copy_state(state)


def throughput(cluster: Cluster, seconds: float, with_backups: bool) -> dict[str, Any]:
    stop = threading.Event()
    counts: list[int] = []
    backups: list[float] = []
    follower = next(n for n in cluster.nodes if n.name != cluster.leader().name)

    def write(node_index: int) -> None:
        done = 0
        node = cluster.nodes[node_index % len(cluster.nodes)]
        headers = {"Authorization": f"Bearer {OPERATE_TOKEN}"}
        with httpx.Client(headers=headers, timeout=10) as client:
            while not stop.is_set():
                if client.post(f"{node.url}/execute/noop").status_code == 200:
                    done += 1
        counts.append(done)

    def take() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            while not stop.is_set():
                started = time.monotonic()
                client.post(f"{follower.url}/admin/backup", timeout=300).raise_for_status()
                backups.append(time.monotonic() - started)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    if with_backups:
        threads.append(threading.Thread(target=take))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)  # the measurement window itself, not a synchronisation
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {
        "executionsPerS": round(sum(counts) / elapsed, 1),
        "backupsTaken": len(backups),
        "backupS": round(statistics.median(backups), 3) if backups else None,
    }


def measure(records: int, throughput_s: float, work: Path) -> dict[str, Any]:
    print(f"[{records:,} records] building the state ...", flush=True)
    data = build_state(records)
    _, body = backup.encode(data, "bench", records + 10, 1, 0)
    seed = work / f"seed-{records}.bak"
    seed.write_bytes(body)
    del data

    cluster = Cluster(work / f"cluster-{records}", 3)
    result: dict[str, Any] = {"records": records, "seedBytes": len(body)}
    try:
        started = time.monotonic()
        restore_layout(cluster.layout, *backup.read(seed))
        written = time.monotonic()
        cluster.start()
        cluster.leader(timeout=120)
        cluster.wait_converged(timeout=120)
        result["restore"] = {
            "checkAndWriteS": round(written - started, 3),
            "toQuorumS": round(time.monotonic() - started, 3),
        }
        follower = next(n for n in cluster.nodes if n.name != cluster.leader().name)
        takes = []
        for _ in range(3):
            started = time.monotonic()
            answer = cluster.post(follower, "/admin/backup", timeout=300)
            answer.raise_for_status()
            takes.append(
                {
                    "s": round(time.monotonic() - started, 3),
                    "bytes": len(answer.content),
                    "tickThreadMs": float(answer.headers["X-Backup-Lock-Held-Ms"]),
                    "phasesMs": json.loads(answer.headers["X-Backup-Timings"]),
                }
            )
        taken = work / f"taken-{records}.bak"
        taken.write_bytes(answer.content)
        taken_manifest, _ = backup.read(taken)
        result["backup"] = {
            "medianS": statistics.median(t["s"] for t in takes),
            "bytes": takes[-1]["bytes"],
            "tickThreadMs": [t["tickThreadMs"] for t in takes],
            "phasesMs": [t["phasesMs"] for t in takes],
            "recordsHeld": taken_manifest["executionRecordsHeld"],
            "historyRecords": taken_manifest["historyRecords"],
            "totalExecutions": taken_manifest["totalExecutions"],
        }
        started = time.monotonic()
        verified = verify_in_scratch_node(taken)
        result["verify"] = {
            "s": round(time.monotonic() - started, 3),
            "ok": not verified["mismatches"],
            **verified["timings"],
        }
        if throughput_s > 0:
            define_noop(cluster)
            result["throughput"] = {
                "without": throughput(cluster, throughput_s, with_backups=False),
                "with": throughput(cluster, throughput_s, with_backups=True),
            }
    finally:
        cluster.stop_all()
    print(f"[{records:,} records] {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backup", description=__doc__)
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--throughput-s", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        results = [measure(n, args.throughput_s, work) for n in args.records]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(save_result("backup", {"results": results}))


if __name__ == "__main__":
    main()
