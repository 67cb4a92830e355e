"""Delay on the Raft links without netem: a userspace TCP proxy per node that holds
every chunk for a while before passing it on, and the NAT rules that send the peers'
Raft connections through it.

Kernels without sch_netem cannot delay with `tc`; this can, with the same effect on
the Raft protocol (every message is late by delay ± jitter, in order). Only Raft is
delayed: the rules match the nodes' Raft ports, so HTTP (clients, probes) is not.

How traffic reaches the proxies, inside the run's private network namespace (the
only place rules are added; netns.enter refuses elsewhere):
- nat OUTPUT: a new connection to a node's Raft port is redirected to its proxy;
- filter OUTPUT: a packet to a Raft port on a connection that bypasses the proxy (one
  opened before the fault) is answered with a reset, so the nodes re-dial, through
  the proxies, within a second (their keepalives write every second);
- the proxies' own connections carry a firewall mark (SO_MARK) both rules skip.
Healing deletes the rules and closes the proxies; the nodes re-dial directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import subprocess
import threading
import time
from collections.abc import Iterable

MARK = 0x2A
SO_MARK = getattr(socket, "SO_MARK", 36)  # Linux; 36 where Python does not name it
CHUNK = 64 << 10


class DelayProxy:
    """One listening port per target; each accepted connection is piped to its target
    with every chunk delivered `delay_s` ± `jitter_s` after it was read (never out of
    order: a chunk waits for the one before it)."""

    def __init__(self, targets: Iterable[int], delay_s: float, jitter_s: float = 0.0) -> None:
        self.targets = list(targets)
        self.delay_s, self.jitter_s = delay_s, jitter_s
        self.ports: dict[int, int] = {}  # target port -> proxy port
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> DelayProxy:
        self._thread.start()
        for target in self.targets:
            server = asyncio.run_coroutine_threadsafe(self._serve(target), self._loop).result(10)
            self._servers.append(server)
            self.ports[target] = server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, target: int) -> asyncio.Server:
        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._pipe_to(target, reader, writer)

        return await asyncio.start_server(accepted, "127.0.0.1", 0)

    async def _pipe_to(
        self, target: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, SO_MARK, MARK)  # skipped by the rules: no loop
        sock.setblocking(False)
        try:
            await self._loop.sock_connect(sock, ("127.0.0.1", target))
            up_reader, up_writer = await asyncio.open_connection(sock=sock)
        except OSError:
            sock.close()
            writer.close()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._one_way(reader, up_writer), self._one_way(up_reader, writer))
        finally:
            for each in (writer, up_writer):
                self._writers.discard(each)
                each.close()

    async def _one_way(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        delivering = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(CHUNK):
                late = self.delay_s + random.uniform(-self.jitter_s, self.jitter_s)
                await queue.put((time.monotonic() + max(0.0, late), data))
        except OSError:
            pass
        finally:
            await queue.put((0.0, b""))
            with contextlib.suppress(OSError):
                await delivering

    def stop(self) -> None:
        async def close_all() -> None:
            for server in self._servers:
                server.close()
            for writer in list(self._writers):
                writer.close()
            pipes = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pipes:
                task.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)


def _rules(target: int, proxy: int) -> list[list[str]]:
    skip_ours = ["-m", "mark", "!", "--mark", hex(MARK)]
    return [
        ["-t", "nat", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", str(target),
         *skip_ours, "-j", "REDIRECT", "--to-ports", str(proxy)],
        ["-t", "filter", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", str(target),
         *skip_ours, "-j", "REJECT", "--reject-with", "tcp-reset"],
    ]  # fmt: skip


def _iptables(op: str, rule: list[str]) -> subprocess.CompletedProcess[str]:
    """`rule` is ["-t", table, chain, match...]; `op` is -A or -D."""
    table, chain, match = rule[:2], rule[2], rule[3:]
    return subprocess.run(
        ["iptables", *table, op, chain, *match], capture_output=True, text=True, check=False
    )


class RaftDelay:
    """Every Raft link of the given ports delayed by `delay_s` ± `jitter_s` each way."""

    def __init__(self, raft_ports: Iterable[int], delay_s: float, jitter_s: float = 0.0) -> None:
        self.proxy = DelayProxy(raft_ports, delay_s, jitter_s)
        self.rules: list[list[str]] = []

    def inject(self) -> None:
        self.proxy.start()
        try:
            for target, port in self.proxy.ports.items():
                for rule in _rules(target, port):
                    added = _iptables("-A", rule)
                    if added.returncode != 0:
                        raise RuntimeError(f"iptables: {added.stderr.strip()}")
                    self.rules.append(rule)
        except BaseException:
            self.heal()
            raise

    def heal(self) -> None:
        for rule in reversed(self.rules):
            _iptables("-D", rule)
        self.rules.clear()
        self.proxy.stop()
