"""The Raft secret, against a running cluster (ARCHITECTURE.md, Security).

"Without the secret, a peer can neither join, read the log, nor run the admin
utility commands." Intruders here are real pysyncobj objects and the real admin
utility, talking TCP to the cluster's Raft ports. Each negative check runs next to
a positive control holding the right secret, so a leak would show.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.utility import TcpUtility, UtilityException

from daemon.config import ConfigError, load_config
from daemon.state import ReplicatedState
from tests.cluster_harness import RAFT_PASSWORD, Cluster, free_port, wait_for

pytestmark = pytest.mark.cluster

WRONG_PASSWORD = "not-the-raft-secret-0123456789"
SYNCOBJ_ADMIN = Path(sys.executable).with_name("syncobj_admin")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("raft-secret"), size=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop_all()


class Peer:
    """An in-process pysyncobj node with its own replica of the daemon's state."""

    def __init__(
        self,
        self_node: str | None,
        others: list[str],
        password: str | None,
        bind: str | None = None,
    ) -> None:
        self.state = ReplicatedState()
        conf = SyncObjConf(
            password=password,
            bindAddress=bind,
            connectionRetryTime=0.2,
            connectionTimeout=3.5,
            raftMinTimeout=0.4,
            raftMaxTimeout=0.6,
            autoTickPeriod=0.01,
            dynamicMembershipChange=True,
        )
        self.obj = SyncObj(self_node, others, conf=conf, consumers=[self.state])

    def knows(self, op_id: str) -> bool:
        return self.state.get_operation(op_id) is not None

    @property
    def leader(self) -> object:
        return self.obj._getLeader()

    def destroy(self) -> None:
        self.obj.destroy()


def define(cluster: Cluster, op_id: str) -> None:
    response = cluster.define(cluster.nodes[0], {"id": op_id, "handler": {"kind": "noop"}})
    assert response.status_code in (200, 201), response.text


def raft_addresses(cluster: Cluster) -> list[str]:
    return [n.raft_address for n in cluster.nodes]


# ---- (a) nobody without the secret joins or reads the log ------------------------------


def test_peers_without_the_secret_never_see_a_leader_or_the_replicated_state(
    cluster: Cluster,
) -> None:
    define(cluster, "before-intruders")
    addresses = raft_addresses(cluster)
    intruders = {
        "would-be member, wrong secret": Peer(
            f"127.0.0.1:{free_port()}", addresses, WRONG_PASSWORD
        ),
        "would-be member, no secret": Peer(f"127.0.0.1:{free_port()}", addresses, None),
        "read-only node, wrong secret": Peer(None, addresses, WRONG_PASSWORD),
        "read-only node, no secret": Peer(None, addresses, None),
        # Claims to be unrdf-daemon-0 (its node id) while listening elsewhere.
        "impostor of unrdf-daemon-0, no secret": Peer(
            addresses[0], addresses[1:], None, bind=f"127.0.0.1:{free_port()}"
        ),
        "impostor of unrdf-daemon-0, wrong secret": Peer(
            addresses[0], addresses[1:], WRONG_PASSWORD, bind=f"127.0.0.1:{free_port()}"
        ),
    }
    # Started after the intruders, so they have had at least as long to connect.
    control = Peer(None, addresses, RAFT_PASSWORD)
    try:
        wait_for(
            lambda: control.knows("before-intruders") and control.leader is not None,
            what="the read-only node WITH the secret to receive the log",
        )
        define(cluster, "while-intruders-listen")
        wait_for(
            lambda: control.knows("while-intruders-listen"),
            what="the read-only node WITH the secret to receive a new entry",
        )
        # A read-only peer WITH the secret shows up in the leader's matchIndex; the
        # cluster view must skip it (it has no address), not fail with a 500.
        answer = cluster.get(cluster.leader(), "/health/cluster")
        assert answer.status_code == 200, answer.text
        for what, peer in intruders.items():
            assert peer.state.operations == {}, what
            assert peer.leader is None, what
            assert peer.obj.raftCommitIndex <= 1, what
            assert not peer.obj.isReady(), what
    finally:
        for peer in [control, *intruders.values()]:
            peer.destroy()

    # Asked of the leader: it is the one whose matchIndex lists the read-only peers.
    view = cluster.cluster_view(cluster.leader())
    assert view["clusterSize"] == 3
    assert view["hasQuorum"] is True
    cluster.wait_converged()


# ---- (b) the admin utility needs the secret ----------------------------------------------


def utility(password: str | None) -> TcpUtility:
    return TcpUtility(password=password, timeout=5.0)


@pytest.mark.parametrize("password", [None, WRONG_PASSWORD], ids=["no-secret", "wrong-secret"])
def test_the_admin_utility_without_the_secret_cannot_get_status(
    cluster: Cluster, password: str | None
) -> None:
    for address in raft_addresses(cluster):
        with pytest.raises(UtilityException):
            utility(password).executeCommand(address, ["status"])


def test_the_admin_utility_with_the_secret_gets_status(cluster: Cluster) -> None:
    leader = cluster.leader()
    for node in cluster.nodes:
        status = utility(RAFT_PASSWORD).executeCommand(node.raft_address, ["status"])
        assert isinstance(status, dict)
        assert status["self"].address == node.raft_address
        assert status["leader"].address == leader.raft_address
        assert status["partner_nodes_count"] == 2


@pytest.mark.parametrize("password", [None, WRONG_PASSWORD], ids=["no-secret", "wrong-secret"])
def test_the_admin_utility_without_the_secret_cannot_add_or_remove_a_member(
    cluster: Cluster, password: str | None
) -> None:
    stranger = f"127.0.0.1:{free_port()}"
    victim = cluster.nodes[2].raft_address
    for node in cluster.nodes:
        with pytest.raises(UtilityException):
            utility(password).executeCommand(node.raft_address, ["add", stranger])
        with pytest.raises(UtilityException):
            utility(password).executeCommand(node.raft_address, ["remove", victim])
    for node in cluster.nodes:
        status = utility(RAFT_PASSWORD).executeCommand(node.raft_address, ["status"])
        partners = {
            key.removeprefix("partner_node_status_server_")
            for key in status
            if key.startswith("partner_node_status_server_")
        }
        assert partners == set(raft_addresses(cluster)) - {node.raft_address}
    assert cluster.cluster_view()["clusterSize"] == 3


def test_the_syncobj_admin_command_needs_the_secret(cluster: Cluster) -> None:
    address = cluster.nodes[1].raft_address

    def admin(*args: str) -> str:
        done = subprocess.run(
            [str(SYNCOBJ_ADMIN), "-conn", address, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout.strip()

    refused = admin("-status")
    assert "leader:" not in refused
    assert refused in ("connection lost", "can't connected")
    assert "leader:" not in admin("-status", "-pass", WRONG_PASSWORD)
    allowed = admin("-status", "-pass", RAFT_PASSWORD)
    assert "leader:" in allowed and f"self: {address}" in allowed


# ---- (c) the Raft port listens only where it was told to ---------------------------------


def listeners(port: int) -> list[str]:
    """Local addresses in LISTEN state for a TCP port, from /proc/net/tcp{,6}.

    (Not socket.inet_ntop: importing pysyncobj 0.3.17 replaces it process-wide with
    a Windows-only version, see pysyncobj/win_inet_pton.py.)
    """
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            host_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(host_hex)
            if len(raw) == 4:
                found.append(str(ipaddress.IPv4Address(raw[::-1])))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.append(str(ipaddress.IPv6Address(words)))
    return found


def test_the_raft_port_listens_only_on_the_configured_address(cluster: Cluster) -> None:
    for node in cluster.nodes:
        assert listeners(node.raft_port) == ["127.0.0.1"], node.name


def test_the_raft_port_is_not_reachable_on_another_loopback_address(cluster: Cluster) -> None:
    # 127.0.0.2 is this host too: a wildcard listener would accept it.
    node = cluster.nodes[0]
    with socket.create_connection(("127.0.0.1", node.raft_port), timeout=2):
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", node.raft_port), timeout=2).close()


@pytest.mark.parametrize("bind", ["0.0.0.0:8181", "[::]:8181", "0:8181", ":::8181", "[::0]:8181"])
def test_a_wildcard_raft_bind_address_is_refused(tmp_path: Path, bind: str) -> None:
    path = tmp_path / "daemon-config.json"
    path.write_text(
        json.dumps(
            {"nodeName": "unrdf-daemon-0", "dataDir": str(tmp_path), "raft": {"bindAddress": bind}}
        )
    )
    with pytest.raises(ConfigError, match=r"raft\.bindAddress .*wildcard"):
        load_config(str(path), env={"RAFT_PASSWORD": RAFT_PASSWORD})
    with pytest.raises(ConfigError, match=r"raft\.bindAddress .*wildcard"):
        load_config(
            None,
            env={
                "NODE_NAME": "unrdf-daemon-0",
                "RAFT_BIND": bind,
                "RAFT_PASSWORD": RAFT_PASSWORD,
            },
        )


def test_an_interface_raft_bind_address_is_accepted(tmp_path: Path) -> None:
    config = load_config(
        None,
        env={
            "NODE_NAME": "unrdf-daemon-0",
            "RAFT_BIND": "127.0.0.1:8181",
            "RAFT_PASSWORD": RAFT_PASSWORD,
        },
    )
    assert config.raft_bind == "127.0.0.1:8181"
