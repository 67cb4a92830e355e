"""The local node manager: nodes as processes on this machine, through `daemon.localcluster`.

Everything it needs is on disk, so the worker, the collector and `daemonctl` can each
act on a node another process started, and the nodes outlive all of them:
- the layout (`layout.json`, pid files) says which nodes exist and how to reach them;
- `manager.json` in the layout root says, per node, which release it is started from
  and whether an operator stopped it (so a crash restart leaves it stopped).

A node on a release is started with that release's environment's python
(`RELEASES_DIR/envs/<release>/bin/python`), with `DAEMON_RELEASE` set and no
`PYTHONPATH`, so it imports the release and never this checkout.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from console.runbooks.nodes.base import NodeManagerError, NodeState, StartResult
from daemon.localcluster import Layout, LayoutError, NodeProcess, NodeSpec, free_port, node_name
from daemon.localcluster import releases as release_store
from daemon.localcluster.layout import write_private

STATE_FILE = "manager.json"
LOG_TAIL_LINES = 20


class LocalNodeManager:
    def __init__(self, root: Path, envs_root: Path) -> None:
        self.root = Path(root)
        self.envs_root = Path(envs_root)

    # ---- what is on disk ------------------------------------------------------------
    def layout(self) -> Layout:
        try:
            return Layout.load(self.root)
        except LayoutError as exc:
            raise NodeManagerError(str(exc)) from None

    def _state(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {"nodes": {}}
        return data if isinstance(data.get("nodes"), dict) else {"nodes": {}}

    def _save_state(self, state: dict[str, Any]) -> None:
        write_private(self.root / STATE_FILE, json.dumps(state, indent=2) + "\n")

    def _node_state(self, name: str) -> dict[str, Any]:
        return dict(self._state()["nodes"].get(name, {}))

    def _update(self, name: str, **changes: Any) -> None:
        state = self._state()
        state["nodes"][name] = {**state["nodes"].get(name, {}), **changes}
        self._save_state(state)

    def names(self) -> list[str]:
        return [spec.name for spec in self.layout().nodes]

    def release_of(self, name: str) -> str:
        return str(self._node_state(name).get("release") or "")

    def process(self, name: str, layout: Layout | None = None) -> NodeProcess:
        layout = layout or self.layout()
        try:
            layout.node(name)
        except LayoutError as exc:
            raise NodeManagerError(str(exc)) from None
        release = self.release_of(name)
        if not release:
            return NodeProcess(layout, name)
        if not release_store.is_installed(self.envs_root, release):
            raise NodeManagerError(
                f"{name} is set to run release {release}, which is not installed under "
                f"{self.envs_root}; verify the release (it installs it) first"
            )
        python = str(release_store.python_of(self.envs_root, release))
        return NodeProcess(
            layout, name, python=python, env={"DAEMON_RELEASE": release, "PYTHONPATH": ""}
        )

    # ---- one node -------------------------------------------------------------------
    def status(self, name: str) -> NodeState:
        process = self.process(name)
        status = process.status(LOG_TAIL_LINES)
        return NodeState(
            name=name,
            running=status.running,
            pid=status.pid,
            release=self.release_of(name),
            stopped_by_operator=bool(self._node_state(name).get("stopped")),
            url=process.spec.url,
            raft_address=process.spec.raft_address,
            log_tail=status.log_tail,
        )

    def start(self, name: str, timeout_s: float = 60.0) -> StartResult:
        process = self.process(name)
        self._update(name, stopped=False)
        if not process.running():
            process.start()
        ready = process.wait_ready(timeout_s)
        return StartResult(name, ready, process.pid, process.status(LOG_TAIL_LINES).log_tail)

    def stop(self, name: str) -> None:
        # Recorded first: a crash-restart pass between the two must not revive it.
        self._update(name, stopped=True)
        self.process(name).stop()

    def restart(self, name: str, timeout_s: float = 60.0) -> StartResult:
        self.process(name).stop()
        return self.start(name, timeout_s)

    def run_on(self, name: str, release: str | None, timeout_s: float = 60.0) -> StartResult:
        """Restart `name` from `release` (None: the checkout); the choice is kept for
        every later start. The caller decides what to do when it does not come up."""
        if release and not release_store.is_installed(self.envs_root, release):
            raise NodeManagerError(f"release {release} is not installed under {self.envs_root}")
        self.process(name).stop()
        self._update(name, release=release or "")
        return self.start(name, timeout_s)

    # ---- the set of nodes -----------------------------------------------------------
    def add_node(self, release: str | None = None) -> NodeState:
        """A new node (next unused name, free ports) in the layout, with a config that
        knows every node so far and itself; not started, not yet a Raft member."""
        layout = self.layout()
        taken = {spec.name for spec in layout.nodes}
        index = next(i for i in range(len(taken) + 1) if node_name(i) not in taken)
        host = layout.nodes[0].host if layout.nodes else "127.0.0.1"
        spec = NodeSpec(node_name(index), host, free_port(host), free_port(host))
        leftover = layout.node_dir(spec.name)
        if leftover.exists():  # a removed node's directory: its old journal must not load
            self._set_aside(leftover)
        layout.nodes.append(spec)
        layout.save()
        layout.write_config(spec)
        self._update(spec.name, release=release or "", stopped=True)
        return self.status(spec.name)

    def remove_node(self, name: str) -> None:
        """Stop `name` and drop it from the layout; its directory is kept, set aside."""
        layout = self.layout()
        process = self.process(name, layout)
        self._update(name, stopped=True)
        process.stop()
        layout.nodes = [spec for spec in layout.nodes if spec.name != name]
        layout.save()
        self._set_aside(layout.node_dir(name))
        state = self._state()
        state["nodes"].pop(name, None)
        self._save_state(state)

    def _set_aside(self, directory: Path) -> None:
        removed = self.root / "removed"
        removed.mkdir(mode=0o700, exist_ok=True)
        if directory.exists():
            shutil.move(str(directory), removed / f"{directory.name}-{time.time_ns()}")
