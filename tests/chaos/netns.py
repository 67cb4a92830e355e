"""Run a scenario inside a network namespace of its own, and cut Raft links there.

The pytest side calls `run_in_private_netns`, which starts the scenario module under
`unshare --net --pid`; everything the scenario starts (daemon nodes, writers) is its
child and shares those namespaces, so iptables rules and addresses never leak to the
machine, and no node outlives the scenario. The scenario side refuses to touch
iptables outside such a namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
UNSHARE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--"]
HOST_NETNS_VAR = "CHAOS_HOST_NETNS"  # the caller's namespace, which a scenario must not be in


def why_no_netns() -> str | None:
    """None when scenarios can run here, else the reason to skip."""
    if os.geteuid() != 0:
        return "network faults need root (iptables inside a private network namespace)"
    for tool in ("unshare", "iptables", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = subprocess.run(
        [
            "unshare",
            "--net",
            "--pid",
            "--fork",
            "--mount-proc",
            "--",
            "ip",
            "link",
            "set",
            "lo",
            "up",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot make a network namespace: {probe.stderr.strip()}"
    return None


def run_in_private_netns(module: str, *args: str, timeout_s: float = 240) -> dict[str, Any]:
    """Run `python -m module args` in a fresh network namespace; return the JSON
    object it prints as its last stdout line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), HOST_NETNS_VAR: _namespace_of("self")}
    # A PID namespace too, with the scenario as its init: when it exits or is
    # killed, the kernel kills every node it started (they run in sessions of
    # their own, so no process group would catch them).
    proc = subprocess.Popen(
        [*UNSHARE, sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # unshare, hence (--kill-child) the scenario
        stdout, stderr = proc.communicate()
        raise AssertionError(
            f"scenario {module} did not finish in {timeout_s:.0f} s\nstderr: {stderr[-5000:]}"
        ) from None
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise AssertionError(
            f"scenario {module} failed (exit {done.returncode})\n"
            f"stdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-5000:]}"
        )
    return json.loads(lines[-1])


def _namespace_of(pid: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def enter() -> None:
    """Called first by a scenario: refuse to run in the caller's network namespace
    (or without knowing it), then bring loopback up (a new one starts with it down)."""
    host = os.environ.get(HOST_NETNS_VAR)
    if not host or _namespace_of("self") == host:
        raise SystemExit("refusing to add iptables rules outside a private network namespace")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


class RaftCut:
    """Drop every packet to or from one node's Raft port.

    The rules match the port, so they cut every link only if each peer dials this
    node: pysyncobj connects from the higher address to the lower one, so the node
    to cut must have the lowest Raft address (see `lowest_raft_address`)."""

    def __init__(self, raft_port: int) -> None:
        self.rules = [
            ["INPUT", "-p", "tcp", "--dport", str(raft_port), "-j", "DROP"],
            ["OUTPUT", "-p", "tcp", "--sport", str(raft_port), "-j", "DROP"],
        ]
        self.active = False

    def drop(self) -> None:
        for rule in self.rules:
            subprocess.run(["iptables", "-A", *rule], check=True)
        self.active = True

    def heal(self) -> None:
        if not self.active:
            return
        for rule in self.rules:
            subprocess.run(["iptables", "-D", *rule], check=True)
        self.active = False
