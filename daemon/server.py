"""Run one node: bind ports, serve HTTP (and HTTPS), stop gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from typing import IO

import uvicorn

from daemon.api import build_app
from daemon.config import Config, ConfigError
from daemon.node import DaemonNode
from daemon.slowclients import protocol_with_deadline

log = logging.getLogger("daemon")


# How often an idle HTTP server's loop wakes (uvicorn's own: 0.1 s).
IDLE_WAKE_S = 1.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers (the node drains first), and waking once a
    second, not ten times: its loop only refreshes the Date header each second and
    watches `should_exit`, which now wakes it at once. Ten wakes a second cost an idle
    node 0.3 % of a core (BENCHMARKS.md, eighth round)."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit_requested = asyncio.Event()  # before uvicorn sets should_exit
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value:
            self._exit_requested.set()

    async def main_loop(self) -> None:
        # uvicorn's on_tick does its once-a-second work when counter % 10 == 0.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), IDLE_WAKE_S)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections
    # only when the socket says so; without it every keep-alive response waits
    # out the client's delayed ACK (~40 ms on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{what}: cannot bind {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def check_free(host_port: str, what: str) -> None:
    host, port = host_port.rsplit(":", 1)
    bind_socket(host.strip("[]"), int(port), what).close()


def lock_data_dir(config: Config) -> IO[str]:
    # The journal and dump hold every definition and result: owner-only (issue 14).
    os.umask(0o077)
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        config.data_dir.chmod(0o700)
        for name in ("raft.journal", "raft.dump", "node.lock"):
            if (config.data_dir / name).exists():
                (config.data_dir / name).chmod(0o600)
        handle = open(config.data_dir / "node.lock", "a+")  # noqa: SIM115 - held for the process life
    except OSError as exc:
        raise ConfigError(f"dataDir {config.data_dir}: {exc.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ConfigError(
            f"dataDir {config.data_dir} is in use by another daemon process"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _uvicorn_config(
    app: object, sock_host: str, port: int, config: Config, tls: bool
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=sock_host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Nothing reads the client's address, so no middleware rewrites it from
        # X-Forwarded-For on every request (one layer less per request, and no header
        # a client can forge ever becomes the peer).
        proxy_headers=False,
        ssl_certfile=config.tls_cert if tls else None,
        ssl_keyfile=config.tls_key if tls else None,
        timeout_graceful_shutdown=5,
        # Slow clients (issue 14): past this many open connections requests get a 503,
        # and a connection that starts no request within the deadline is closed.
        limit_concurrency=config.max_connections,
        http=protocol_with_deadline(config.header_timeout_s),
        h11_max_incomplete_event_size=64 * 1024,
    )


async def serve(config: Config) -> int:
    lock = lock_data_dir(config)
    sockets = [(bind_socket(config.http_host, config.http_port, "http.port (HTTP_PORT)"), False)]
    if config.tls_enabled:
        sockets.append(
            (bind_socket(config.http_host, config.tls_port, "http.tlsPort (TLS_PORT)"), True)
        )
    check_free(config.raft_bind, "raft.bindAddress (RAFT_BIND)")

    node = DaemonNode(config)
    await node.start()
    app = build_app(node)
    servers = [
        _Server(_uvicorn_config(app, config.http_host, s.getsockname()[1], config, tls))
        for s, tls in sockets
    ]
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)

    serving = [
        loop.create_task(srv.serve(sockets=[s]))
        for srv, (s, _) in zip(servers, sockets, strict=True)
    ]
    scheme = "https" if config.tls_enabled else "http"
    log.info(
        "node %s serving http on %s:%d%s, raft on %s",
        config.node_name,
        config.http_host,
        config.http_port,
        f" and {scheme} on {config.tls_port}" if config.tls_enabled else "",
        config.raft_bind,
    )
    announcer = loop.create_task(_announce_ready(node))

    stopper = loop.create_task(stop_requested.wait())
    done_shutdown = loop.create_task(node.shutting_down.wait())
    await asyncio.wait([stopper, done_shutdown, *serving], return_when=asyncio.FIRST_COMPLETED)
    if stop_requested.is_set():
        log.info("signal received: draining before exit")
        # A second signal during the drain exits at once; but a terminal's Ctrl-C
        # reaches the node and `daemon cluster` together, and the supervisor's SIGTERM
        # follows within milliseconds: that is the same request, not impatience.
        first_signal_at = loop.time()

        def second_signal() -> None:
            if loop.time() - first_signal_at > 1.0:
                os._exit(1)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, second_signal)
        await node.graceful_shutdown()
    for srv in servers:
        srv.should_exit = True
    await asyncio.gather(*serving, return_exceptions=True)
    announcer.cancel()
    await node.stop()
    lock.close()
    log.info("node %s stopped", config.node_name)
    return 0


NOT_READY_REPORT_S = 10.0


async def _announce_ready(node: DaemonNode) -> None:
    loop = asyncio.get_running_loop()
    report_at = loop.time() + NOT_READY_REPORT_S
    while not node.raft.is_ready():
        if loop.time() >= report_at:
            # Whoever waits for the "ready" line below learns why it has not come.
            report_at = loop.time() + NOT_READY_REPORT_S
            try:
                reason = node.raft.not_ready_reason()
            except Exception as exc:  # read across threads: never let it stop the announcer
                reason = f"(state unreadable: {exc!r})"
            log.warning("node %s not ready yet: %s", node.name, reason)
        await asyncio.sleep(0.05)
    # The runbook greps for this line after a restore.
    log.info("cluster started: node %s ready, leader %s", node.name, node.directory.leader_name())


def run(config: Config) -> int:
    try:
        return asyncio.run(serve(config))
    except ConfigError as exc:
        print(f"daemon: {exc}", file=sys.stderr)
        return 2
