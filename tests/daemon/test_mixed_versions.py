"""A real mixed-version cluster: release 1 is this tree, release 2 adds a replicated method at
ver=1. Nodes move to release 2 one at a time under a steady writer; the switch to code
version 1 is refused until every node runs release 2, and accepted after."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from daemon.localcluster import releases
from daemon.localcluster.lifecycle import restart_node, run_on_release
from daemon.localcluster.manager import LifecycleError, LocalNodes
from daemon.localcluster.writer import SteadyWriter, executed_ids
from tests.cluster_harness import ADMIN_TOKEN, ROOT, Cluster, wait_for

pytestmark = pytest.mark.cluster

NEW_METHOD = '''
    @replicated(ver=1)
    def set_note(self, key: str, value: str) -> None:
        """Added in release 2: usable once the cluster has enabled code version 1."""
        with self._lock:
            try:
                self.__dict__.setdefault("notes", {})[key] = value
            except Exception:  # a replicated body never raises
                log.exception("set_note failed")
'''
ANCHOR = "        self.snapshot_schema = SNAPSHOT_SCHEMA\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@localhost",
         *args], capture_output=True, text=True, check=True, timeout=120,
    ).stdout.strip()  # fmt: skip


def patched_tree(tmp: Path) -> Path:
    """A git repository holding this tree plus a commit adding a ver=1 replicated method."""
    repo = tmp / "patched"
    repo.mkdir()
    releases._export_tree(ROOT, None, repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "release 1")
    state = repo / "daemon" / "state.py"
    text = state.read_text()
    assert ANCHOR in text, "daemon/state.py changed shape: update this test's patch"
    state.write_text(text.replace(ANCHOR, ANCHOR + NEW_METHOD, 1))
    _git(repo, "commit", "-q", "-am", "release 2: a replicated method at ver=1")
    return repo


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("mixed")
    envs = tmp / "envs"
    first = releases.build_wheel(ROOT, tmp / "wheels", release="mv-1")
    second = releases.build_wheel(patched_tree(tmp), tmp / "wheels", release="mv-2")
    for wheel in (first, second):
        releases.install(wheel, envs)
    assert releases.inspect(envs, "mv-1")["maxCodeVersion"] == 0
    assert releases.inspect(envs, "mv-2")["maxCodeVersion"] == 1
    yield envs
    for name in ("mv-1", "mv-2"):
        releases.uninstall(envs, name)
    shutil.rmtree(tmp, ignore_errors=True)


def switch(cluster: Cluster, version: int) -> tuple[int, dict]:
    # Asked of a follower: pysyncobj forwards the switch to the leader like any write.
    with LocalNodes(cluster.layout) as nodes:
        leader = nodes.leader_spec().name
    follower = next(n for n in cluster.nodes if n.name != leader)
    response = cluster.post(follower, "/admin/code-version", json={"version": version})
    return response.status_code, response.json()


def test_nodes_upgraded_one_at_a_time_under_writes_then_code_version_1(
    make_cluster, installed: Path
) -> None:
    cluster: Cluster = make_cluster(start=False)
    for spec in cluster.layout.nodes:
        cluster.layout.run_on(spec.name, "mv-1", installed)
    cluster.start()
    nodes = LocalNodes(cluster.layout, timeout_s=60)
    builds = {n.name: cluster.get(n, "/health/node").json()["build"] for n in cluster.nodes}
    assert {b["release"] for b in builds.values()} == {"mv-1"}

    cluster.define(cluster.nodes[0], {"id": "tick", "name": "tick", "handler": {"kind": "noop"}})
    urls = [n.url for n in cluster.nodes]
    with SteadyWriter(lambda: urls, ADMIN_TOKEN, "tick", rate=25) as writer:
        status, body = switch(cluster, 1)
        assert status == 409 and "mv-1 with maxCodeVersion 0" in body["error"], body
        # Followers first, the leader last: one leadership move in all.
        order = sorted(cluster.nodes, key=lambda n: n is cluster.leader())
        for i, node in enumerate(order):
            run_on_release(nodes, node.name, "mv-2", installed)
            health = cluster.get(node, "/health/node").json()
            assert health["build"]["release"] == "mv-2" and health["maxCodeVersion"] == 1
            assert health["build"]["commit"] != builds[node.name]["commit"]
            if i < len(order) - 1:
                status, body = switch(cluster, 1)
                assert status == 409, body
                assert f"{order[-1].name} runs mv-1" in body["error"]
                assert body["codeVersion"] == 0
        status, body = switch(cluster, 1)
        assert status == 200, body
        assert body["changed"] and body["codeVersion"] == 1 and not body["rollbackSafe"]
        assert "no longer safe" in body["note"]
        wait_for(
            lambda: all(cluster.get(n, "/health/node").json()["codeVersion"] == 1
                        for n in cluster.nodes),
            what="code version 1 on every node",
        )  # fmt: skip
        # A node restarted after the switch replays it: it stays at 1.
        restart_node(nodes, order[0].name)
        assert cluster.get(order[0], "/health/node").json()["codeVersion"] == 1
        # Release 1 could not apply the log any more: going back is refused, nothing stops.
        with pytest.raises(LifecycleError, match="supports code versions up to 0"):
            run_on_release(nodes, order[0].name, "mv-1", installed)
        assert cluster.get(order[0], "/health/node").json()["build"]["release"] == "mv-2"

    assert writer.report.failed == 0, writer.report.as_json()
    nodes.wait_converged()
    nodes.close()
    acknowledged = set(writer.acknowledged_ids)
    assert len(acknowledged) > 50
    for node in cluster.nodes:
        assert not acknowledged - executed_ids(node.url, ADMIN_TOKEN), node.name
    status, body = switch(cluster, 0)
    assert status == 409 and "never go back" in body["error"]
