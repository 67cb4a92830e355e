"""A gate's record, as the progress view shows it: what it measured against what it must be.

The runner stores each gate as `{name, ok, value, reason[, heldS]}` (runner._gate_round);
the value is whatever the gate measured (a release name, a lag, a baseline comparison).
These functions put it in words next to its threshold, by the gate's name (the names are
fixed in gates.py and actions/soak.py). An unknown gate still shows its raw value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.runbooks import conf

# gates.held() appends ", for N s" to the name of a gate that must hold for N seconds.
HOLD = re.compile(r", for (?P<s>\d+(?:\.\d+)?) s$")


@dataclass(frozen=True)
class GateView:
    name: str  # without the ", for N s" of a held gate
    ok: bool
    value: str  # what it measured, in words
    threshold: str  # what it must be ("" when the name says it all)
    held_s: float | None  # how long it has held so far (held gates only)
    hold_s: float | None  # how long it must hold (held gates only)
    reason: str  # why it failed ("" when it passed)


def gate_view(record: dict[str, Any]) -> GateView:
    full = str(record.get("name", ""))
    hold = HOLD.search(full)
    name = full[: hold.start()] if hold else full
    value, threshold = _describe(name, record.get("value"))
    held = record.get("heldS")
    return GateView(
        name=name,
        ok=bool(record.get("ok")),
        value=value,
        threshold=threshold,
        held_s=float(held) if isinstance(held, int | float) else None,
        hold_s=float(hold.group("s")) if hold else None,
        reason=str(record.get("reason") or ""),
    )


def _describe(name: str, value: Any) -> tuple[str, str]:
    for pattern, describe in DESCRIBERS:
        if (found := re.fullmatch(pattern, name)) is not None:
            try:
                return describe(found, value)
            except (KeyError, TypeError, ValueError, AttributeError):
                break  # a value of another shape than expected: show it raw
    return _raw(value), ""


def _raw(value: Any) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


def _release(found: re.Match[str], value: Any) -> tuple[str, str]:
    return (str(value) if value else "no release reported"), found.group("release")


def _quorum(found: re.Match[str], value: Any) -> tuple[str, str]:
    leader = value.get("leader")
    quorum = "quorum" if value.get("hasQuorum") else "no quorum"
    return f"{quorum}, leader {leader}" if leader else f"{quorum}, no leader", "quorum, a leader"


def _lag(found: re.Match[str], value: Any) -> tuple[str, str]:
    limit = f"≤ {conf.transfer_max_lag_ms()} ms, ≤ {conf.transfer_max_lag_entries()} entries"
    if value is None or value.get("lagMs") is None:
        return "lag unknown", limit
    entries = value["lagEntries"]
    return f"{value['lagMs']:.0f} ms, {entries} entr{'y' if entries == 1 else 'ies'} behind", limit


def _leader_change(found: re.Match[str], value: Any) -> tuple[str, str]:
    return f"leader {value['leader']}, term {value['term']}", f"term {value['since']}, no change"


def _percent(ratio: Any) -> str:
    return "no samples" if ratio is None else f"{ratio:.2%}"


def _ms(p95: Any) -> str:
    return "no samples" if p95 is None else f"{p95:.0f} ms"


def _baseline(found: re.Match[str], value: Any) -> tuple[str, str]:
    soak = value["soak"]
    measured = f"error ratio {_percent(soak['errorRatio'])}, p95 {_ms(soak['p95Ms'])}"
    ratio, p95 = value.get("errorRatioLimit"), value.get("p95Limit")
    limits = [
        f"error ratio ≤ {_percent(ratio)}" if ratio is not None else "",
        f"p95 ≤ {_ms(p95)}" if p95 is not None else "",
    ]
    return measured, ", ".join(x for x in limits if x) or "no worse than the minute before"


def _soak_note(value: Any, measured: str) -> str:
    seen = f"{measured} over {value['executions']} executions in {value['windowS']:g} s"
    return value.get("note") or seen


def _error_ratio(found: re.Match[str], value: Any) -> tuple[str, str]:
    measured = _soak_note(value, f"error ratio {_percent(value['errorRatio'])}")
    return measured, f"≤ {_percent(value['limit'])} (baseline {_percent(value['baseline'])})"


def _p95(found: re.Match[str], value: Any) -> tuple[str, str]:
    measured = _soak_note(value, f"p95 {value['p95Ms']} ms")
    if value.get("limitMs") is None:
        return measured, "no baseline to compare with"
    return measured, f"≤ {value['limitMs']:g} ms (baseline {value['baselineMs']:g} ms)"


def _majority(found: re.Match[str], value: Any) -> tuple[str, str]:
    what = found.group("what")
    return f"{value[what]} of {value['size']} {what}", f"≥ {value['needed']}"


def _alerts(found: re.Match[str], value: Any) -> tuple[str, str]:
    return (", ".join(str(rule) for rule in value) or "none firing"), "none firing"


DESCRIBERS: list[tuple[str, Callable[[re.Match[str], Any], tuple[str, str]]]] = [
    (r"\S+ reports release (?P<release>.+)", _release),
    (r"the cluster has quorum and a leader", _quorum),
    (r"\S+ has caught up with the leader", _lag),
    (r"no unplanned leader change", _leader_change),
    (r"error ratio and p95 no worse than before", _baseline),  # runs recorded before the split
    (r"error ratio no worse than before the upgrade", _error_ratio),
    (r"p95 latency no worse than before the upgrade", _p95),
    (r"a majority stays (?P<what>\w+) without \S+", _majority),
    (r"no critical alert is firing", _alerts),
]
