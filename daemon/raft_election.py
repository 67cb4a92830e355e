"""CheckQuorum and PreVote for pysyncobj 0.3.17, which has neither, and a faster election
after a leader is lost.

* **CheckQuorum.** A leader that has not heard from a majority within an election
  timeout steps down. pysyncobj's own give-up (``leaderFallbackTimeout``) is 30 s,
  and is checked *before* the tick reads its sockets, so it misjudges a leader
  whose tick thread was merely late; this check runs after the read. Once stepped
  down, the node is *isolated* until it hears a leader again: writes it holds or
  receives fail at once (503) instead of waiting out the client's timeout.
* **PreVote.** Before a follower starts an election (and bumps its term) it asks
  its peers whether they would vote for it; a peer says yes only if the asker's
  log is up to date and the peer has not heard from a live leader within an
  election timeout. A node cut off from the others, or a returning old leader,
  therefore never inflates its term, and its return does not depose a healthy
  leader (no flapping). A leadership transfer (TimeoutNow) skips the pre-vote.
* **Transfer hold.** While a leadership transfer is pending the leader appends no
  new entries (Raft thesis, 3.10): an entry appended after the target was found
  caught up makes the others refuse the target their votes, and the outgoing
  leader is usually elected again. Commands wait in pysyncobj's queue, nothing is
  dropped: they are appended when the hold ends, or forwarded to the new leader.

* **A lost leader.** A follower whose leader's connection closed, or whose leader went
  silent, stands for election within a staggered delay instead of the full timeout
  (``LeaderLossWatch``).

Pre-vote messages are types older nodes ignore: in a cluster only partly
upgraded, an upgraded node can only become leader with upgraded peers' consent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from pysyncobj import SyncObj
from pysyncobj.monotonic import monotonic as clock

from daemon.config_types import RaftSettings
from daemon.raft_wakeups import TimedPoll

log = logging.getLogger("daemon.raft")

FOLLOWER, CANDIDATE, LEADER = 0, 1, 2
# While leaderless, a refused pre-vote is asked again after 20 ms, then less and less
# often: a peer that has not yet seen the old leader's socket close answers yes a
# moment later, and a node that keeps being refused does not flood its peers.
PREVOTE_RETRY_MIN_S = 0.02
PREVOTE_RETRY_MAX_S = 0.5


class ElectionSafety(SyncObj):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.isolated = False  # stepped down for lack of a majority; no leader since
        self._leader_heard_at = 0.0  # last append from the leader this node follows
        self._prevote_round = 0
        self._prevote_sent_at = 0.0
        self._prevotes: set[Any] = set()
        self._prevote_won_at = 0.0
        self._prevote_retry_s = PREVOTE_RETRY_MIN_S
        self._transfer_hold_until = 0.0
        super().__init__(*args, **kwargs)
        # The tick thread sleeps until its next timer (or a message, or a command).
        self.timed_poll = TimedPoll(self)

    def _majority(self) -> int:
        return (len(self._SyncObj__otherNodes) + 1) // 2 + 1

    # ---- CheckQuorum --------------------------------------------------------
    def _onTick(self, timeToWait: float = 0.0) -> None:
        super()._onTick(timeToWait)
        if self._SyncObj__raftState == LEADER:
            self._check_quorum()

    def _check_quorum(self) -> None:
        window_s = self._SyncObj__conf.raftMinTimeout
        since = clock() - window_s
        responded = self._SyncObj__lastResponseTime  # reset to "now" on becoming leader
        heard = 1 + sum(1 for n in self._SyncObj__otherNodes if responded.get(n, 0) > since)
        if heard >= self._majority():
            self.isolated = False
            return
        log.warning(
            "stepping down: heard from %d of %d members in the last %.1f s",
            heard,
            len(self._SyncObj__otherNodes) + 1,
            window_s,
        )
        self.isolated = True
        self._SyncObj__raftLeader = None
        self._SyncObj__setState(FOLLOWER)
        # Not before a full timeout: the pre-vote decides whether it may stand again.
        self._SyncObj__raftElectionDeadline = clock() + self._SyncObj__generateRaftTimeout()

    # ---- leadership transfer ---------------------------------------------
    def transferLeadership(self, node: Any = None, callback: Any = None) -> None:
        # At most one election timeout: if the target has not won by then, writes resume.
        self._transfer_hold_until = clock() + self._SyncObj__conf.raftMinTimeout

        def done(result: Any, error: int) -> None:
            if error != 0:
                self._transfer_hold_until = 0.0
            if callback is not None:
                callback(result, error)

        super().transferLeadership(node, done)

    def _checkCommandsToApply(self) -> None:
        if self._SyncObj__raftState == LEADER and clock() < self._transfer_hold_until:
            return
        super()._checkCommandsToApply()

    # ---- PreVote ------------------------------------------------------------
    def _SyncObj__connectedToAnyone(self) -> bool:
        """pysyncobj asks this just before it starts an election (its deadline has
        passed): say yes only once a majority granted a pre-vote."""
        if not super()._SyncObj__connectedToAnyone():
            return False
        if self._SyncObj__transferInProgress or self._majority() <= 1:
            return True
        now = clock()
        if now - self._prevote_won_at < self._SyncObj__conf.raftMinTimeout:
            self._prevote_won_at = 0.0
            return True
        if self._SyncObj__raftLeader is not None:
            # The election timeout passed: this node no longer has a leader it
            # believes in (pysyncobj clears it when an election starts).
            self._SyncObj__raftLeader = None
            self._SyncObj__onLeaderChanged()
        if now - self._prevote_sent_at >= self._prevote_retry_s:
            self._ask_for_prevotes(now)
            self._prevote_retry_s = min(self._prevote_retry_s * 2, PREVOTE_RETRY_MAX_S)
        return False

    def _ask_for_prevotes(self, now: float) -> None:
        self._prevote_sent_at = now
        self._prevote_round += 1
        self._prevotes = {self._SyncObj__selfNode}
        request = {
            "type": "pre_vote",
            "round": self._prevote_round,
            "term": self._SyncObj__raftCurrentTerm + 1,
            "last_log_index": self._SyncObj__getCurrentLogIndex(),
            "last_log_term": self._SyncObj__getCurrentLogTerm(),
        }
        for node in self._SyncObj__otherNodes:
            if self.isNodeConnected(node):
                self._SyncObj__transport.send(node, request)

    def _would_vote_for(self, message: dict) -> bool:
        if message["term"] <= self._SyncObj__raftCurrentTerm:
            return False
        theirs = (message["last_log_term"], message["last_log_index"])
        if theirs < (self._SyncObj__getCurrentLogTerm(), self._SyncObj__getCurrentLogIndex()):
            return False
        if self._SyncObj__raftState == LEADER:
            return False  # alive and leading (CheckQuorum steps it down if it is cut off)
        leader = self._SyncObj__raftLeader
        if leader is None or not self.isNodeConnected(leader):
            return True
        return clock() - self._leader_heard_at >= self._SyncObj__conf.raftMinTimeout

    def _SyncObj__onMessageReceived(self, node: Any, message: dict) -> None:
        kind = message.get("type")
        if kind == "pre_vote":
            self._SyncObj__transport.send(
                node,
                {
                    "type": "pre_vote_response",
                    "round": message["round"],
                    "granted": self._would_vote_for(message),
                },
            )
            return
        if kind == "pre_vote_response":
            if message["round"] == self._prevote_round and message["granted"]:
                self._prevotes.add(node)
                if len(self._prevotes) >= self._majority():
                    self._prevote_won_at = clock()
                    self._prevote_round += 1  # later answers to this round do not count
            return
        if kind == "append_entries" and message["term"] >= self._SyncObj__raftCurrentTerm:
            self._leader_heard_at = clock()
            self._prevote_retry_s = PREVOTE_RETRY_MIN_S
            self.isolated = False
        super()._SyncObj__onMessageReceived(node, message)


class LeaderLossWatch:
    """On a follower, a leader lost or gone silent hastens the election.

    A follower whose connection to the leader has been closed for two heartbeats starts
    its election within a short random delay instead of waiting out the full timeout.
    A killed process closes its sockets at once, so this turns a 1-1.5 s detection into
    ~0.2-0.5 s. A merely slow leader keeps its connections and is still judged by the
    normal timeout; a dropped connection to a live leader costs at worst an unneeded
    election, which Raft makes safe. Fed on the tick thread (``observe``); ``due`` tells
    the tick thread's sleep when it next needs a look."""

    def __init__(self, raft: RaftSettings, own_address: str) -> None:
        self.heartbeat_s = raft.heartbeat_interval_ms / 1000
        self.election_s = raft.election_timeout_ms / 1000
        self.own_address = own_address
        self.lost_at: float | None = None
        self.hastened = False

    def due(self, obj: Any) -> float | None:
        """When this watch next needs a tick (pysyncobj's clock), or None."""
        if obj._SyncObj__raftState != FOLLOWER or obj._SyncObj__raftLeader is None:
            return None
        if self.hastened:
            return None
        due = obj._leader_heard_at + self.election_s
        if self.lost_at is not None:
            due = min(due, self.lost_at + 2 * self.heartbeat_s)
        return due

    def observe(self, obj: Any, members: Callable[[], list[str]]) -> None:
        leader = obj._SyncObj__raftLeader
        now = clock()
        connected = leader is not None and obj.isNodeConnected(leader)
        # A silent leader (stopped, or its traffic dropped: no socket closes) is
        # judged by the election timeout as before, but the survivors then stand in
        # rank order too, instead of at random over the next half timeout.
        silent = connected and now - obj._leader_heard_at >= self.election_s
        if obj._SyncObj__raftState != FOLLOWER or leader is None or (connected and not silent):
            self.lost_at = None
            self.hastened = False
            return
        if self.lost_at is None:
            self.lost_at = now
            if not silent:
                return
        if self.hastened or (not silent and now - self.lost_at < 2 * self.heartbeat_s):
            return
        # Once per loss, and staggered by rank among the survivors (sorted Raft
        # addresses): two followers that start together split the vote and then
        # wait a whole timeout. 100 ms apart, the first one's vote request arrives
        # long before the second times out.
        self.hastened = True
        survivors = sorted(a for a in members() if a != leader.address)
        rank = survivors.index(self.own_address)
        soon = now + rank * 0.1 + random.uniform(0, 0.05)
        if obj._SyncObj__raftElectionDeadline > soon:
            obj._SyncObj__raftElectionDeadline = soon
