"""One node of a local cluster as a process: start, stop, restart, status.

Everything a NodeProcess needs is in the layout, so the process that restarts a node
(the console's worker, say) need not be the one that started it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from daemon.config import ENV_OVERRIDES
from daemon.localcluster import releases
from daemon.localcluster.layout import Layout, LayoutError, NodeSpec
from daemon.localcluster.polling import wait_until
from daemon.localcluster.process import ProcessHandle

# What the daemon reads from its environment (daemon/config.py). A node gets it from its
# config file and the layout's secrets files only: a starter's own DAEMON_TOKEN or
# RAFT_PASSWORD (the console's worker has both) must not change what a node accepts.
DAEMON_ENV_VARS = frozenset(ENV_OVERRIDES) | {
    "RAFT_PASSWORD",
    "RAFT_PASSWORD_FILE",
    "DAEMON_TOKEN",
    "DAEMON_OPERATE_TOKEN",
    "DAEMON_READ_TOKEN",
    "DAEMON_TOKENS_FILE",
}


def node_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without what the daemon reads, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key not in DAEMON_ENV_VARS}
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the log file as they happen
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class NodeStatus:
    name: str
    running: bool
    pid: int | None
    exit_code: int | None  # known only to the process that started it
    uptime_s: float | None
    log_tail: list[str]
    release: str | None = None  # what it starts from; None: this checkout


class NodeProcess:
    def __init__(
        self,
        layout: Layout,
        name: str,
        *,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.layout = layout
        self.spec: NodeSpec = layout.node(name)
        self._python = python
        self._env = dict(env or {})
        config_path = layout.config_path(name)
        self.handle = ProcessHandle(
            name,
            [python, "-m", "daemon", "run", "--config", str(config_path)],
            layout.log_path(name),
            layout.pid_path(name),
            cwd=layout.node_dir(name),
            env=node_env(env),
            # The config path names this node of this cluster: a reused pid running
            # anything else does not contain it.
            marker=str(config_path),
            # The node writes its pid into its data-dir lock: found there if the process
            # that started it died before writing the pid file.
            claim_path=layout.data_dir(name) / "node.lock",
        )

    @property
    def release(self) -> str | None:
        """The release this node starts from (None: this checkout), as recorded now."""
        choice = self.layout.release_of(self.name)
        return choice.release if choice else None

    def _prepare(self) -> None:
        """Set the command from the release recorded in the layout at the moment of the
        start, so whichever process restarts the node keeps what `run_on` chose.

        On a release: that environment's python with -P and without the caller's
        PYTHONPATH, so it imports the release's code and never this checkout's."""
        config_path = str(self.layout.config_path(self.name))
        choice = self.layout.release_of(self.name)
        if choice is None:
            self.handle.argv = [self._python, "-m", "daemon", "run", "--config", config_path]
            self.handle.env = node_env(self._env)
            return
        python = releases.python_of(choice.root, choice.release)
        if not releases.is_installed(choice.root, choice.release):
            raise LayoutError(
                f"{self.name} is set to run release {choice.release!r}, which is not "
                f"installed in {choice.root}"
            )
        env = node_env({**self._env, "DAEMON_RELEASE": choice.release})
        env.pop("PYTHONPATH", None)
        self.handle.argv = [str(python), "-P", "-m", "daemon", "run", "--config", config_path]
        self.handle.env = env

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def url(self) -> str:
        return self.spec.url

    @property
    def pid(self) -> int | None:
        return self.handle.pid

    def running(self) -> bool:
        return self.handle.running()

    def start(self) -> int:
        if not self.layout.config_path(self.name).exists():
            raise LayoutError(f"{self.name} has no config; write the layout's configs first")
        self._prepare()
        return self.handle.start()

    def stop(self, grace_s: float = 15.0) -> int | None:
        return self.handle.stop(grace_s)

    def restart(self, grace_s: float = 15.0) -> int:
        self._prepare()
        return self.handle.restart(grace_s)

    def status(self, log_lines: int = 20) -> NodeStatus:
        record = self.handle.record()
        return NodeStatus(
            name=self.name,
            running=record is not None,
            pid=record.pid if record else None,
            exit_code=self.handle.exit_code(),
            uptime_s=self.handle.uptime_s() if record else None,
            log_tail=self.handle.log_tail(log_lines),
            release=self.release,
        )

    def answers_ready(self, timeout_s: float = 2.0) -> bool:
        """The node says it has started (loaded its state and joined Raft)."""
        try:
            response = httpx.get(self.url + "/health/startup", timeout=timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def wait_ready(self, timeout_s: float = 30.0) -> bool:
        """Poll until the node is ready; False if it exits or the time runs out first."""
        deadline = time.monotonic() + timeout_s
        wait_until(lambda: not self.running() or self.answers_ready(), deadline, 0.1)
        return self.running() and self.answers_ready()


def nodes_of(layout: Layout, env: Mapping[str, str] | None = None) -> list[NodeProcess]:
    return [NodeProcess(layout, spec.name, env=env) for spec in layout.nodes]


def stop_nodes(nodes: list[NodeProcess], grace_s: float = 15.0) -> None:
    """Stop the nodes in parallel: each within the same bound, not one after the other."""
    threads = [threading.Thread(target=node.stop, args=(grace_s,)) for node in nodes]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + grace_s + 10
    for thread in threads:
        thread.join(timeout=max(0.1, deadline - time.monotonic()))
