"""The collector's loop: every tick, poll the clusters that need it at once (cadence.py:
in full, every node, or only the leader's summary for a chart sample while watches
hold), record what changed, mirror the execution feed, keep chart samples, evaluate
alerts, and mark runbook runs whose worker died `stale`.

HTTP runs on asyncio (keep-alive connections per node through aiohttp, keepalive.py; a
deadline on every call); database work runs through sync_to_async on Django's single
thread-sensitive thread, so it never races itself, and the sample ticks of one tick
write in one transaction (sample_batch.py). Ticks never overlap: the next starts after
the previous one ends, at the normal interval, or at the fast interval for a few seconds
after something changed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from asgiref.sync import sync_to_async
from django.db import close_old_connections, transaction
from django.utils import timezone
from prometheus_client import Counter, Histogram

from console.alerts.evaluate import evaluate_cluster
from console.clusters.daemon_client import DaemonClient, DaemonError
from console.clusters.models import Cluster, Sample
from console.collector.cadence import (
    ClusterMemory,
    Plan,
    alerts_due,
    mirror_due,
    plan,
    summary_agrees,
)
from console.collector.collector_config import CollectorConfig
from console.collector.mirror import (
    MirrorResult,
    journal_mirrored,
    mirror_feed,
    page_done,
    store_page,
)
from console.collector.observe import Observation, Target, fetch_summary, observe
from console.collector.record import Outcome, Recorder
from console.collector.sample_batch import SampleBatch, SampleRead
from console.collector.samples import (
    build_sample,
    executions_per_s,
    prune_samples,
    totals_of,
)
from console.collector.split_brain import evaluate_split_brain_safely
from console.collector.watch import Watches
from console.events import journal
from console.notifications.dispatch import dispatch_from_tick
from console.runbooks import services as runbook_services
from console.runbooks.nodes.crashes import restart_crashed
from daemon.keepalive import NodeClient

log = logging.getLogger("console.collector")

POLL_SECONDS = Histogram(
    "console_collector_poll_seconds", "Time to poll one cluster (HTTP and recording)", ["cluster"]
)
POLL_FAILURES = Counter(
    "console_collector_poll_failures_total", "Cluster polls that raised", ["cluster"]
)
NODE_UNREACHABLE = Counter(
    "console_collector_node_unreachable_total", "Node polls without an answer", ["cluster"]
)


@dataclass
class TickResult:
    clusters: int = 0
    failures: int = 0
    changed: bool = False
    duration_s: float = 0.0
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    plans: dict[str, Plan] = field(default_factory=dict)


def targets_of(cluster: Cluster) -> list[Target]:
    """Every member we know, plus seed URLs not yet matched to a node."""
    nodes = list(cluster.nodes.filter(removed=False))
    known_urls = {n.http_url.rstrip("/") for n in nodes}
    targets = [Target(n.http_url.rstrip("/"), n.name) for n in nodes]
    for url in cluster.seed_urls or []:
        if url and url.rstrip("/") not in known_urls:
            targets.append(Target(url.rstrip("/"), None))
            known_urls.add(url.rstrip("/"))
    return targets


def reap_stale_runs() -> None:
    """A run whose worker died stops looking "running" even when nobody opens the
    console; a failure here is logged, never fatal to the tick."""
    try:
        runbook_services.reap_stale_runs()
    except Exception:
        log.exception("reaping stale runbook runs failed")


def restart_crashed_nodes(clusters: list[Cluster]) -> None:
    """The node manager restarts local nodes that crashed (with a back-off, journaled)."""
    for cluster in clusters:
        try:
            restart_crashed(
                cluster,
                functools.partial(journal.append, actor="collector", cluster=cluster),
            )
        except Exception:
            log.exception("restarting crashed nodes of %s failed", cluster.name)


def evaluate_alerts(cluster: Cluster, now: datetime) -> None:
    """The alert rules over what was just recorded; their failure is logged, never fatal."""
    try:
        evaluate_cluster(cluster, now)
    except Exception:
        log.exception("alert evaluation failed for cluster %s", cluster.name)


class Collector:
    def __init__(self, config: CollectorConfig, cluster_name: str | None = None) -> None:
        self.config = config
        self.cluster_name = cluster_name
        self.memory: dict[int, ClusterMemory] = {}
        self.last_prune = 0.0
        self.last_housekeeping = 0.0
        self.tick_started = 0.0  # monotonic start of the tick in progress
        self.entered = False
        # A pool per node URL: httpcore's pool checks every connection it holds (a
        # select() each, and an is_idle() per pair) on each request and each answer, so
        # one pool over every node of ten clusters made that scan the collector's
        # largest cost (py-spy, issue 16); a node's own pool holds one to three.
        # Each node's GETs go over keep-alive connections of that node's own aiohttp
        # session (keepalive.py: httpx's per-request cost was half the collector's CPU
        # with ten clusters), the rest through that node's own httpx client.
        self.pools: dict[str, NodeClient] = {}
        # Set by a node's watch answering "changed" (watch.py): the next tick starts now.
        self.wake = asyncio.Event()
        self.watches: Watches | None = None

    async def __aenter__(self) -> Collector:
        self.entered = True
        if self.config.watch:
            self.watches = Watches(self.wake)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.watches is not None:
            await self.watches.close()
        for pool in self.pools.values():
            await pool.aclose()
        self.pools.clear()
        self.entered = False

    def http(self, url: str) -> NodeClient:
        """The client whose pool holds the connections to this node."""
        assert self.entered, "use `async with Collector(...)`"
        pool = self.pools.get(url)
        if pool is None:
            limits = httpx.Limits(max_connections=8, max_keepalive_connections=6)
            fallback = httpx.AsyncClient(limits=limits, timeout=self.config.timeout_s)
            pool = NodeClient(fallback, self.config.timeout_s, max_connections=8, max_keepalive=6)
            self.pools[url] = pool
        return pool

    # ---- one tick ------------------------------------------------------------
    def _clusters(self) -> list[Cluster]:
        clusters = Cluster.objects.all()
        if self.cluster_name:
            clusters = clusters.filter(name=self.cluster_name)
        return list(clusters)

    async def tick(self) -> TickResult:
        started = time.monotonic()
        clusters = await sync_to_async(self._clusters)()
        # Cadence is judged against the tick's start, the same instant for every
        # cluster: a cluster's own start drifts later under load, and a sample due at
        # 0.95 s would then be skipped to the next tick (a 2 s gap in the chart).
        self.tick_started = started
        plans = {c.pk: self._plan(c, started) for c in clusters}
        busy = [c for c in clusters if plans[c.pk] is not Plan.IDLE]
        sampled = sum(1 for c in busy if plans[c.pk] is Plan.SAMPLE)
        batch = SampleBatch(self._record_samples, sampled) if sampled > 1 else None
        results = await asyncio.gather(
            *(self.poll_cluster(c, plans[c.pk], batch) for c in busy), return_exceptions=True
        )
        tick = TickResult(clusters=len(clusters))
        tick.plans = {c.name: plans[c.pk] for c in clusters}
        for cluster, result in zip(busy, results, strict=True):
            if isinstance(result, BaseException):
                tick.failures += 1
                POLL_FAILURES.labels(cluster.name).inc()
                log.error("polling cluster %s failed", cluster.name, exc_info=result)
            else:
                tick.outcomes[cluster.name] = result
                tick.changed = tick.changed or result.changed
        if time.monotonic() - self.last_prune >= self.config.prune_every_s:
            self.last_prune = time.monotonic()
            await sync_to_async(prune_samples)(timezone.now(), self.config.sample_retention_s)
        # Once per interval (not on every fast or woken tick), so a run whose worker died
        # turns `stale` within about a second of its deadline; GET handlers no longer reap
        # (a read should not write).
        if started - self.last_housekeeping >= self.config.interval_s * 0.95:
            self.last_housekeeping = started
            await sync_to_async(reap_stale_runs)()
            await sync_to_async(restart_crashed_nodes)(clusters)
            # Plan notifications from the journal (throttled, never raises); the worker sends.
            await sync_to_async(dispatch_from_tick)()
        tick.duration_s = time.monotonic() - started
        return tick

    def _memory(self, cluster: Cluster) -> ClusterMemory:
        return self.memory.setdefault(cluster.pk, ClusterMemory(Recorder(self.config)))

    def _plan(self, cluster: Cluster, now: float) -> Plan:
        memory = self._memory(cluster)
        if self.watches is None:
            return Plan.FULL
        dirty = self.watches.take_dirty(cluster.pk)
        urls = [p.target.url for p in memory.polls if p.name in (memory.members or ())]
        watched = memory.members is not None and self.watches.watching(cluster.pk, urls)
        return plan(memory, self.config, now, watched, dirty)

    async def poll_cluster(
        self, cluster: Cluster, how: Plan = Plan.FULL, batch: SampleBatch | None = None
    ) -> Outcome:
        if how is Plan.SAMPLE:
            outcome = await self.sample_cluster(cluster, batch)
            if outcome is not None:
                return outcome
        return await self.full_poll(cluster)

    async def sample_cluster(
        self, cluster: Cluster, batch: SampleBatch | None = None
    ) -> Outcome | None:
        """The leader's summary only: lag, the cluster row, a chart sample, the feed if
        the log moved. None if the summary is missing or disagrees with the rows (the
        caller then polls in full).

        The feed's next page is read before anything is written, so the tick's writes
        (lag, cluster row, chart point, mirrored rows and their event) go to the
        database together: with `batch`, in one transaction with the other clusters'
        sample ticks of this tick (SampleBatch), else in one of their own."""
        started = time.monotonic()
        try:
            read = await self._read_sample(cluster)
        except BaseException:
            if batch is not None:
                batch.withdraw()
            raise
        if read is None:
            if batch is not None:
                batch.withdraw()
            return None
        if batch is not None:
            await batch.submit(read)
        else:
            await sync_to_async(self._record_samples)([read])
        if read.error is not None:
            raise read.error
        if not read.written:
            raise RuntimeError(f"the sample of {cluster.name} was not written")
        memory, url, commit = read.memory, read.url, read.commit
        memory.sampled_at = self.tick_started
        if read.page is not None:
            if read.saved is None:  # another writer moved the cursor: read it next time
                memory.mirrored_commit = memory.feed_cursor = None
            else:
                memory.feed_cursor = read.saved[1]
                if page_done(read.page, read.saved[1]):
                    memory.mirrored_commit = commit
                else:  # a backlog: the following pages as a full poll reads them
                    await self._mirror(cluster, read.client, url, memory, commit)
        elif read.due:  # the cursor is not known here: the mirror reads it
            await self._mirror(cluster, read.client, url, memory, commit)
        if read.changed or alerts_due(memory, self.config, self.tick_started):
            memory.alerts_at = self.tick_started
            await sync_to_async(evaluate_alerts)(cluster, read.obs.at)
        if read.changed:
            memory.fast_until = time.monotonic() + self.config.fast_for_s
        POLL_SECONDS.labels(cluster.name).observe(time.monotonic() - started)
        return Outcome(read.changed, url, [p.target.url for p in memory.polls])

    async def _read_sample(self, cluster: Cluster) -> SampleRead | None:
        """A sample tick's HTTP: the leader's summary and, if the log moved and the
        cursor is known, the feed's next page. None: the summary is missing or
        disagrees with the rows."""
        memory = self._memory(cluster)
        url = memory.leader_url
        assert url is not None
        client = DaemonClient(cluster, role="read")
        at = timezone.now()
        summary = await fetch_summary(
            client, self.http, url, self.config.timeout_s, memory.metrics_5m
        )
        if summary is None or not summary_agrees(cluster, summary, memory):
            return None
        obs = Observation(at=at, polls=memory.polls, summary=summary)
        commit = summary.cluster_view.commit_index
        due = mirror_due(memory, commit)
        after, page = memory.feed_cursor, None
        if due and after is not None:
            try:
                page = await client.aget(
                    url,
                    "/executions",
                    params={"after": after, "limit": self.config.feed_page_limit},
                    client=self.http(url),
                    timeout_s=self.config.feed_timeout_s,
                )
            except DaemonError as err:  # the next tick retries from the same cursor
                log.warning("execution feed of %s: %s", cluster.name, err)
                memory.mirrored_commit = memory.feed_cursor = None
                due = False
        return SampleRead(
            cluster,
            memory,
            client,
            url,
            obs,
            commit,
            due,
            after if page is not None else None,
            page,
        )

    async def full_poll(self, cluster: Cluster) -> Outcome:
        started = time.monotonic()
        memory = self._memory(cluster)
        client = DaemonClient(cluster, role="read")  # least privilege: it only reads
        targets = await sync_to_async(targets_of)(cluster)
        if self.watches is not None:
            self.watches.sync(cluster.pk, client, targets)
        # A node whose watch just said "I lead" answers the summary; the last known
        # leader may be the node that died.
        watched_leader = self.watches.leader_url(cluster.pk) if self.watches else None
        preferred = watched_leader or memory.preferred_url
        obs = await observe(client, self.http, targets, preferred, self.config.timeout_s)
        NODE_UNREACHABLE.labels(cluster.name).inc(sum(1 for p in obs.polls if not p.reachable))
        outcome = await sync_to_async(self._record)(cluster, obs, memory)
        memory.preferred_url = outcome.leader_url or (obs.summary.url if obs.summary else None)
        feed_url = outcome.leader_url or next(iter(outcome.reachable_urls), None)
        commit = obs.summary.cluster_view.commit_index if obs.summary else None
        if feed_url is not None:
            await self._mirror(cluster, client, feed_url, memory, commit)
        memory.alerts_at = self.tick_started
        await sync_to_async(evaluate_alerts)(cluster, obs.at)
        await sync_to_async(evaluate_split_brain_safely)(cluster, obs)
        if outcome.changed or not cluster.leader_name:
            memory.fast_until = time.monotonic() + self.config.fast_for_s
        # What the sample ticks until the next full poll reuse and check against.
        memory.full_at = memory.sampled_at = self.tick_started
        memory.polls = obs.polls
        memory.lags = {}  # the full poll wrote the node rows: sample ticks read them again
        memory.leader_url = outcome.leader_url
        view = obs.summary.cluster_view if obs.summary else None
        memory.members = frozenset(view.by_name) if view else None
        memory.reachable = view.reachable_nodes if view else None
        memory.metrics_5m = obs.summary.metrics_5m if obs.summary else None
        POLL_SECONDS.labels(cluster.name).observe(time.monotonic() - started)
        return outcome

    async def _mirror(
        self,
        cluster: Cluster,
        client: DaemonClient,
        url: str,
        memory: ClusterMemory,
        commit: int | None,
    ) -> None:
        try:
            result = await mirror_feed(
                client,
                self.http(url),
                cluster,
                url,
                page_limit=self.config.feed_page_limit,
                max_pages=self.config.feed_max_pages,
                timeout_s=self.config.feed_timeout_s,
                cursor=memory.feed_cursor,
            )
        except DaemonError as err:  # the next tick retries from the same cursor
            log.warning("execution feed of %s: %s", cluster.name, err)
            memory.mirrored_commit = memory.feed_cursor = None
        else:
            memory.mirrored_commit = commit
            memory.feed_cursor = result.cursor

    def _record_samples(self, reads: list[SampleRead]) -> None:
        """The writes of these sample ticks in one transaction (the chart points in one
        INSERT). If it fails, each cluster's again in a transaction of its own, so one
        cluster's failure fails only that cluster's sample, as before; what a failed
        attempt changed in the collector's memory is put back first."""
        kept = [read.keep() for read in reads]
        try:
            with transaction.atomic():
                Sample.objects.bulk_create([self._write_sample_tick(read) for read in reads])
        except Exception:
            if len(reads) == 1:
                reads[0].restore(kept[0])
                raise
            log.exception("the sample ticks of %d clusters failed together; each alone", len(reads))
            for read, state in zip(reads, kept, strict=True):
                read.restore(state)
        else:
            for read in reads:
                read.written = True
            return
        for read, state in zip(reads, kept, strict=True):
            try:
                with transaction.atomic():
                    self._write_sample_tick(read).save()
            except Exception as err:
                read.restore(state)
                read.error = err
            else:
                read.written = True

    def _write_sample_tick(self, read: SampleRead) -> Sample:
        """One sample tick's writes (the caller's transaction): the feed page read with
        ?after=`read.after` (if any) under the cluster row's lock, as save_page stores
        it, the lag and cluster columns (the cursor among them, one UPDATE) and the
        `executions.mirrored` event; returns the chart point, to be saved."""
        cluster, memory, after, page = read.cluster, read.memory, read.after, read.page
        saved = None
        also: tuple[str, ...] = ()
        if page is not None and after is not None:
            locked = Cluster.objects.select_for_update().values_list("feed_cursor", flat=True)
            cluster.feed_cursor = locked.get(pk=cluster.pk)
            saved = store_page(cluster, after, page)
            if saved is not None and saved[1] > after:
                cluster.feed_cursor = saved[1]
                also = ("feed_cursor",)
        read.changed = memory.recorder.apply_summary(cluster, read.obs, memory.lags, also)
        sample = self._sample_row(cluster, read.obs, memory)
        if saved is not None:
            journal_mirrored(cluster, MirrorResult(count=saved[0], last_seq=saved[1]))
        read.saved = saved
        return sample

    def _record(self, cluster: Cluster, obs: Observation, memory: ClusterMemory) -> Outcome:
        """A full poll's rows and, when due, its chart point, in one transaction."""
        with transaction.atomic():
            outcome = memory.recorder.apply(cluster, obs)
            # Judged on tick starts (see tick()), so a late poll does not skip a chart point.
            due = memory.last_sample_at is None or (
                self.tick_started - memory.sampled_at >= self.config.sample_interval_s * 0.95
            )
            if due:
                self._sample_row(cluster, obs, memory).save()
        return outcome

    def _sample_row(self, cluster: Cluster, obs: Observation, memory: ClusterMemory) -> Sample:
        """The chart point (not saved), and the totals the next one is measured from."""
        totals = totals_of(obs)
        sample = build_sample(cluster, obs, executions_per_s(memory.totals, totals))
        memory.totals = totals or memory.totals
        memory.last_sample_at = obs.at
        return sample

    # ---- the loop --------------------------------------------------------------
    def next_interval(self) -> float:
        now = time.monotonic()
        if any(m.fast_until > now for m in self.memory.values()):
            return self.config.fast_interval_s
        return self.config.interval_s

    async def run(self, stop: asyncio.Event, once: bool = False) -> None:
        while not stop.is_set():
            self.wake.clear()  # a change seen from here on is in this tick or wakes the next
            result = await self.tick()
            log.debug("tick: %d clusters in %.3fs", result.clusters, result.duration_s)
            if once:
                return
            wait_s = max(0.0, self.next_interval() - result.duration_s)
            await _first_of(stop, self.wake, wait_s)
            # A long-lived process must drop broken or expired connections itself, as
            # Django does per request (not before a lone tick: tests run those inside
            # their transaction, which this would close).
            await sync_to_async(close_old_connections)()


async def _first_of(stop: asyncio.Event, wake: asyncio.Event, timeout_s: float) -> None:
    """Wait until either event is set, or timeout_s."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waits:
            waiter.cancel()
