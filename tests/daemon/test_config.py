"""`python -m daemon run --config FILE`: a bad config exits 2 with ONE stderr line naming
the key; environment variables override the file (the runbook's CACHE_MAX_SIZE)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon.config import ConfigError, load_config
from tests.cluster_harness import RAFT_PASSWORD, ROOT, daemon_free_env, free_port

pytestmark = pytest.mark.cluster


clean_env = daemon_free_env


def base_config(tmp_path: Path) -> dict:
    return {
        "nodeName": "unrdf-daemon-0",
        "dataDir": str(tmp_path / "data"),
        "http": {"host": "127.0.0.1", "port": free_port()},
        "raft": {"bindAddress": f"127.0.0.1:{free_port()}"},
    }


def run_daemon(config_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, "-m", "daemon", "run", "--config", str(config_path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as exc:  # it started: the config was accepted
        raise AssertionError(f"the daemon accepted the config and ran: {exc.stderr!r}") from None


def assert_refused(done: subprocess.CompletedProcess, *needles: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip("\n").splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("daemon: "), line
    for needle in needles:
        assert needle in line, line
    assert "Traceback" not in done.stderr
    return line


@pytest.fixture
def write(tmp_path: Path) -> Iterator:
    def write(config: dict | str) -> Path:
        path = tmp_path / "bad.json"
        path.write_text(config if isinstance(config, str) else json.dumps(config))
        return path

    yield write


def with_key(config: dict, dotted: str, value: object) -> dict:
    node = config
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return config


# ---- one line, exit 2, naming the key ----------------------------------------------------

BAD = [
    ("unknown-top-level-key", "bogus", 1, ["'bogus'"]),
    ("election-timeout-string", "raft.electionTimeoutMs", "fast", ["raft.electionTimeoutMs"]),
    ("election-timeout-bool", "raft.electionTimeoutMs", True, ["raft.electionTimeoutMs"]),
    ("heartbeat-too-slow", "raft.heartbeatIntervalMs", 900, ["raft.electionTimeoutMs"]),
    ("http-port-too-high", "http.port", 70000, ["http.port", "70000"]),
    ("http-port-zero", "http.port", 0, ["http.port"]),
    ("http-port-string", "http.port", "eighty", ["http.port"]),
    ("tls-port-negative", "http.tlsPort", -1, ["http.tlsPort"]),
    ("wildcard-raft-bind", "raft.bindAddress", "0.0.0.0:9181", ["raft.bindAddress", "wildcard"]),
    ("ipv6-wildcard-raft-bind", "raft.bindAddress", "[::]:9181", ["raft.bindAddress"]),
    ("raft-bind-no-port", "raft.bindAddress", "127.0.0.1", ["raft.bindAddress"]),
    ("tls-cert-without-key", "http.tlsCert", "/etc/hostname", ["http.tlsCert", "http.tlsKey"]),
    ("tls-key-without-cert", "http.tlsKey", "/etc/hostname", ["http.tlsCert", "http.tlsKey"]),
    ("peers-not-a-list", "peers", "unrdf-daemon-1", ["peers"]),
    ("peers-entry-not-object", "peers", ["unrdf-daemon-1"], ["peers[0]"]),
    (
        "peers-entry-bad-address",
        "peers",
        [{"name": "unrdf-daemon-1", "raftAddress": "nowhere", "httpUrl": "http://127.0.0.1:1"}],
        ["peers[0].raftAddress"],
    ),
    (
        "peers-entry-bad-name",
        "peers",
        [{"name": "Node_1", "raftAddress": "127.0.0.1:1", "httpUrl": "http://127.0.0.1:1"}],
        ["peers[0].name"],
    ),
    (
        "peers-entry-unknown-key",
        "peers",
        [{"name": "unrdf-daemon-1", "raftAddress": "127.0.0.1:1", "httpUrl": "http://x", "p": 1}],
        ["peers[0]", "'p'"],
    ),
    ("node-name-invalid", "nodeName", "Daemon 0", ["nodeName"]),
    ("max-concurrent-zero", "maxConcurrent", 0, ["maxConcurrent"]),
    ("cache-max-size-negative", "cacheMaxSize", -1, ["cacheMaxSize"]),
    ("anonymous-read-not-bool", "auth.anonymousRead", "maybe", ["auth.anonymousRead"]),
    ("short-token", "auth.tokens", [{"token": "short", "role": "admin"}], ["auth.tokens[0]"]),
    ("unknown-role", "auth.tokens", [{"token": "x" * 20, "role": "root"}], ["auth.tokens[0]"]),
    ("body-limit-tiny", "limits.maxBodyBytes", 10, ["limits.maxBodyBytes"]),
]


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    """Run every BAD case at once (each is a fresh interpreter): case id -> outcome."""
    procs = {}
    for case, key, value, _ in BAD:
        directory = tmp_path_factory.mktemp(case)
        path = directory / "bad.json"
        path.write_text(json.dumps(with_key(base_config(directory), key, value)))
        procs[case] = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(path)],
            cwd=ROOT,
            env=clean_env(RAFT_PASSWORD=RAFT_PASSWORD),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outcomes = {}
    for case, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err = f"the daemon accepted the config and ran: {err}"
        outcomes[case] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return outcomes


@pytest.mark.parametrize(("case", "needles"), [(b[0], b[3]) for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_value_exits_2_with_one_line_naming_the_key(
    refusals: dict[str, subprocess.CompletedProcess], case: str, needles: list[str]
) -> None:
    assert_refused(refusals[case], *needles)


def test_invalid_json_exits_2_with_one_line_naming_the_file(tmp_path: Path, write) -> None:
    path = write('{"nodeName": "unrdf-daemon-0",\n  "http": {port: 8080}\n}')
    line = assert_refused(run_daemon(path, clean_env(RAFT_PASSWORD=RAFT_PASSWORD)), str(path))
    assert "not valid JSON" in line and "line 2" in line


def test_a_config_that_is_not_an_object_exits_2(tmp_path: Path, write) -> None:
    path = write("[1, 2]")
    assert_refused(run_daemon(path, clean_env(RAFT_PASSWORD=RAFT_PASSWORD)), "JSON object")


def test_a_missing_config_file_exits_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    assert_refused(run_daemon(path, clean_env(RAFT_PASSWORD=RAFT_PASSWORD)), str(path))


def test_a_missing_raft_password_exits_2_naming_the_key(tmp_path: Path, write) -> None:
    path = write(base_config(tmp_path))
    line = assert_refused(run_daemon(path, clean_env()), "raft.password", "RAFT_PASSWORD")
    assert "16" in line


def test_a_short_raft_password_exits_2(tmp_path: Path, write) -> None:
    path = write(base_config(tmp_path))
    assert_refused(run_daemon(path, clean_env(RAFT_PASSWORD="short")), "raft.password")


def test_an_unreadable_raft_password_file_exits_2_naming_the_key(tmp_path: Path, write) -> None:
    config = with_key(base_config(tmp_path), "raft.passwordFile", str(tmp_path / "no-secret"))
    line = assert_refused(run_daemon(write(config), clean_env()), "raft.passwordFile")
    assert "no-secret" in line


def test_a_missing_tls_certificate_file_exits_2_naming_the_key(tmp_path: Path, write) -> None:
    config = base_config(tmp_path)
    config["http"].update(tlsCert=str(tmp_path / "no.crt"), tlsKey=str(tmp_path / "no.key"))
    assert_refused(run_daemon(write(config), clean_env(RAFT_PASSWORD=RAFT_PASSWORD)), "tlsCert")


def test_a_bad_environment_override_exits_2_naming_the_key(tmp_path: Path, write) -> None:
    path = write(base_config(tmp_path))
    env = clean_env(RAFT_PASSWORD=RAFT_PASSWORD, CACHE_MAX_SIZE="lots")
    assert_refused(run_daemon(path, env), "cacheMaxSize", "'lots'")


def test_the_error_line_names_the_key_without_a_config_file(tmp_path: Path) -> None:
    # Everything from the environment, as a pod may run it.
    env = clean_env(
        NODE_NAME="unrdf-daemon-0",
        DATA_DIR=str(tmp_path),
        RAFT_PASSWORD=RAFT_PASSWORD,
        HTTP_PORT="99999",
    )
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert_refused(done, "http.port")


# ---- ports that are taken ------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_http_port_exits_2_with_one_line_naming_the_port(
    tmp_path: Path, write, taken_port: int
) -> None:
    path = write(with_key(base_config(tmp_path), "http.port", taken_port))
    line = assert_refused(
        run_daemon(path, clean_env(RAFT_PASSWORD=RAFT_PASSWORD)), "http.port", str(taken_port)
    )
    assert "in use" in line


def test_a_taken_raft_port_exits_2_with_one_line_naming_the_port(
    tmp_path: Path, write, taken_port: int
) -> None:
    config = with_key(base_config(tmp_path), "raft.bindAddress", f"127.0.0.1:{taken_port}")
    assert_refused(
        run_daemon(write(config), clean_env(RAFT_PASSWORD=RAFT_PASSWORD)),
        "raft.bindAddress",
        str(taken_port),
    )


def test_a_taken_tls_port_exits_2_with_one_line_naming_the_port(
    tmp_path: Path, write, taken_port: int
) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("not used: the port check comes first\n")
    config = base_config(tmp_path)
    config["http"].update(tlsCert=str(cert), tlsKey=str(cert), tlsPort=taken_port)
    assert_refused(
        run_daemon(write(config), clean_env(RAFT_PASSWORD=RAFT_PASSWORD)),
        "http.tlsPort",
        str(taken_port),
    )


# ---- environment overrides on a running node -----------------------------------------------


def test_cache_max_size_from_the_environment_shows_in_metrics(make_cluster) -> None:
    # The file says 3; `kubectl set env ... CACHE_MAX_SIZE=7` must win.
    cluster = make_cluster(size=1, overrides={"cacheMaxSize": 3}, env={"CACHE_MAX_SIZE": "7"})
    metrics = httpx.get(cluster.nodes[0].url + "/metrics", timeout=5).json()
    assert metrics["cache"]["maxSize"] == 7  # jq .cache.maxSize


def test_config_file_values_apply_when_the_environment_is_silent(tmp_path: Path) -> None:
    path = tmp_path / "daemon-config.json"
    path.write_text(json.dumps({**base_config(tmp_path), "cacheMaxSize": 3}))
    assert load_config(str(path), clean_env(RAFT_PASSWORD=RAFT_PASSWORD)).cache_max_size == 3
    env = clean_env(RAFT_PASSWORD=RAFT_PASSWORD, CACHE_MAX_SIZE="7")
    assert load_config(str(path), env).cache_max_size == 7


def test_a_misspelt_key_inside_a_section_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "daemon-config.json"
    path.write_text(json.dumps(with_key(base_config(tmp_path), "raft.electionTimeoutMS", 5000)))
    with pytest.raises(ConfigError, match="electionTimeoutMS"):
        load_config(str(path), clean_env(RAFT_PASSWORD=RAFT_PASSWORD))


def test_a_section_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "daemon-config.json"
    path.write_text(json.dumps({**base_config(tmp_path), "http": 8080}))
    with pytest.raises(ConfigError, match="http"):
        load_config(str(path), clean_env(RAFT_PASSWORD=RAFT_PASSWORD))
