"""Raft messages between nodes that both read AES-GCM are sealed with it; a node of an
older release (Fernet only) still talks to them; and a sealed message is read once, on
its own connection, unaltered, or the connection is dropped (daemon/raft_cipher.py)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pysyncobj.encryptor import getEncryptor

from daemon import raft_cipher, raft_transport
from daemon.localcluster import free_port, wait_for
from daemon.raft_protocol import SafeSyncObj
from daemon.ratelog import RateLimitedLog
from tests import cluster_harness
from tests.daemon.cipher_peer import Counter, conf
from tests.daemon.syncobj_support import committed

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cipher-test-secret"


def direction(fernet: Fernet, key: bytes) -> raft_cipher.Direction:
    return raft_cipher.Direction(fernet, key)


@pytest.fixture(scope="module")
def fernet() -> Fernet:
    return getEncryptor(SECRET)


def test_a_sealed_message_opens_on_the_other_side_of_its_connection(fernet: Fernet) -> None:
    key = raft_cipher.offering(b"k" * 32)
    sender, receiver = direction(fernet, key), direction(getEncryptor(SECRET), key)

    tokens = [sender.seal(b"append %d" % n) for n in range(3)]

    assert [receiver.open(t) for t in tokens] == [b"append 0", b"append 1", b"append 2"]
    assert all(raft_cipher.is_sealed(t) for t in tokens)
    assert not raft_cipher.is_sealed(fernet.encrypt(b"append 0"))


def test_a_replayed_message_is_refused(fernet: Fernet) -> None:
    key = raft_cipher.offering(b"r" * 32)
    sender, receiver = direction(fernet, key), direction(fernet, key)
    first, second = sender.seal(b"one"), sender.seal(b"two")
    receiver.open(first)
    receiver.open(second)

    with pytest.raises(raft_cipher.CipherError):
        receiver.open(first)


def test_a_message_recorded_on_another_connection_or_altered_is_refused(fernet: Fernet) -> None:
    token = direction(fernet, raft_cipher.offering(b"a" * 32)).seal(b"vote for me")
    with pytest.raises(raft_cipher.CipherError):
        direction(fernet, raft_cipher.offering(b"b" * 32)).open(token)

    altered = token[:-1] + bytes([token[-1] ^ 1])
    with pytest.raises(raft_cipher.CipherError):
        direction(fernet, raft_cipher.offering(b"a" * 32)).open(altered)


def test_a_message_sealed_with_another_secret_is_refused() -> None:
    key = raft_cipher.offering(b"s" * 32)
    token = direction(getEncryptor("another secret"), key).seal(b"append")
    with pytest.raises(raft_cipher.CipherError):
        direction(getEncryptor(SECRET), key).open(token)


def test_the_offer_keeps_the_key_length_and_is_recognised() -> None:
    key = raft_cipher.offering(bytes(range(32)))
    assert len(key) == 32 and raft_cipher.offers(key)
    assert not raft_cipher.offers(bytes(range(32)))
    assert not raft_cipher.offers(None)


# ---- a real mixed cluster -----------------------------------------------------------
class NewNode:
    """The daemon's SafeSyncObj on the daemon's transport, in this process."""

    def __init__(self, address: str, others: list[str], data: Path) -> None:
        raft_transport.install()
        self.counter = Counter()
        self.obj = SafeSyncObj(address, others, conf=conf(SECRET, data), consumers=[self.counter])

    def connection_to(self, address: str) -> raft_transport.CheapSend:
        connections = self.obj._SyncObj__transport._connections
        return next(c for node, c in connections.items() if node.address == address)


@pytest.fixture
def mixed(tmp_path: Path) -> Iterator[tuple[list[NewNode], str, Path]]:
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    old_address = addresses[2]
    old_data = tmp_path / "old"
    old = subprocess.Popen(
        [sys.executable, "-m", "tests.daemon.cipher_peer", old_address,
         ",".join(addresses[:2]), SECRET, str(old_data)],
        cwd=ROOT,
    )  # fmt: skip
    new = [
        NewNode(a, [o for o in addresses if o != a], tmp_path / f"new{i}")
        for i, a in enumerate(addresses[:2])
    ]
    try:
        yield new, old_address, old_data
    finally:
        for node in new:
            node.obj.destroy()
        old.kill()
        old.wait(10)


def old_value(data: Path) -> int:
    try:
        return int((data / "value").read_text())
    except (OSError, ValueError):
        return -1


def test_new_nodes_seal_with_aes_gcm_and_an_older_node_still_replicates_with_fernet(
    mixed: tuple[list[NewNode], str, Path],
) -> None:
    new, old_address, old_data = mixed
    wait_for(lambda: old_value(old_data) >= 0, 30, what="the older node to start")
    for n in range(1, 11):
        committed(new[n % 2].counter.add, n, within_s=20)

    total = sum(range(1, 11))
    wait_for(lambda: all(n.counter.value == total for n in new), 20, what="new nodes applied")
    wait_for(lambda: old_value(old_data) == total, 20, what="the older node applied")

    between_new = new[0].connection_to(new[1].obj.selfNode.address)
    to_old = new[0].connection_to(old_address)
    assert between_new._sealing is not None  # it sealed with AES-GCM
    assert between_new._opening is not None  # and read AES-GCM from the other new node
    assert to_old._sealing is None and to_old._opening is None  # Fernet both ways


def send_and_be_dropped(node: cluster_harness.Node, data: bytes) -> None:
    """Send `data` to the node's Raft port as a stranger; the node must close on it."""
    with socket.create_connection(("127.0.0.1", node.raft_port), timeout=5) as sock:
        sock.sendall(data)
        assert sock.recv(1) == b"", "the node kept a connection it should have dropped"


@pytest.mark.cluster
def test_a_connection_whose_messages_do_not_decrypt_is_dropped_and_the_node_says_why(
    make_cluster,
) -> None:
    # What a peer started with another raft.password sends: a framed message that no
    # key of this cluster opens. pysyncobj drops such a connection without a word.
    cluster = make_cluster(size=1)
    node = cluster.nodes[0]
    garbage = os.urandom(96)
    send_and_be_dropped(node, struct.pack("i", len(garbage)) + garbage)
    line = wait_for(
        lambda: next((ln for ln in node.log().splitlines() if "dropping a connection" in ln), None),
        timeout=5,
    )
    assert "127.0.0.1:" in line and "raft.password" in line, line
    assert cluster.get(node, "/health/ready").status_code == 200


def test_dropped_connections_are_logged_at_most_once_a_second_with_a_count_of_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Anyone who reaches the Raft port can send garbage: one line each would fill the log.
    drops = RateLimitedLog(raft_transport.log, 60, raft_transport._DROPS.left_out)
    with caplog.at_level("WARNING", logger="daemon.raft"):
        for n in range(5):
            drops.warning("raft: dropping a connection from %s: %s", f"127.0.0.1:{1000 + n}", "x")
        assert len(caplog.records) == 1
        drops.last_at -= 60  # a minute on
        drops.warning("raft: dropping a connection from %s: %s", "127.0.0.1:2000", "x")
    assert len(caplog.records) == 2
    assert "(4 more dropped since the last such line)" in caplog.records[1].getMessage()


@pytest.mark.cluster
def test_a_flood_of_connections_the_raft_port_drops_writes_a_line_a_second_not_one_each(
    make_cluster,
) -> None:
    cluster = make_cluster(size=1)
    node = cluster.nodes[0]
    floods = 30
    for _ in range(floods):  # each announces a message larger than a stranger may send
        send_and_be_dropped(node, struct.pack("i", 10 * 2**20))

    def drop_lines() -> list[str]:
        return [ln for ln in node.log().splitlines() if "raft: dropping" in ln]

    wait_for(lambda: drop_lines() or None, timeout=5)
    assert len(drop_lines()) < floods / 3, drop_lines()
    assert cluster.get(node, "/health/ready").status_code == 200
