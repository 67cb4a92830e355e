"""pysyncobj 0.3.17's Raft message handling, corrected where it is wrong.

`SafeSyncObj` subclasses pysyncobj's SyncObj and overrides name-mangled
private methods (``_SyncObj__onMessageReceived``): pysyncobj registers its
handlers through ``self.__name``, which resolves through the subclass. Only
``daemon/raft*.py`` may reach into pysyncobj internals.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pysyncobj import SyncObj

trace = logging.getLogger("daemon.raft.trace")
if os.environ.get("DAEMON_RAFT_TRACE"):
    # Off by default: one line per rejected append, for the chaos scenarios.
    trace.setLevel(logging.DEBUG)

LEADER = 2


class SafeSyncObj(SyncObj):
    def _SyncObj__onMessageReceived(self, node: Any, message: dict) -> None:
        kind = message.get("type")
        tracing = trace.isEnabledFor(logging.DEBUG)
        if tracing and kind == "next_node_idx" and message.get("reset"):
            before = self._SyncObj__raftNextIndex.get(node)
            super()._SyncObj__onMessageReceived(node, message)
            if self._SyncObj__raftState == LEADER:
                trace.debug(
                    "leader: %s rejected, hint %s, nextIndex %s -> %s",
                    getattr(node, "address", node),
                    message.get("next_node_idx"),
                    before,
                    self._SyncObj__raftNextIndex.get(node),
                )
            return
        super()._SyncObj__onMessageReceived(node, message)
