"""The local node manager's building blocks: the nodes' admin API, quorum checks, steps.

`LocalNodes` wraps one local cluster (its `Layout` and admin token): it reads the
cluster view from whichever node answers, hands leadership away, starts a node and
waits until it is ready and caught up, and reports each step (running, done, failed)
to `say` as it happens. The actions themselves (restart, stop, start, scale) are in
lifecycle.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from daemon.contract import quorum_size
from daemon.localcluster.layout import Layout, LayoutError, NodeSpec
from daemon.localcluster.node import NodeProcess
from daemon.localcluster.polling import TRANSIENT_ERRORS, wait_for
from daemon.localcluster.releases import ReleaseError

MIN_CLUSTER = 3
Say = Callable[[dict[str, Any]], None]


class LifecycleError(Exception):
    """An action refused or failed; the message is one line and says why."""


def admin_token(layout: Layout) -> str | None:
    """The admin token the layout's nodes accept (None when auth is off)."""
    try:
        entries = json.loads(layout.tokens_path.read_text())
    except (OSError, ValueError):
        return None
    return next((e["token"] for e in entries if e.get("role") == "admin"), None)


@dataclass
class Step:
    action: str
    step: str
    status: str  # "running", "done", "failed"
    detail: str = ""
    elapsed_s: float = 0.0


@dataclass
class Outcome:
    action: str
    node: str | None
    ok: bool
    elapsed_s: float
    steps: list[Step] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "steps": [asdict(s) for s in self.steps]}


class LocalNodes:
    """The node manager for one local cluster: one instance per action is fine."""

    def __init__(
        self,
        layout: Layout,
        *,
        token: str | None = None,
        say: Say | None = None,
        timeout_s: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.layout = layout
        self.token = token if token is not None else admin_token(layout)
        self.say = say or (lambda event: None)
        self.timeout_s = timeout_s
        self.env = env
        self.http = httpx.Client(timeout=5.0)
        self._outcome: Outcome | None = None
        self._t0 = time.monotonic()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> LocalNodes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- HTTP --------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, spec: NodeSpec, path: str) -> Any:
        response = self.http.get(spec.url + path, headers=self._headers())
        response.raise_for_status()
        return response.json()

    def call(self, spec: NodeSpec, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(
            method, spec.url + path, json=body, headers=self._headers(), timeout=30.0
        )
        if response.status_code >= 400:
            try:
                reason = response.json().get("error", response.text)
            except ValueError:
                reason = response.text[:200]
            raise LifecycleError(f"{spec.name} answered {response.status_code}: {reason}")
        return response.json()

    def process(self, name: str) -> NodeProcess:
        return NodeProcess(self.layout, name, env=self.env)

    def health(self, spec: NodeSpec) -> dict[str, Any] | None:
        try:
            return self.get(spec, "/health/node")
        except (*TRANSIENT_ERRORS, httpx.HTTPStatusError):
            return None

    def cluster_view(self, avoid: str | None = None) -> dict[str, Any]:
        """The cluster view of the first node that answers (not `avoid`, if another can)."""
        specs = sorted(self.layout.nodes, key=lambda s: s.name == avoid)
        for spec in specs:
            try:
                return self.get(spec, "/health/cluster")
            except (*TRANSIENT_ERRORS, httpx.HTTPStatusError):
                continue
        raise LifecycleError("no node of the cluster answers /health/cluster")

    def leader_spec(self, avoid: str | None = None) -> NodeSpec:
        def found() -> NodeSpec | None:
            view = self.cluster_view(avoid)
            name = view.get("leader")
            return self.layout.node(name) if name and view.get("hasQuorum") else None

        return wait_for(found, self.timeout_s, "a leader with quorum", interval=0.1)

    # ---- steps -------------------------------------------------------------------------
    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[Step]:
        assert self._outcome is not None
        step = Step(self._outcome.action, name, "running", detail)
        self._outcome.steps.append(step)
        started = time.monotonic()
        self.say(asdict(step))
        try:
            yield step
        except (
            LifecycleError, LayoutError, ReleaseError, RuntimeError, AssertionError,
            *TRANSIENT_ERRORS,
        ) as exc:  # fmt: skip
            step.status, step.elapsed_s = "failed", round(time.monotonic() - started, 3)
            step.detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.say(asdict(step))
            raise LifecycleError(f"{name}: {exc}") from exc
        step.status, step.elapsed_s = "done", round(time.monotonic() - started, 3)
        self.say(asdict(step))

    @contextmanager
    def action(self, action: str, node: str | None) -> Iterator[Outcome]:
        self._t0 = time.monotonic()
        self._outcome = Outcome(action, node, False, 0.0)
        try:
            yield self._outcome
            self._outcome.ok = True
        finally:
            self._outcome.elapsed_s = round(time.monotonic() - self._t0, 3)

    # ---- building blocks ---------------------------------------------------------------
    def running_members(self, view: dict[str, Any]) -> list[str]:
        return [n["name"] for n in view["nodes"] if n["reachable"]]

    def check_quorum_without(self, name: str, what: str) -> dict[str, Any]:
        """Refuse when the cluster would lose quorum while `name` is down."""
        view = self.cluster_view(avoid=name)
        size = view["clusterSize"]
        others = [n for n in self.running_members(view) if n != name]
        needed = quorum_size(size)
        if len(others) < needed:
            raise LifecycleError(
                f"refused: {what} {name} would leave {len(others)} of {size} members running "
                f"({', '.join(others) or 'none'}), and quorum needs {needed}"
            )
        return view

    def hand_leadership_away(self, name: str) -> str | None:
        """If `name` leads, transfer leadership to another member; the new leader."""
        leader = self.leader_spec()
        if leader.name != name:
            return None
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                answer = self.call(leader, "POST", "/admin/transfer-leader", {})
                break
            except LifecycleError:
                # Refused while no other member is caught up (a busy machine, a member
                # that just restarted): it passes once one is; the deadline bounds it.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
                leader = self.leader_spec()
                if leader.name != name:
                    return leader.name
        wait_for(
            lambda: self.leader_spec().name != name,
            self.timeout_s,
            f"a leader other than {name}",
            interval=0.1,
        )
        return str(answer.get("leader"))

    def start_and_wait(self, name: str) -> None:
        process = self.process(name)
        if not process.running():
            process.start()
        if not process.wait_ready(self.timeout_s):
            tail = " | ".join(process.status(8).log_tail)
            raise LifecycleError(f"{name} did not become ready; its log ends: {tail[-800:]}")

    def wait_caught_up(self, name: str) -> int:
        """Until `name` has applied everything the leader had committed; returns that index."""
        spec = self.layout.node(name)
        target = self._leader_commit(name)

        def caught_up() -> bool:
            health = self.health(spec)
            return health is not None and health["appliedIndex"] >= target

        wait_for(caught_up, self.timeout_s, f"{name} applied index {target}", interval=0.05)
        return target

    def _leader_commit(self, avoid: str) -> int:
        leader = self.leader_spec(avoid=avoid)
        return int(self.get(leader, "/health/node")["commitIndex"])

    def set_draining(self, name: str, draining: bool) -> None:
        self.call(self.layout.node(name), "POST", "/admin/drain" if draining else "/admin/undrain")

    def other_member(self, name: str) -> NodeSpec:
        """A running member other than `name`, to send membership calls to."""
        view = self.cluster_view(avoid=name)
        for member in self.running_members(view):
            if member != name:
                return self.layout.node(member)
        raise LifecycleError(f"no running member other than {name} answers")

    def wait_converged(self) -> int:
        """Until every node of the layout has applied the same index with the same digest."""

        def converged() -> int | None:
            views = [self.get(spec, "/health/node") for spec in self.layout.nodes]
            same = {(v["appliedIndex"], v["digest"]) for v in views}
            return views[0]["appliedIndex"] if len(same) == 1 else None

        return wait_for(converged, self.timeout_s, "every node at the same index and digest")

    def rewrite_configs(self) -> None:
        """Every node's config lists the current members, so a restart starts right."""
        self.layout.write_configs()
