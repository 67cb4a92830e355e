"""`manage.py collect`: poll every daemon node, record state, events, samples and the
execution feed. Runs until SIGTERM/SIGINT, finishing the tick in progress."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.clusters.models import Cluster
from console.collector.collector import Collector
from console.collector.collector_config import CollectorConfig, local_cluster_wanted
from console.collector.local import ensure_local_cluster

log = logging.getLogger("console.collector")


class StopSignal:
    """SIGTERM/SIGINT → finish the tick in progress, then return. The loop runs in
    asgiref's loop thread (so database work stays on this main thread, the one Django
    and tests expect), while signals arrive on the main thread: hand them across."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None
        self.requested = False

    def bind(self) -> asyncio.Event:
        self.loop, self.event = asyncio.get_running_loop(), asyncio.Event()
        if self.requested:
            self.event.set()
        return self.event

    def request(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if self.loop is not None and self.event is not None:
            self.loop.call_soon_threadsafe(self.event.set)

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self.request) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


class Command(BaseCommand):
    help = "Poll the daemon clusters: node state, events, chart samples, execution history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, help="seconds between polls (default 1.0)")
        parser.add_argument("--once", action="store_true", help="poll once and exit")
        parser.add_argument("--cluster", help="poll only this cluster")
        parser.add_argument(
            "--no-local", action="store_true", help="do not register the local cluster"
        )
        parser.add_argument(
            "--metrics-port", type=int, help="serve the collector's Prometheus metrics here"
        )

    def handle(self, *args: object, **options: object) -> None:
        # httpx logs every request at INFO: ten lines a second per cluster, all noise.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        interval = options.get("interval")
        if interval is not None and interval <= 0:
            raise CommandError("--interval must be a positive number of seconds")
        if not options["no_local"] and local_cluster_wanted():
            cluster, created = ensure_local_cluster()
            if created:
                self.stdout.write(
                    f"registered cluster {cluster.name}: {', '.join(cluster.seed_urls)}"
                )
        name = options.get("cluster")
        if name and not Cluster.objects.filter(name=name).exists():
            raise CommandError(f"no cluster named {name!r}")
        if options.get("metrics_port"):
            from prometheus_client import start_http_server

            start_http_server(int(options["metrics_port"]), addr="127.0.0.1")
        config = CollectorConfig.from_settings(interval_s=interval)
        stop = StopSignal()
        with stop.installed():
            async_to_sync(self.collect)(config, name, bool(options["once"]), stop)

    async def collect(
        self, config: CollectorConfig, cluster_name: str | None, once: bool, signals: StopSignal
    ) -> None:
        stop = signals.bind()
        if not once:
            log.info("collector: polling every %.2fs", config.interval_s)
        async with Collector(config, cluster_name) as collector:
            await collector.run(stop, once=once)
        if not once:
            log.info("collector: stopped")
