"""Dashboard freshness: kill -9 the leader's process; how long until the browser's DOM
shows the new leader (`data-testid="leader-name"`), against the raw election time
(first moment a survivor's /health/node names a new leader).

A real 3-node daemon cluster (tests/cluster_harness.py), the collector at its default
1 s poll and daphne as their own processes, and Debian's chromium through Playwright.
A MutationObserver in the page stamps every change of the leader's text with
Date.now(), the same wall clock the kill is stamped with here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import ADMIN_TOKEN, Cluster, Node, summarize
from bench.console_common import (
    CLUSTER_NAME,
    TOKEN_ENV,
    close_django_connections,
    collector,
    console_env,
    create_cluster_row,
    create_user_and_session,
    daphne,
    recreate_database,
    setup_django,
)

CHROMIUM = "/usr/bin/chromium"
# As tests/browser/support.py: no sandbox as root, and nothing that phones home (its
# connections would be refused by the closed network, many at a time).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOM_TIMEOUT_MS = 20_000
ELECTION_POLL_S = 0.02

OBSERVER_JS = """
() => {
  window.__leaderLog = [];
  const read = () => {
    const el = document.querySelector('[data-testid="leader-name"]');
    return el ? el.textContent.trim() : null;
  };
  let last = read();
  window.__leaderLog.push({t: Date.now(), text: last});
  new MutationObserver(() => {
    const now = read();
    if (now !== last) { last = now; window.__leaderLog.push({t: Date.now(), text: now}); }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""
SHOWS_NEW_LEADER_JS = """
(a) => window.__leaderLog.find(
  e => e.t >= a.t && e.text && a.names.some(n => e.text.includes(n))) || null
"""


@contextlib.contextmanager
def daemon_cluster(size: int = 3) -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="bench-console-cluster-"))
    cluster = Cluster(base, size=size)
    try:
        yield cluster.start()
    finally:
        cluster.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def election_time(cluster: Cluster, old: str, killed_at: float, limit_s: float = 20) -> float:
    """Seconds from the kill until any survivor's /health/node names another leader."""
    survivors = cluster.live_nodes()
    with httpx.Client() as client:
        while time.time() - killed_at < limit_s:
            for node in survivors:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    leader = client.get(f"{node.url}/health/node", timeout=0.5).json()["leader"]
                    if leader and leader != old:
                        return time.time() - killed_at
            time.sleep(ELECTION_POLL_S)
    raise TimeoutError("no new leader elected")


def dom_time(page: Any, names: list[str], killed_at: float) -> tuple[float, str]:
    """Seconds from the kill until the DOM showed one of `names` as leader (page stamp)."""
    arg = {"t": killed_at * 1000, "names": names}
    handle = page.wait_for_function(SHOWS_NEW_LEADER_JS, arg=arg, timeout=DOM_TIMEOUT_MS)
    entry = handle.json_value()
    return entry["t"] / 1000 - killed_at, entry["text"]


def wait_dom_shows(page: Any, cluster: Cluster, leader: Node) -> None:
    """Every node reachable and the agreed leader on screen: the trial can start."""
    for node in cluster.nodes:
        page.wait_for_selector(
            f'[data-testid="node-row-{node.name}"][data-reachable="true"]',
            timeout=DOM_TIMEOUT_MS,
        )
    page.wait_for_function(
        "(n) => (document.querySelector('[data-testid=\"leader-name\"]') || {}).textContent"
        "?.includes(n)",
        arg=leader.name,
        timeout=DOM_TIMEOUT_MS,
    )


def one_trial(page: Any, cluster: Cluster, settle_s: float) -> dict[str, Any]:
    leader = cluster.leader()
    wait_dom_shows(page, cluster, leader)
    time.sleep(settle_s)  # the collector is back at its normal interval (fast mode is 5 s)
    survivors = [n.name for n in cluster.nodes if n is not leader]
    killed_at = time.time()
    os.kill(leader.proc.pid, signal.SIGKILL)
    election_s = election_time(cluster, leader.name, killed_at)
    dom_s, text = dom_time(page, survivors, killed_at)
    leader.proc.wait(timeout=10)
    cluster.start_node(leader)
    cluster.wait_ready([leader])
    cluster.wait_converged()
    return {
        "killed": leader.name,
        "electionS": round(election_s, 3),
        "domS": round(dom_s, 3),
        "consoleShareS": round(dom_s - election_s, 3),
        "domText": text,
    }


def run_trials(url: str, session: str, cluster: Cluster, trials: int, settle_s: float) -> list:
    from playwright.sync_api import sync_playwright

    results: list[dict[str, Any]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": session, "url": url}])
            page = context.new_page()
            page.goto(f"{url}/clusters/{CLUSTER_NAME}/")
            if "/accounts/login/" in page.url:
                raise RuntimeError("the session cookie was not accepted")
            page.wait_for_selector('[data-testid="live-status"][data-state="live"]')
            page.evaluate(OBSERVER_JS)
            for n in range(trials):
                result = one_trial(page, cluster, settle_s)
                print(f"  trial {n + 1}: {result}")
                results.append(result)
        finally:
            browser.close()
    return results


def freshness(redis: bool, trials: int, settle_s: float, logs: Path) -> dict[str, Any]:
    """One series of trials with the in-memory layer (redis=False) or Redis."""
    recreate_database()
    setup_django()
    session = create_user_and_session()
    with daemon_cluster() as cluster:
        create_cluster_row([n.url for n in cluster.nodes])
        close_django_connections()
        env = console_env(redis, **{TOKEN_ENV: ADMIN_TOKEN})
        with daphne(env, logs) as (_, url), collector(env, logs):
            results = run_trials(url, session, cluster, trials, settle_s)
    return {
        "layer": "redis" if redis else "in-memory",
        "collectorInterval": "default (1 s; 0.25 s for 5 s after a change)",
        "trials": results,
        "domS": summarize([r["domS"] for r in results], 3),
        "electionS": summarize([r["electionS"] for r in results], 3),
        "consoleShareS": summarize([r["consoleShareS"] for r in results], 3),
    }
