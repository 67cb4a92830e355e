"""CheckQuorum and PreVote for pysyncobj 0.3.17, which has neither.

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

Pre-vote messages are types older nodes ignore: in a cluster only partly
upgraded, an upgraded node can only become leader with upgraded peers' consent.
"""

from __future__ import annotations

import logging
from typing import Any

from pysyncobj import SyncObj
from pysyncobj.monotonic import monotonic as clock

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
