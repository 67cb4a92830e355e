"""What a loaded node configuration is: typed, frozen values (built by daemon/config.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
ROLES = ("read", "operate", "admin")


class ConfigError(ValueError):
    """One line, naming the offending key."""


@dataclass(frozen=True)
class Peer:
    name: str
    raft_address: str  # host:port
    http_url: str


@dataclass(frozen=True)
class RaftSettings:
    heartbeat_interval_ms: int = 100
    election_timeout_ms: int = 1000
    snapshot_interval_ops: int = 100_000
    snapshot_interval_s: int = 600
    append_entries_batch: bool = False
    password: str = ""


@dataclass(frozen=True)
class Config:
    node_name: str
    data_dir: Path
    raft_bind: str  # host:port this node's Raft transport listens on
    raft_advertise: str  # host:port peers use to reach it (the Raft node id)
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    tls_port: int = 8443
    tls_cert: str = ""
    tls_key: str = ""
    advertise_http_url: str = ""
    peers: tuple[Peer, ...] = ()
    raft: RaftSettings = field(default_factory=RaftSettings)
    max_concurrent: int = 10
    queue_size: int = 1000
    cache_max_size: int = 1000
    tokens: tuple[tuple[str, str], ...] = ()  # (token, role)
    auth_disabled: bool = False
    anonymous_read: str = "health"  # none | health | all (see daemon.auth)
    max_body_bytes: int = 1_048_576
    # The replicated state as a whole is bounded by these (README, "Limits").
    max_operations: int = 100
    max_connections: int = 1000
    header_timeout_s: int = 10
    max_definition_bytes: int = 16_384
    max_params_bytes: int = 65_536
    allowed_hosts: tuple[str, ...] = ()
    http_allow: tuple[str, ...] = ()
    python_allow: tuple[str, ...] = ()
    shell_enabled: bool = False
    shell_allow: tuple[str, ...] = ()

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def journal_file(self) -> Path:
        return self.data_dir / "raft.journal"

    @property
    def dump_file(self) -> Path:
        return self.data_dir / "raft.dump"
