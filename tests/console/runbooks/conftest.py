"""Fixtures for the runbook tests: a fake cluster (no processes) for the unit tests; a
real daemon cluster registered in the console, a Celery broker of the test's own and a
real worker process for the few end-to-end ones; users by role for both."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import LazySettings, settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from console.celery import app as celery_app
from console.clusters.models import Cluster, Node
from console.runbooks import live
from console.runbooks.nodes import manager_for
from daemon.localcluster import stop_nodes
from tests import cluster_harness
from tests.conftest import REPO_ROOT, database_url, embedded_defaults_env, wait_for
from tests.console.runbooks.fakes import FakeCluster
from tests.console.runbooks.lifecycle_support import WRITE_OP

TOKEN_ENV = "DAEMON_TOKEN_RUNBOOK_TEST"


@pytest.fixture
def fake() -> FakeCluster:
    """Three healthy nodes, unrdf-daemon-0 leading, none draining, all caught up."""
    return FakeCluster()


@pytest.fixture
def fake_cluster(db: None, fake: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """The fake cluster registered in the console; runs and preflight talk to it."""
    monkeypatch.setattr(live, "client_for", lambda cluster: fake)
    return fake.register()


@pytest.fixture
def daemon_cluster(tmp_path: Path) -> Iterator[cluster_harness.Cluster]:
    cluster = cluster_harness.Cluster(tmp_path / "daemons", size=3)
    try:
        yield cluster.start()
    finally:
        cluster.stop_all()


@pytest.fixture
def console_cluster(
    daemon_cluster: cluster_harness.Cluster, monkeypatch: pytest.MonkeyPatch
) -> Cluster:
    """The daemon cluster as the console knows it: a Cluster row and its nodes."""
    monkeypatch.setenv(TOKEN_ENV, cluster_harness.ADMIN_TOKEN)
    leader = daemon_cluster.leader().name
    cluster = Cluster.objects.create(
        name="local",
        seed_urls=[node.url for node in daemon_cluster.nodes],
        token_env=TOKEN_ENV,
        leader_name=leader,
        cluster_size=3,
        has_quorum=True,
    )
    for node in daemon_cluster.nodes:
        Node.objects.create(
            cluster=cluster,
            name=node.name,
            http_url=node.url,
            reachable=True,
            role="leader" if node.name == leader else "follower",
        )
    return cluster


def user_with_role(name: str, role: str) -> object:
    user = get_user_model().objects.create_user(name, password="correct horse battery")
    # get_or_create: a transactional test's flush drops the groups the migration made.
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def operator(db: None) -> object:
    return user_with_role("olivia", "operator")


@pytest.fixture
def viewer(db: None) -> object:
    return user_with_role("victor", "viewer")


@dataclass(frozen=True)
class Broker:
    var_dir: Path
    queue: str


@pytest.fixture
def isolated_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """A queue no other worker on this machine reads (and, for the default filesystem
    broker, folders under tmp_path), so tests neither steal nor leave others' messages."""
    var_dir = tmp_path / "console_var"
    queue = f"runbooks-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("RUNBOOK_CELERY_QUEUE", queue)
    saved = dict(celery_app.conf.broker_transport_options or {})
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folders = {
            "data_folder_in": var_dir / "broker" / "queue",
            "data_folder_out": var_dir / "broker" / "queue",
            "processed_folder": var_dir / "broker" / "processed",
            "control_folder": var_dir / "broker" / "control",
        }
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        celery_app.conf.broker_transport_options = {
            **saved,
            **{key: str(path) for key, path in folders.items()},
        }
    _drop_connection_pools()
    try:
        yield Broker(var_dir=var_dir, queue=queue)
    finally:
        if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
            with celery_app.connection_for_write() as connection:
                connection.default_channel.queue_delete(queue)
        celery_app.conf.broker_transport_options = saved
        _drop_connection_pools()


def _drop_connection_pools() -> None:
    # Pools are built from the configuration on first use; make the next publish use
    # the configuration set above. (What Celery itself does after a fork.)
    celery_app._after_fork()


@dataclass
class Worker:
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as an OOM kill or a lost node would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        # Celery's cold shutdown, to the worker alone: the test is over, and a warm one
        # (SIGTERM) took 3 s on RabbitMQ of every test that started a worker.
        self.proc.send_signal(signal.SIGQUIT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of the group
        self.proc.wait()


@pytest.fixture
def start_worker(
    transactional_db: None, isolated_broker: Broker, tmp_path: Path
) -> Iterator[Callable[[], Worker]]:
    """Start `celery -A console worker` as `make run` does, on the test database; each
    call starts another (after one was killed, say). All are stopped at the end."""
    from django.db import connection

    connection.ensure_connection()
    env = embedded_defaults_env(
        DATABASE_URL=database_url(connection.settings_dict),
        SECRET_KEY=settings.SECRET_KEY,
        CONSOLE_VAR_DIR=str(isolated_broker.var_dir),
        RUNBOOK_CELERY_QUEUE=isolated_broker.queue,
        PYTHONUNBUFFERED="1",
    )
    env[TOKEN_ENV] = cluster_harness.ADMIN_TOKEN
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "LOCAL_CLUSTER_DIR", "RELEASES_DIR"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    started: list[Worker] = []

    def start() -> Worker:
        log_path = tmp_path / f"worker-{len(started)}.log"
        argv = [sys.executable, "-m", "celery", "-A", "console", "worker", "--loglevel", "INFO"]
        argv += ["-Q", isolated_broker.queue, "--concurrency", "1"]
        argv += ["-n", f"{isolated_broker.queue}-{len(started)}@%h"]
        argv += ["--without-gossip", "--without-mingle"]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        worker = Worker(proc, log_path)
        started.append(worker)
        wait_for(
            lambda: "ready." in worker.log() or proc.poll() is not None, 60, "the worker to start"
        )
        if proc.poll() is not None:
            pytest.fail(f"the worker exited at start:\n{worker.log()}")
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def celery_worker(start_worker: Callable[[], Worker]) -> Worker:
    return start_worker()


@pytest.fixture
def managed(
    console_cluster: Cluster,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Cluster]:
    """The test cluster as the local node manager's: the worker finds its layout."""
    settings.LOCAL_CLUSTER_DIR = daemon_cluster.layout.root
    settings.RELEASES_DIR = tmp_path / "releases"
    monkeypatch.setenv("LOCAL_CLUSTER_DIR", str(daemon_cluster.layout.root))
    monkeypatch.setenv("RELEASES_DIR", str(tmp_path / "releases"))
    # The lifecycle tests' steady writer executes this operation.
    assert daemon_cluster.define(daemon_cluster.nodes[0], WRITE_OP).status_code in (200, 201)
    yield console_cluster
    nodes = manager_for(console_cluster)
    # Nodes the worker started or added, too; in parallel: each takes seconds to shut
    # down its own way, and one after another they were 9 s of every live test.
    stop_nodes([nodes.process(name) for name in nodes.names()], grace_s=20)
