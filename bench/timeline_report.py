"""Where a write's time goes, segment by segment: `python -m bench.timeline_report [DIR]`.

Reads the marks that ``bench/timeline/sitecustomize.py`` wrote on each node during a
latency run (``BENCH_NODE_PYTHONPATH=bench/timeline python -m bench.run latency``) and
prints, for requests answered by the leader and by a follower, the median and p90
time from the request's first bytes (``http_in``) to each step:

leader:   submit -> send:append_entries -> (a follower) recv:append_entries ->
          send:next_node_idx -> recv:next_node_idx -> apply -> wake_loop -> http_out
follower: submit -> send:apply_command -> (leader) recv:apply_command ->
          send:append_entries -> apply -> (here) recv:append_entries -> apply ->
          wake_loop -> http_out

Steps are matched as the first such mark after the previous one, within the request;
at 100 req/s requests rarely overlap, so the matching is unambiguous for most of them.
"""

from __future__ import annotations

import argparse
import bisect
from pathlib import Path

from bench.common import percentile

Mark = tuple[int, int, str]


def load(directory: Path) -> dict[str, list[Mark]]:
    nodes = {}
    for path in sorted(directory.glob("node-*.txt")):
        marks = []
        for line in path.read_text().splitlines():
            t, tid, name = line.split(" ", 2)
            marks.append((int(t), int(tid), name))
        marks.sort()
        nodes[path.stem] = marks
    return nodes


def first(marks: list[Mark], after: int, name: str, until: int, tid: int | None = None) -> int:
    i = bisect.bisect_right(marks, (after, 2**63, ""))
    for t, thread, mark in marks[i:]:
        if t > until:
            break
        if mark == name and (tid is None or thread == tid):
            return t
    return -1


def requests(marks: list[Mark]) -> list[tuple[int, int, int]]:
    """(first bytes, submit, answer) of each request that submitted a write."""
    found = []
    for t, tid, name in marks:
        if name != "http_in":
            continue
        out = first(marks, t, "http_out", t + 50_000_000, tid)
        if out < 0:
            continue
        submit = first(marks, t, "submit", out, tid)
        if submit >= 0:
            found.append((t, submit, out))
    return found


def steps(
    here: list[Mark], leader: list[Mark], others: list[list[Mark]], is_leader: bool
) -> list[tuple[str, list[list[Mark]], str]]:
    """(label, whose marks — the earliest of several nodes counts —, mark)."""
    if is_leader:
        return [
            ("send append", [here], "send:append_entries"),
            ("a follower got it", others, "recv:append_entries"),
            ("a follower answered", others, "send:next_node_idx"),
            ("leader got an answer", [here], "recv:next_node_idx"),
            ("applied", [here], "apply"),
            ("event loop woken", [here], "wake_loop"),
        ]
    return [
        ("forward the command", [here], "send:apply_command"),
        ("leader got it", [leader], "recv:apply_command"),
        ("leader sent the append", [leader], "send:append_entries"),
        ("leader applied", [leader], "apply"),
        ("the commit arrived here", [here], "recv:append_entries"),
        ("applied here", [here], "apply"),
        ("event loop woken", [here], "wake_loop"),
    ]


def report(nodes: dict[str, list[Mark]]) -> None:
    leader_name = max(nodes, key=lambda n: sum(m[2] == "send:append_entries" for m in nodes[n]))
    for name, here in nodes.items():
        is_leader = name == leader_name
        others = [m for n, m in nodes.items() if n != name]
        plan = steps(here, nodes[leader_name], others, is_leader)
        offsets: dict[str, list[float]] = {"handler submitted": [], "answered": []}
        for start, submit, out in requests(here):
            offsets["handler submitted"].append((submit - start) / 1e6)
            offsets["answered"].append((out - start) / 1e6)
            at = submit
            for label, whose, mark in plan:
                found = [t for marks in whose if (t := first(marks, at, mark, out)) >= 0]
                if not found:
                    break
                t = min(found)
                offsets.setdefault(label, []).append((t - start) / 1e6)
                at = t
        print(
            f"== {name} ({'leader' if is_leader else 'follower'}): {len(offsets['answered'])} writes"
        )
        order = ["handler submitted", *[label for label, _, _ in plan], "answered"]
        previous = 0.0
        for label in order:
            values = offsets.get(label, [])
            if not values:
                continue
            p50, p90 = percentile(values, 50), percentile(values, 90)
            print(
                f"  {label:26s} n={len(values):5d}  p50 {p50:6.3f} ms (+{p50 - previous:5.3f})  p90 {p90:6.3f} ms"
            )
            previous = p50


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timeline_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", nargs="?", default="/tmp/bench-timeline", type=Path)
    args = parser.parse_args(argv)
    nodes = load(args.directory)
    if not nodes:
        raise SystemExit(
            f"no node-*.txt in {args.directory}: run a latency bench with "
            "BENCH_NODE_PYTHONPATH=bench/timeline first"
        )
    report(nodes)


if __name__ == "__main__":
    main()
