"""Where a local cluster lives on disk: node names, ports, configs, secrets, logs, pid files.

A layout is saved as `layout.json` in its root, so any process that knows the root (the
console's worker, `daemonctl`, a test) can load it and act on one node without having
started it.

    <root>/                     0700
      layout.json               the node list and the base config
      raft.secret               0600, the Raft password (written with O_EXCL)
      tokens.json               0600, [{"token", "role"}] every node accepts
      run/<name>.pid            0600, the running node's pid record (see process.py)
      <name>/daemon-config.json the node's generated config
      <name>/data/              its Raft journal and snapshots (dataDir)
      <name>/node.log           its stdout and stderr
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAME_PREFIX = "unrdf-daemon-"
RAFT_PORT_OFFSET = 100  # node i: HTTP on base+i, Raft on base+100+i
LAYOUT_FILE = "layout.json"
ROLES = ("admin", "operate", "read")


class LayoutError(Exception):
    """A layout that cannot be loaded or used; the message is one line."""


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A free port on `host` not handed out before by this process: the kernel can give
    the same ephemeral port to two back-to-back bind(0) calls, and two nodes of one
    cluster must never share one."""
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def node_name(index: int) -> str:
    return f"{NAME_PREFIX}{index}"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    host: str
    http_port: int
    raft_port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def raft_address(self) -> str:
        return f"{self.host}:{self.raft_port}"

    def peer(self) -> dict[str, str]:
        return {"name": self.name, "raftAddress": self.raft_address, "httpUrl": self.url}


# ---- secrets -----------------------------------------------------------------------------
def _open_exclusive(path: Path) -> int:
    # O_EXCL: never follow or reuse a file someone else put there; 0600 from the start,
    # so the secret is never readable by others, not even for a moment.
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (mode 0600), replacing it atomically if it exists."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = _open_exclusive(temporary)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def stored_secret(path: Path) -> tuple[str, bool]:
    """(value, generated): the secret stored at `path`, generated (O_EXCL, 0600) if missing."""
    value = secrets.token_urlsafe(32)
    try:
        fd = _open_exclusive(path)
    except FileExistsError:
        return path.read_text().strip(), False
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value, True


# ---- the layout --------------------------------------------------------------------------
@dataclass
class Layout:
    root: Path
    nodes: list[NodeSpec]
    # Merged into every node's config; the keys the layout owns (names, ports, dirs,
    # peers, secrets files) always win.
    base_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    @classmethod
    def sequential(
        cls,
        root: Path,
        count: int,
        http_port: int,
        host: str = "127.0.0.1",
        base_config: dict[str, Any] | None = None,
    ) -> Layout:
        """Node i serves HTTP on http_port+i and Raft on http_port+100+i."""
        nodes = [
            NodeSpec(node_name(i), host, http_port + i, http_port + RAFT_PORT_OFFSET + i)
            for i in range(count)
        ]
        return cls(root, nodes, base_config or {})

    @classmethod
    def on_free_ports(
        cls, root: Path, count: int, host: str = "127.0.0.1", base_config: dict | None = None
    ) -> Layout:
        """Every node on its own free HTTP and Raft port (tests, benchmarks, scratch nodes)."""
        nodes = [
            NodeSpec(node_name(i), host, free_port(host), free_port(host)) for i in range(count)
        ]
        return cls(root, nodes, base_config or {})

    @classmethod
    def load(cls, root: Path) -> Layout:
        path = Path(root) / LAYOUT_FILE
        try:
            data = json.loads(path.read_text())
            nodes = [NodeSpec(**item) for item in data["nodes"]]
            return cls(Path(root), nodes, data.get("baseConfig", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LayoutError(f"cannot load the cluster layout {path}: {exc}") from None

    def save(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.run_dir.mkdir(mode=0o700, exist_ok=True)
        data = {
            "nodes": [vars(spec) for spec in self.nodes],
            "baseConfig": self.base_config,
        }
        write_private(self.root / LAYOUT_FILE, json.dumps(data, indent=2) + "\n")

    # ---- paths ---------------------------------------------------------------------------
    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        known = ", ".join(spec.name for spec in self.nodes)
        raise LayoutError(f"no node named {name!r} in {self.root} (nodes: {known})")

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def raft_secret_path(self) -> Path:
        return self.root / "raft.secret"

    @property
    def tokens_path(self) -> Path:
        return self.root / "tokens.json"

    def node_dir(self, name: str) -> Path:
        return self.root / name

    def data_dir(self, name: str) -> Path:
        return self.node_dir(name) / "data"

    def config_path(self, name: str) -> Path:
        return self.node_dir(name) / "daemon-config.json"

    def log_path(self, name: str) -> Path:
        return self.node_dir(name) / "node.log"

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    # ---- secrets -------------------------------------------------------------------------
    def write_secrets(
        self, raft_password: str | None = None, tokens: Mapping[str, str] | None = None
    ) -> str:
        """Store the Raft password (given, else the stored one, else generated) and the
        role -> token map the nodes accept; return the Raft password."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if raft_password:
            write_private(self.raft_secret_path, raft_password + "\n")
        else:
            raft_password, _ = stored_secret(self.raft_secret_path)
        unknown = set(tokens or {}) - set(ROLES)
        if unknown:
            raise LayoutError(f"unknown token role {sorted(unknown)[0]!r}; roles: {ROLES}")
        entries = [{"token": token, "role": role} for role, token in (tokens or {}).items()]
        write_private(self.tokens_path, json.dumps(entries) + "\n")
        return raft_password

    # ---- configs -------------------------------------------------------------------------
    def peers(self, nodes: list[NodeSpec] | None = None) -> list[dict[str, str]]:
        return [spec.peer() for spec in (nodes or self.nodes)]

    def config_for(self, spec: NodeSpec, peers: list[dict[str, str]]) -> dict[str, Any]:
        config = copy.deepcopy(self.base_config)
        config.update(nodeName=spec.name, dataDir=str(self.data_dir(spec.name)), peers=peers)
        config.setdefault("http", {}).update(host=spec.host, port=spec.http_port)
        raft = config.setdefault("raft", {})
        raft.update(bindAddress=spec.raft_address, passwordFile=str(self.raft_secret_path))
        auth = config.setdefault("auth", {})
        if not auth.get("disabled"):
            auth["tokensFile"] = str(self.tokens_path)
        return config

    def write_config(self, spec: NodeSpec, peers: list[dict[str, str]] | None = None) -> Path:
        node_dir = self.node_dir(spec.name)
        node_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._move_old_data(spec.name)
        path = self.config_path(spec.name)
        config = self.config_for(spec, peers if peers is not None else self.peers())
        path.write_text(json.dumps(config, indent=2) + "\n")
        return path

    def _move_old_data(self, name: str) -> None:
        # Before this layout, `python -m daemon cluster` (and so `make run`) used the node's
        # directory itself as its dataDir: carry its Raft journal and snapshot over once,
        # so an existing var/cluster keeps its state.
        node_dir, data_dir = self.node_dir(name), self.data_dir(name)
        old = sorted(node_dir.glob("raft.*"))
        if old and not data_dir.exists():
            data_dir.mkdir(mode=0o700)
            for path in old:
                path.rename(data_dir / path.name)

    def write_configs(self) -> None:
        peers = self.peers()
        for spec in self.nodes:
            self.write_config(spec, peers)

    def add_node(self, http_port: int, raft_port: int, host: str = "127.0.0.1") -> NodeSpec:
        """One more node, named after the next index; its config knows every node so far,
        itself included (the others learn of it through a membership change)."""
        spec = NodeSpec(node_name(len(self.nodes)), host, http_port, raft_port)
        self.nodes.append(spec)
        self.save()
        self.write_config(spec)
        return spec
