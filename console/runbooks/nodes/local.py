"""The local node manager: nodes as processes on this machine, through `daemon.localcluster`.

Everything it needs is on disk, so the worker, the collector and `daemonctl` can each
act on a node another process started, and the nodes outlive all of them:
- the layout (`layout.json`, `releases.json`, pid files) says which nodes exist, how to
  reach them and which release each starts from (`Layout.run_on`: that release's
  environment's python, `DAEMON_RELEASE`, no `PYTHONPATH`), so a restart by any process
  keeps the release;
- `manager.json` in the layout root says whether an operator stopped a node (so a crash
  restart leaves it stopped) and the crash restarts' back-off.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from console.runbooks.nodes.base import NodeManagerError, NodeState, StartResult
from daemon.localcluster import Layout, LayoutError, NodeProcess
from daemon.localcluster import releases as release_store
from daemon.localcluster.layout import write_private

STATE_FILE = "manager.json"
RETIRED_DIR = "retired"  # nodes that left the membership, kept for a rollback
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

    def crash_record(self, name: str) -> dict[str, Any]:
        return dict(self._node_state(name).get("crash") or {})

    def set_crash_record(self, name: str, record: dict[str, Any] | None) -> None:
        self._update(name, crash=record)

    def names(self) -> list[str]:
        return [spec.name for spec in self.layout().nodes]

    def release_of(self, name: str) -> str:
        choice = self.layout().release_of(name)
        return choice.release if choice else ""

    def process(self, name: str, layout: Layout | None = None) -> NodeProcess:
        layout = layout or self.layout()
        try:
            layout.node(name)
        except LayoutError as exc:
            raise NodeManagerError(str(exc)) from None
        return NodeProcess(layout, name)

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
            try:
                process.start()
            except LayoutError as exc:
                raise NodeManagerError(str(exc)) from None
        ready = process.wait_ready(timeout_s)
        return StartResult(name, ready, process.pid, process.status(LOG_TAIL_LINES).log_tail)

    def stop(self, name: str) -> None:
        # Recorded first: a crash-restart pass between the two must not revive it.
        self._update(name, stopped=True)
        self.process(name).stop()

    def restart(self, name: str, timeout_s: float = 60.0) -> StartResult:
        self.stop(name)
        return self.start(name, timeout_s)

    def run_on(self, name: str, release: str | None, timeout_s: float = 60.0) -> StartResult:
        """Restart `name` from `release` (None: the checkout); the choice is kept for
        every later start. The caller decides what to do when it does not come up."""
        if release and not release_store.is_installed(self.envs_root, release):
            raise NodeManagerError(f"release {release} is not installed under {self.envs_root}")
        self.stop(name)
        try:
            self.layout().run_on(name, release or None, self.envs_root)
        except LayoutError as exc:
            raise NodeManagerError(str(exc)) from None
        return self.start(name, timeout_s)

    # ---- the set of nodes -----------------------------------------------------------
    def add_node(self, release: str | None = None) -> NodeState:
        """A new node (next free name and ports) in the layout, its config knowing every
        node so far and itself; not started, not yet a Raft member."""
        layout = self.layout()
        try:
            spec = layout.add_node()
            if release:
                layout.run_on(spec.name, release, self.envs_root)
        except LayoutError as exc:
            raise NodeManagerError(str(exc)) from None
        self._update(spec.name, stopped=True)
        return self.status(spec.name)

    def remove_node(self, name: str) -> None:
        """Stop `name` and forget it (spec, release choice, data): it has left the membership."""
        layout = self.layout()
        self._update(name, stopped=True)
        self.process(name, layout).stop()
        try:
            layout.remove_node(name)
        except LayoutError as exc:
            raise NodeManagerError(str(exc)) from None
        state = self._state()
        state["nodes"].pop(name, None)
        self._save_state(state)

    def retire_node(self, name: str) -> Path:
        """Like `remove_node`, but its directory (config, Raft data, log) is moved aside
        to `<root>/retired/<name>-<UTC time>/` and kept, not deleted: a blue-green switch
        keeps the old members' data for its rollback window. Returns where it went;
        a node no longer in the layout was retired before: its newest kept directory."""
        layout = self.layout()
        kept_root = self.root / RETIRED_DIR
        if name not in {spec.name for spec in layout.nodes}:
            kept = sorted(kept_root.glob(f"{name}-*"))
            if not kept:
                raise NodeManagerError(f"no node named {name!r} and nothing of it was kept")
            return kept[-1]
        self._update(name, stopped=True)
        self.process(name, layout).stop()
        kept_root.mkdir(mode=0o700, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = kept_root / f"{name}-{stamp}"
        source = layout.node_dir(name)
        if source.exists():
            source.rename(target)  # same filesystem: atomic, never half-copied
        else:
            target.mkdir(mode=0o700)
        self.remove_node(name)  # its directory is gone already: nothing deleted
        return target
