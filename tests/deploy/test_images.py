"""The container images, built with podman by deploy/images/build.sh: the daemon image
is under the runbook's 150 MB, runs non-root, and three containers of it form a cluster
that fails over when the leader's container is killed and takes it back when the
container starts again. The console image serves daphne.

Containers use the host's network (loopback, free ports), the closest this machine has
to pods reaching each other by address; the root filesystem is read-only as in the
StatefulSet. Skipped, naming the packages, without podman, runc or mmdebstrap (CI
installs them and sets REQUIRE_DEPLOY_TOOLS=1, which turns the skip into a failure).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cluster_harness import ADMIN_TOKEN, RAFT_PASSWORD, free_port, wait_for
from tests.deploy.tools import DEPLOY, ROOT, tool_or_skip

pytestmark = [pytest.mark.cluster, pytest.mark.images]

TAG = "test"
PODMAN_RUN = [
    "--runtime",
    "runc",
    "--cgroup-manager=cgroupfs",
    "run",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
]


@pytest.fixture(scope="module")
def images() -> dict[str, float]:
    """Build both images; return the build time in seconds."""
    tool_or_skip("podman", "podman runc")
    tool_or_skip("runc", "runc")
    tool_or_skip("mmdebstrap", "mmdebstrap")
    started = time.monotonic()
    result = subprocess.run(
        [str(DEPLOY / "images" / "build.sh"), "all"],
        env={**os.environ, "IMAGE_TAG": TAG},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The build times and sizes, shown with -s.
    print("\n".join(line for line in result.stderr.splitlines() if line.startswith("build:")))
    return {"build_s": time.monotonic() - started}


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_the_daemon_image_is_under_150_mb_and_runs_as_non_root(images: dict) -> None:
    size = int(_podman("image", "inspect", "--format", "{{.Size}}", f"unrdf-daemon:{TAG}").stdout)
    assert size < 150_000_000, f"{size / 1e6:.0f} MB"
    user = _podman("image", "inspect", "--format", "{{.Config.User}}", f"unrdf-daemon:{TAG}")
    assert user.stdout.strip() == "10001:10001"


@dataclass
class Container:
    name: str
    node: str
    http_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@pytest.fixture
def cluster(images: dict, tmp_path: Path) -> Iterator[list[Container]]:
    suffix = f"{os.getpid()}-{free_port()}"
    nodes = [(f"unrdf-daemon-{i}", free_port(), free_port()) for i in range(3)]
    peers = [
        {"name": n, "raftAddress": f"127.0.0.1:{r}", "httpUrl": f"http://127.0.0.1:{h}"}
        for n, h, r in nodes
    ]
    containers = []
    try:
        for name, http_port, raft_port in nodes:
            config = tmp_path / f"{name}.json"
            config.write_text(
                json.dumps(
                    {
                        "nodeName": name,
                        "http": {"host": "127.0.0.1", "port": http_port},
                        "raft": {"bindAddress": f"127.0.0.1:{raft_port}"},
                        "peers": peers,
                    }
                )
            )
            container = Container(f"{name}-{suffix}", name, http_port)
            containers.append(container)
            _podman(
                *PODMAN_RUN,
                "-d",
                "--name",
                container.name,
                "--network",
                "host",
                "--read-only",
                "--tmpfs",
                "/tmp",
                "-e",
                f"RAFT_PASSWORD={RAFT_PASSWORD}",
                "-e",
                f"DAEMON_TOKEN={ADMIN_TOKEN}",
                "-v",
                f"{config}:/etc/daemon/daemon-config.json:ro",
                f"unrdf-daemon:{TAG}",
            )
        for container in containers:
            _wait_started(container)
        yield containers
    finally:
        for container in containers:
            _podman("rm", "-f", "-v", container.name, check=False)


def _wait_started(container: Container) -> None:
    wait_for(
        lambda: httpx.get(container.url + "/health/startup", timeout=2).status_code == 200,
        timeout=60,
        what=f"{container.name} started\n{_podman('logs', container.name, check=False).stderr[-2000:]}",
    )


def _leader(containers: list[Container], other_than: str | None = None) -> str:
    def agreed() -> str | None:
        leaders = {
            httpx.get(c.url + "/health/node", timeout=2).json()["leader"] for c in containers
        }
        leader = leaders.pop() if len(leaders) == 1 else None
        return leader if leader not in (None, other_than) else None

    return wait_for(agreed, timeout=30, what=f"one agreed leader other than {other_than}")


def test_a_cluster_of_daemon_containers_fails_over_and_takes_a_restarted_one_back(
    cluster: list[Container],
) -> None:
    old_leader = _leader(cluster)
    # The StatefulSet's three probes answer as the manifests expect.
    for container in cluster:
        for probe in ("/health/startup", "/health/live", "/health/ready"):
            assert httpx.get(container.url + probe, timeout=2).status_code == 200, probe
    victim = next(c for c in cluster if c.node == old_leader)
    survivors = [c for c in cluster if c is not victim]
    _podman("kill", victim.name)

    # Failover: the survivors agree on a new leader (until they notice, they may still
    # name the old one).
    _leader(survivors, other_than=old_leader)
    # The survivors still commit: define an operation while the victim is down.
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    op = {
        "id": "while-down",
        "name": "defined while a member was down",
        "handler": {"kind": "noop"},
    }
    response = httpx.post(survivors[0].url + "/operations", json=op, headers=headers, timeout=10)
    assert response.status_code in (200, 201), response.text

    _podman("start", victim.name)
    _wait_started(victim)
    wait_for(
        lambda: (
            httpx.get(victim.url + "/operations/while-down", headers=headers, timeout=2).status_code
            == 200
        ),
        timeout=30,
        what="the restarted container to catch up with the write it missed",
    )
    view = httpx.get(victim.url + "/health/cluster", timeout=2).json()
    assert view["clusterSize"] == 3
    wait_for(
        lambda: httpx.get(victim.url + "/health/cluster", timeout=2).json()["reachableNodes"] == 3,
        timeout=30,
        what="all three members reachable again",
    )


def test_the_daemon_image_refuses_a_pod_that_is_not_a_configured_member(
    images: dict, tmp_path: Path
) -> None:
    """What `kubectl scale --replicas=4` would start: unrdf-daemon-3 with the ConfigMap's
    three-member config. The image's entrypoint exits 2 with one line."""
    from deploy.kubernetes.render import render

    [configmap] = [o for o in render(DEPLOY / "kubernetes" / "base") if o["kind"] == "ConfigMap"]
    config = tmp_path / "daemon-config.json"
    config.write_text(configmap["data"]["daemon-config.json"])
    result = _podman(
        *PODMAN_RUN,
        "--rm",
        "--network",
        "none",
        "-e",
        "NODE_NAME=unrdf-daemon-3",
        "-v",
        f"{config}:/etc/daemon/daemon-config.json:ro",
        f"unrdf-daemon:{TAG}",
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unrdf-daemon-3 is not a member" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_the_console_image_serves_daphne(images: dict) -> None:
    port = free_port()
    name = f"unrdf-console-{os.getpid()}-{port}"
    try:
        _podman(
            *PODMAN_RUN,
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-e",
            "CONSOLE_VAR_DIR=/tmp/console",
            "-e",
            "CONSOLE_SERVE_STATIC=true",
            f"unrdf-console:{TAG}",
            "python3",
            "-m",
            "console.core.serve",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "console.asgi:application",
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: httpx.get(url + "/api/health", timeout=2).status_code == 200,
            timeout=60,
            what=f"daphne in the console image\n{_podman('logs', name, check=False).stderr[-2000:]}",
        )
        assert httpx.get(url + "/static/console.js", timeout=5).status_code == 200
    finally:
        _podman("rm", "-f", name, check=False)


def test_the_build_documents_building_from_a_public_base() -> None:
    for containerfile in ("daemon", "console"):
        text = (DEPLOY / "images" / containerfile / "Containerfile").read_text()
        assert "ARG BASE=" in text and "FROM ${BASE}" in text
    assert "python:3.11-slim-bookworm" in (DEPLOY / "images" / "build.sh").read_text()
    assert (ROOT / "constraints.txt").exists()
