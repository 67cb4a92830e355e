"""Where a local cluster lives on disk: node names, ports, configs, secrets, logs, pid files.

A layout is saved as `layout.json` in its root, so any process that knows the root (the
console's worker, `daemonctl`, a test) can load it and act on one node without having
started it.

    <root>/                     0700
      layout.json               the node list and the base config
      raft.secret               0600, the Raft password (written with O_EXCL)
      tokens.json               0600, [{"token", "role"}] every node accepts
      releases.json             which release each node runs (absent: the checkout)
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
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.localcluster import releases
from daemon.localcluster.ports import free_port, port_is_free

NAME_PREFIX = "unrdf-daemon-"
RAFT_PORT_OFFSET = 100  # node i: HTTP on base+i, Raft on base+100+i
LAYOUT_FILE = "layout.json"
RELEASES_FILE = "releases.json"
ROLES = ("admin", "operate", "read")


class LayoutError(Exception):
    """A layout that cannot be loaded or used; the message is one line."""


def node_name(index: int) -> str:
    return f"{NAME_PREFIX}{index}"


@dataclass(frozen=True)
class ReleaseChoice:
    """A node runs `release`, installed as an environment under `root` (see releases.py)."""

    release: str
    root: Path


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

    def next_index(self) -> int:
        """The lowest index no node of this layout is named after."""
        taken = {int(m[1]) for s in self.nodes if (m := re.fullmatch(r".*-(\d+)", s.name))}
        return next(i for i in range(len(taken) + 1) if i not in taken)

    def _ports_for(self, index: int, host: str) -> tuple[int, int]:
        # A sequential layout (make run) keeps its scheme when the ports are free.
        first = self.nodes[0] if self.nodes else None
        if first is not None and all(
            s.http_port - first.http_port == int(s.name.rsplit("-", 1)[1])
            and s.raft_port == s.http_port + RAFT_PORT_OFFSET
            for s in self.nodes
            if re.fullmatch(r".*-\d+", s.name)
        ):
            base = first.http_port - int(first.name.rsplit("-", 1)[1])
            http, raft = base + index, base + RAFT_PORT_OFFSET + index
            if port_is_free(http, host) and port_is_free(raft, host):
                return http, raft
        return free_port(host), free_port(host)

    def add_node(
        self, http_port: int | None = None, raft_port: int | None = None, host: str | None = None
    ) -> NodeSpec:
        """One more node, named after the next free index, on free ports (given ones are
        checked); its config knows every node so far, itself included (the others learn
        of it through a membership change, POST /admin/members)."""
        host = host or (self.nodes[0].host if self.nodes else "127.0.0.1")
        index = self.next_index()
        if http_port is None or raft_port is None:
            http_port, raft_port = self._ports_for(index, host)
        for port in (http_port, raft_port):
            if not port_is_free(port, host):
                raise LayoutError(f"port {port} on {host} is taken; cannot add a node on it")
        spec = NodeSpec(node_name(index), host, http_port, raft_port)
        shutil.rmtree(self.node_dir(spec.name), ignore_errors=True)  # debris of a removed one
        self.nodes.append(spec)
        self.save()
        self.write_config(spec)
        return spec

    def remove_node(self, name: str) -> NodeSpec:
        """Forget a node that has left the membership and been stopped: its spec, its
        release choice and its data (a node re-added under its name must start empty,
        not from a journal of a membership it is no longer part of)."""
        from daemon.localcluster.process import PidRecord  # process.py imports this module

        spec = self.node(name)
        record = PidRecord.read(self.pid_path(name))
        if record is not None and record.matches(str(self.config_path(name))):
            raise LayoutError(f"{name} is still running (pid {record.pid}); stop it first")
        self.nodes.remove(spec)
        self.save()
        self._set_release(name, None)
        shutil.rmtree(self.node_dir(name), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path(name).unlink()
        return spec

    # ---- releases --------------------------------------------------------------------------
    # Kept apart from layout.json, which `make run` rewrites on every start: the choice
    # must survive that, and any process that restarts a node reads it from disk then.
    @property
    def releases_path(self) -> Path:
        return self.root / RELEASES_FILE

    def _release_choices(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.releases_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise LayoutError(f"cannot read {self.releases_path}: {exc}") from None
        return data if isinstance(data, dict) else {}

    def release_of(self, name: str) -> ReleaseChoice | None:
        """The release `name` runs, or None: it runs this checkout (today's behaviour)."""
        entry = self._release_choices().get(name)
        if not isinstance(entry, dict) or not entry.get("release"):
            return None
        return ReleaseChoice(str(entry["release"]), Path(str(entry["root"])))

    def run_on(self, name: str, release: str | None, releases_root: Path | None = None) -> None:
        """Record that `name` runs `release` from `releases_root` from its next start on
        (None: the checkout). The release must be installed there."""
        self.node(name)
        if release is not None:
            if releases_root is None:
                raise LayoutError("run_on needs the releases root the release is installed in")
            try:
                installed = releases.is_installed(Path(releases_root), release)
            except releases.ReleaseError as exc:
                raise LayoutError(str(exc)) from None
            if not installed:
                raise LayoutError(f"release {release!r} is not installed in {releases_root}")
        self._set_release(name, release, releases_root)

    def _set_release(self, name: str, release: str | None, root: Path | None = None) -> None:
        choices = self._release_choices()
        if release is None:
            if choices.pop(name, None) is None:
                return
        else:
            choices[name] = {"release": release, "root": str(Path(root or ".").resolve())}
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(self.releases_path, json.dumps(choices, indent=2) + "\n")
