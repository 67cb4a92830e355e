"""Keep-alives go only over Raft links that carry nothing else (daemon/raft_liveness.py):
three of the daemon's SafeSyncObj on the daemon's transport, in this process, ticked by
the test's own thread (as the tick thread calls send_keepalives in a node)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pysyncobj import SyncObjConf

from daemon import raft_transport
from daemon.localcluster import free_port, wait_for
from daemon.raft_liveness import send_keepalives
from daemon.raft_protocol import SafeSyncObj
from tests.daemon.cipher_peer import Counter


class Ticked:
    def __init__(self, objs: list[SafeSyncObj]) -> None:
        self.objs = objs

    def until(self, condition: Callable[[], Any], what: str) -> Any:
        def ticked() -> Any:
            for obj in self.objs:
                obj.doTick(0.0)
            return condition()

        return wait_for(ticked, 30, what, interval=0.005)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Ticked, dict[SafeSyncObj, Counter]]]:
    raft_transport.install()
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    counters: dict[SafeSyncObj, Counter] = {}
    try:
        for i, address in enumerate(addresses):
            conf = SyncObjConf(
                password="keepalive-test",
                journalFile=str(tmp_path / f"journal{i}"),
                autoTick=False,
                appendEntriesUseBatch=False,
                dynamicMembershipChange=True,
            )
            counter = Counter()
            others = [a for a in addresses if a != address]
            counters[SafeSyncObj(address, others, conf=conf, consumers=[counter])] = counter
        yield Ticked(list(counters)), counters
    finally:
        for obj in counters:
            obj.destroy()


def test_keepalives_go_only_between_followers_as_heartbeats_and_answers_keep_the_rest_fresh(
    cluster: tuple[Ticked, dict[SafeSyncObj, Counter]],
) -> None:
    ticked, counters = cluster
    leader = ticked.until(lambda: next((o for o in counters if o._isLeader()), None), "a leader")
    followers = [obj for obj in counters if obj is not leader]
    added: list[int] = []
    counters[leader].add(1, callback=lambda result, error: added.append(error))
    ticked.until(lambda: added == [0] and all(c.value == 1 for c in counters.values()),
                 "the write applied on every node")  # fmt: skip
    ticked.until(lambda: all(o.isNodeConnected(n) for o in followers for n in o._SyncObj__otherNodes),
                 "every link up")  # fmt: skip

    # The leader sends each follower a heartbeat every 0.1 s: none of its links is quiet.
    assert send_keepalives(leader, 1.0) == []
    # A follower answers the leader but says nothing to the other follower: once that
    # link has been quiet for a second it carries a keep-alive, and only it does.
    quiet_links = ticked.until(lambda: send_keepalives(followers[0], 1.0), "a keep-alive")
    assert [node.address for node in quiet_links] == [followers[1].selfNode.address]
    # Having just sent one, the follower sends no other within the second.
    assert send_keepalives(followers[0], 1.0) == []
    assert send_keepalives(leader, 1.0) == []
