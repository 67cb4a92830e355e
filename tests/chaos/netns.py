"""Run a scenario inside a network namespace of its own, and cut Raft links there.

The pytest side calls `run_in_private_netns`, which starts the scenario module under
`unshare --net`; everything the scenario starts (daemon nodes, writers) is its
child and shares that namespace, so iptables rules and addresses never leak to the
machine. The scenario side refuses to touch iptables outside such a namespace.
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


def why_no_netns() -> str | None:
    """None when scenarios can run here, else the reason to skip."""
    if os.geteuid() != 0:
        return "network faults need root (iptables inside a private network namespace)"
    for tool in ("unshare", "iptables", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = subprocess.run(
        ["unshare", "--net", "--", "ip", "link", "set", "lo", "up"],
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
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Its own process group, which the daemon nodes it starts join: on a timeout
    # the whole group goes, not just the scenario (no orphaned nodes).
    proc = subprocess.Popen(
        ["unshare", "--net", "--", sys.executable, "-m", module, *args],
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
        os.killpg(proc.pid, signal.SIGKILL)
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
    """Called first by a scenario: refuse to run in the machine's own namespace,
    then bring loopback up (a new namespace starts with it down)."""
    # `unshare --net -- python ...` execs in place, so the parent is still outside.
    if _namespace_of("self") == _namespace_of(str(os.getppid())):
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
