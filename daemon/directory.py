"""Where every member is: node name -> Raft address and HTTP URL.

The config's peers come first; members added at run time (replicated in the state)
override them. Every other part of a node asks here, so names, never Raft
addresses, reach the API.
"""

from __future__ import annotations

from daemon.config import Config
from daemon.errors import ApiError
from daemon.raft import RaftNode
from daemon.state import ReplicatedState


class Directory:
    def __init__(self, config: Config, state: ReplicatedState, raft: RaftNode) -> None:
        self._config = config
        self._state = state
        self._raft = raft

    def entries(self) -> dict[str, dict[str, str]]:
        """name -> {raftAddress, httpUrl}: config first, replicated members override."""
        config = self._config
        entries = {
            config.node_name: {
                "raftAddress": config.raft_advertise,
                "httpUrl": config.advertise_http_url,
            }
        }
        for peer in config.peers:
            entries[peer.name] = {"raftAddress": peer.raft_address, "httpUrl": peer.http_url}
        entries.update(self._state.members_snapshot())
        return entries

    def name_of(self, address: str | None) -> str | None:
        """The member name for a Raft address (the address itself if it is unknown)."""
        if address is None:
            return None
        for name, entry in self.entries().items():
            if entry["raftAddress"] == address:
                return name
        return address

    def leader_name(self) -> str | None:
        return self.name_of(self._raft.leader_address())

    def url_of(self, name: str) -> str:
        """A member's HTTP URL; 404 naming the known members if there is no such member."""
        entries = self.entries()
        entry = entries.get(name)
        if entry is None:
            raise ApiError(404, f"unknown node '{name}'; known: {', '.join(sorted(entries))}")
        return entry["httpUrl"]
