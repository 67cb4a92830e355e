"""Split brain, seen from the console: a node that claims leadership without a
majority, or two nodes that each claim it. Judged from one poll of every node;
raises the critical `split_brain` alert naming them (rules.SPLIT_BRAIN)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from console.alerts.evaluate import evaluate_rule
from console.alerts.models import ACTIVE_STATES, Alert
from console.alerts.rules import SPLIT_BRAIN, Rule
from console.clusters.models import Cluster
from console.collector.observe import Observation

log = logging.getLogger("console.collector")


def claimants(obs: Observation) -> tuple[list[str], str]:
    """(names of the nodes wrongly claiming leadership, why); ([], "") if none."""
    leaders = [p.view for p in obs.polls if p.view is not None and p.view.role == "leader"]
    if len(leaders) >= 2:
        names = sorted(v.name for v in leaders)
        terms = ", ".join(
            f"{v.name} in term {v.term}" for v in sorted(leaders, key=lambda v: v.name)
        )
        return names, f"{len(names)} nodes each claim leadership ({terms})"
    alone = sorted(v.name for v in leaders if not v.has_quorum)
    if alone:
        return alone, f"{', '.join(alone)} claims leadership without quorum"
    return [], ""


def split_brain_rule(why: str) -> Rule:
    # The summary names the nodes (it is what the page and the event show).
    return dataclasses.replace(SPLIT_BRAIN, title=f"Split brain: {why}"[:150] + ";")


def evaluate_split_brain(cluster: Cluster, obs: Observation, now: dt.datetime) -> Alert | None:
    names, why = claimants(obs)
    open_alert = Alert.objects.filter(
        cluster=cluster, rule=SPLIT_BRAIN.name, state__in=ACTIVE_STATES
    ).first()
    if not names:
        return evaluate_rule(cluster, SPLIT_BRAIN, None, now, open_alert)
    return evaluate_rule(cluster, split_brain_rule(why), float(len(names)), now, open_alert)


def evaluate_split_brain_safely(cluster: Cluster, obs: Observation) -> None:
    try:
        evaluate_split_brain(cluster, obs, obs.at)
    except Exception:
        log.exception("split-brain evaluation failed for cluster %s", cluster.name)
