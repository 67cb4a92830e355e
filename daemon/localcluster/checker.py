"""The history checker: judges a run by what its clients were told, nothing else.

Shared by the robustness suite (tests/chaos) and the console's drills, so both say the
same thing about the same histories. Pure: the callers read the nodes' feeds, digests
and (the console) its mirrored history, and hand them in. The checks:

- every acknowledged execution is on every node, exactly once;
- no node holds an execution no client was told about, beyond those that may hide
  behind a failed request (a timeout can hide a commit): `allowed_unacked` bounds them;
- every node holds the same executions, and once healed the same applied index and
  digest;
- the console's mirrored history equals the daemon's over the same range of seqs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class HistoryVerdict:
    checks: list[Check] = field(default_factory=list)
    nodes: dict[str, dict[str, int]] = field(default_factory=dict)
    acked: int = 0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "acked": self.acked,
            "checks": [c.as_json() for c in self.checks],
            "nodes": self.nodes,
            "sameIdsOnEveryNode": next(
                (c.ok for c in self.checks if c.name == SAME_EVERYWHERE), True
            ),
        }


ACKED_EVERYWHERE = "every acknowledged execution on every node"
EXACTLY_ONCE = "no execution held twice"
NONE_UNSENT = "no execution no client was told about"
SAME_EVERYWHERE = "the same executions on every node"
EQUAL_DIGESTS = "equal applied index and digest on every node"
MIRROR_EQUAL = "the console's mirrored history equals the daemon's"


def _names(items: Iterable[str], limit: int = 3) -> str:
    shown = sorted(items)[:limit]
    return ", ".join(shown) + (" …" if len(shown) == limit else "")


def check_history(
    acked: Iterable[str],
    feeds: Mapping[str, Sequence[str]],
    *,
    allowed_unacked: int | None = None,
    points: Mapping[str, tuple[int, str]] | None = None,
    daemon_history: Iterable[tuple[int, str]] | None = None,
    mirrored_history: Iterable[tuple[int, str]] | None = None,
) -> HistoryVerdict:
    """`feeds`: per node, the execution ids its feed holds (in the range the caller
    judges). `points`: per node, (applied index, digest) once healed. The two histories:
    (seq, execution id) pairs over the same range of seqs, the daemon's and the console's."""
    acked_set = set(acked)
    verdict = HistoryVerdict(acked=len(acked_set))
    holdings: dict[str, frozenset[str]] = {}
    missing_on, twice_on, unsent_on = [], [], []
    for node, ids in feeds.items():
        counts = Counter(ids)
        holdings[node] = frozenset(counts)
        missing = acked_set - counts.keys()
        twice = [i for i, c in counts.items() if c > 1]
        unsent = counts.keys() - acked_set
        verdict.nodes[node] = {
            "records": len(ids),
            "missingAcked": len(missing),
            "duplicated": len(twice),
            "unacked": len(unsent),
        }
        if missing:
            missing_on.append(f"{node} lacks {len(missing)} ({_names(missing)})")
        if twice:
            twice_on.append(f"{node} holds {len(twice)} twice ({_names(twice)})")
        if allowed_unacked is not None and len(unsent) > allowed_unacked:
            unsent_on.append(f"{node} holds {len(unsent)} ({_names(unsent)})")
    nodes = len(feeds)
    verdict.checks.append(
        Check(
            ACKED_EVERYWHERE,
            not missing_on and nodes > 0,
            "; ".join(missing_on) or f"{len(acked_set)} acknowledged, on all {nodes} nodes",
        )
    )
    verdict.checks.append(
        Check(EXACTLY_ONCE, not twice_on, "; ".join(twice_on) or "each held once")
    )
    if allowed_unacked is not None:
        verdict.checks.append(
            Check(
                NONE_UNSENT,
                not unsent_on,
                (
                    "; ".join(unsent_on) + f", more than the {allowed_unacked} failed requests"
                    if unsent_on
                    else f"at most {allowed_unacked} unanswered requests may have committed"
                ),
            )
        )
    distinct = set(holdings.values())
    verdict.checks.append(
        Check(
            SAME_EVERYWHERE,
            len(distinct) <= 1,
            "identical" if len(distinct) <= 1 else f"{len(distinct)} different sets",
        )
    )
    if points is not None:
        seen = set(points.values())
        verdict.checks.append(
            Check(
                EQUAL_DIGESTS,
                len(seen) == 1,
                (
                    f"index {next(iter(seen))[0]} everywhere"
                    if len(seen) == 1
                    else ", ".join(f"{n}: {i}/{d[:12]}" for n, (i, d) in sorted(points.items()))
                ),
            )
        )
    if daemon_history is not None and mirrored_history is not None:
        verdict.checks.append(_mirror_check(set(daemon_history), set(mirrored_history)))
    return verdict


def _mirror_check(daemon: set[tuple[int, str]], mirrored: set[tuple[int, str]]) -> Check:
    absent, extra = daemon - mirrored, mirrored - daemon
    if not absent and not extra:
        return Check(MIRROR_EQUAL, True, f"{len(daemon)} executions, equal")
    parts = []
    if absent:
        parts.append(f"{len(absent)} not mirrored (seq {_names(str(s) for s, _ in absent)})")
    if extra:
        parts.append(f"{len(extra)} mirrored that the daemon lacks")
    return Check(MIRROR_EQUAL, False, "; ".join(parts))
