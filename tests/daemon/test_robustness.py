"""The robustness run's fast subset: every kind of fault once, short holds, one
cluster (tests/chaos/robustness.py; the long randomized run is `make chaos`).

The checker judges only what clients were told: every acknowledged execution on
every node exactly once, no more unacknowledged executions than failed requests,
equal digests once healed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.faults import FAULTS
from tests.chaos.netns import run_in_private_netns, why_no_netns

NO_NETNS = why_no_netns()


@pytest.mark.cluster
@pytest.mark.skipif(NO_NETNS is not None, reason=NO_NETNS or "")
def test_every_fault_is_survived_and_no_acknowledged_execution_is_lost(tmp_path: Path) -> None:
    faults = ",".join(FAULTS)
    result = run_in_private_netns(
        "tests.chaos.robustness", str(tmp_path), "--faults", faults, "--hold-s", "2",
        timeout_s=200,
    )  # fmt: skip
    summary = {k: v for k, v in result.items() if k != "check"}
    # A fault this machine cannot inject (netem without sch_netem) is skipped, said so.
    assert result["faultsRun"] + result["faultsSkipped"] == len(FAULTS), summary
    assert result["faultsRun"] >= len(FAULTS) - 1, summary
    assert result["faultsSurvived"] == result["faultsRun"], summary
    assert result["converged"], summary
    assert result["ackedLost"] == 0, result
    assert result["check"]["ok"], result
    assert result["divergences"] == 0, summary
