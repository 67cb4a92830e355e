"""Node configuration: daemon-config.json (the runbook's keys), overridden by environment.

A bad config raises ConfigError with a one-line message naming the key; the
entry point turns it into exit code 2.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

from daemon.config_types import NAME_RE, ROLES, Config, ConfigError, Peer, RaftSettings

__all__ = [
    "ENV_OVERRIDES",
    "NAME_RE",
    "ROLES",
    "Config",
    "ConfigError",
    "Peer",
    "RaftSettings",
    "load_config",
]


def _get(data: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be an integer, got {value!r}") from None
    if isinstance(value, float) and value != number:
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if not lo <= number <= hi:
        raise ConfigError(f"{key} must be between {lo} and {hi}, got {number}")
    return number


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in (
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    ):
        return value.lower() in ("1", "true", "yes", "on")
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def _anonymous_scope(value: Any) -> str:
    # true keeps the old everything-readable behaviour for configs that asked for it.
    if value in ("health", "all", "none"):
        return str(value)
    try:
        return "all" if _bool(value, "auth.anonymousRead") else "none"
    except ConfigError:
        raise ConfigError(
            f"auth.anonymousRead must be health, all, none, true or false, got {value!r}"
        ) from None


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a list of strings")
    return tuple(value)


def _hostport(value: Any, key: str) -> str:
    if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$", value):
        raise ConfigError(f"{key} must be host:port, got {value!r}")
    port = int(value.rsplit(":", 1)[1])
    if not 1 <= port <= 65535:
        raise ConfigError(f"{key} port out of range in {value!r}")
    return value


def _is_wildcard(host: str) -> bool:
    """0.0.0.0, [::], "" and the spellings the resolver maps to them ("0", "::0")."""
    host = host.strip("[]")
    if host in ("", "*"):
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        pass
    try:
        return socket.inet_aton(host) == bytes(4)
    except OSError:
        return False


def _read_secret(path: str, key: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None


def _peers(value: Any) -> tuple[Peer, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError("peers must be a list of {name, raftAddress, httpUrl}")
    peers = []
    for i, item in enumerate(value):
        key = f"peers[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{key} must be an object with name, raftAddress, httpUrl")
        unknown = set(item) - {"name", "raftAddress", "httpUrl"}
        if unknown:
            raise ConfigError(f"{key} has unknown key {sorted(unknown)[0]!r}")
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError(f"{key}.name must be a DNS-style node name, got {name!r}")
        url = item.get("httpUrl", "")
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise ConfigError(f"{key}.httpUrl must be an http(s) URL, got {url!r}")
        peers.append(Peer(name, _hostport(item.get("raftAddress"), f"{key}.raftAddress"), url))
    names = [p.name for p in peers]
    if len(set(names)) != len(names):
        raise ConfigError("peers has duplicate names")
    return tuple(peers)


def _tokens(data: dict[str, Any], env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    items: list[Any] = list(_get(data, "auth.tokens", []) or [])
    tokens_file = env.get("DAEMON_TOKENS_FILE") or _get(data, "auth.tokensFile")
    if tokens_file:
        try:
            items += json.loads(Path(tokens_file).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"auth.tokensFile: cannot read {tokens_file}: {exc}") from None
    tokens = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            raise ConfigError(f"auth.tokens[{i}] must be {{token, role}}")
        if item.get("role") not in ROLES:
            raise ConfigError(f"auth.tokens[{i}].role must be one of {', '.join(ROLES)}")
        if len(item["token"]) < 16:
            raise ConfigError(f"auth.tokens[{i}].token must be at least 16 characters")
        tokens.append((item["token"], item["role"]))
    for var, role in (
        ("DAEMON_TOKEN", "admin"),
        ("DAEMON_OPERATE_TOKEN", "operate"),
        ("DAEMON_READ_TOKEN", "read"),
    ):
        if env.get(var):
            if len(env[var]) < 16:
                raise ConfigError(f"{var} must be at least 16 characters")
            tokens.append((env[var], role))
    return tuple(tokens)


# Environment overrides: variable -> dotted config key. The runbook tunes
# CACHE_MAX_SIZE with `kubectl set env`; the rest follow the same pattern.
ENV_OVERRIDES = {
    "NODE_NAME": "nodeName",
    "DATA_DIR": "dataDir",
    "HTTP_PORT": "http.port",
    "TLS_PORT": "http.tlsPort",
    "TLS_CERT_FILE": "http.tlsCert",
    "TLS_KEY_FILE": "http.tlsKey",
    "RAFT_BIND": "raft.bindAddress",
    "RAFT_ADVERTISE": "raft.advertiseAddress",
    "MAX_CONCURRENT": "maxConcurrent",
    "QUEUE_SIZE": "queueSize",
    "CACHE_MAX_SIZE": "cacheMaxSize",
    "RAFT_HEARTBEAT_INTERVAL_MS": "raft.heartbeatIntervalMs",
    "RAFT_ELECTION_TIMEOUT_MS": "raft.electionTimeoutMs",
    "RAFT_SNAPSHOT_INTERVAL_OPS": "raft.snapshotIntervalOps",
    "AUTH_DISABLED": "auth.disabled",
}

KNOWN_KEYS = {
    "nodeName", "dataDir", "http", "raft", "peers", "maxConcurrent", "queueSize",
    "cacheMaxSize", "auth", "handlers", "limits",
}  # fmt: skip
# Keys allowed inside each section: a typo such as raft.electionTimeoutMS must not
# silently fall back to the default.
SECTION_KEYS: dict[str, set[str]] = {
    "http": {"host", "port", "tlsPort", "tlsCert", "tlsKey", "advertiseUrl", "allowedHosts"},
    "raft": {
        "bindAddress", "advertiseAddress", "heartbeatIntervalMs", "electionTimeoutMs",
        "snapshotIntervalOps", "snapshotIntervalSeconds", "appendEntriesBatch", "password",
        "passwordFile",
    },
    "auth": {"tokens", "tokensFile", "anonymousRead", "disabled"},
    "handlers": {"http", "python", "shell"},
    "handlers.http": {"allow"},
    "handlers.python": {"allow"},
    "handlers.shell": {"enabled", "allow"},
    "limits": {
        "maxBodyBytes", "maxOperations", "maxDefinitionBytes", "maxParamsBytes",
        "maxConnections", "headerTimeoutSeconds",
    },
}  # fmt: skip


def _check_sections(data: dict[str, Any]) -> None:
    for section, allowed in SECTION_KEYS.items():
        value = _get(data, section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{section} must be an object")
        unknown = set(value) - allowed
        if unknown:
            raise ConfigError(
                f"unknown config key '{section}.{sorted(unknown)[0]}'; "
                f"{section} takes {', '.join(sorted(allowed))}"
            )


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def load_config(path: str | None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    data: dict[str, Any] = {}
    if path:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ConfigError(f"config file {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a JSON object")
        unknown = set(data) - KNOWN_KEYS
        if unknown:
            raise ConfigError(f"unknown config key {sorted(unknown)[0]!r}")
        _check_sections(data)
    for var, key in ENV_OVERRIDES.items():
        if env.get(var):
            _set(data, key, env[var])
    return _build(data, env)


def _build(data: dict[str, Any], env: dict[str, str]) -> Config:
    name = _get(data, "nodeName")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(f"nodeName must be a DNS-style name like unrdf-daemon-0, got {name!r}")
    data_dir = _get(data, "dataDir", "/data/raft")
    if not isinstance(data_dir, str) or not data_dir:
        raise ConfigError("dataDir must be a path")
    http_port = _int(_get(data, "http.port", 8080), "http.port", 1, 65535)
    tls_port = _int(_get(data, "http.tlsPort", 8443), "http.tlsPort", 1, 65535)
    raft_bind = _hostport(_get(data, "raft.bindAddress", "127.0.0.1:8081"), "raft.bindAddress")
    raft_adv = _hostport(_get(data, "raft.advertiseAddress", raft_bind), "raft.advertiseAddress")
    if _is_wildcard(raft_bind.rsplit(":", 1)[0]):
        # pysyncobj binds the node id's host; an explicit interface keeps the
        # Raft port off networks it was never meant to face.
        raise ConfigError("raft.bindAddress must name an interface address, not a wildcard")

    password = env.get("RAFT_PASSWORD") or _get(data, "raft.password", "")
    pw_file = env.get("RAFT_PASSWORD_FILE") or _get(data, "raft.passwordFile")
    if not password and pw_file:
        password = _read_secret(pw_file, "raft.passwordFile")
    if not isinstance(password, str) or len(password) < 16:
        raise ConfigError(
            "raft.password is required (at least 16 characters; set RAFT_PASSWORD or "
            "raft.passwordFile): Raft traffic is always encrypted and authenticated"
        )
    heartbeat = _int(
        _get(data, "raft.heartbeatIntervalMs", 100), "raft.heartbeatIntervalMs", 5, 10_000
    )
    election = _int(
        _get(data, "raft.electionTimeoutMs", 1000), "raft.electionTimeoutMs", 50, 60_000
    )
    if election <= 3 * heartbeat:
        raise ConfigError(
            f"raft.electionTimeoutMs ({election}) must exceed 3 x raft.heartbeatIntervalMs ({heartbeat})"
        )
    raft = RaftSettings(
        heartbeat_interval_ms=heartbeat,
        election_timeout_ms=election,
        snapshot_interval_ops=_int(
            _get(data, "raft.snapshotIntervalOps", 100_000), "raft.snapshotIntervalOps", 2, 10**9
        ),
        snapshot_interval_s=_int(
            _get(data, "raft.snapshotIntervalSeconds", 600),
            "raft.snapshotIntervalSeconds",
            1,
            10**7,
        ),
        append_entries_batch=_bool(
            _get(data, "raft.appendEntriesBatch", False), "raft.appendEntriesBatch"
        ),
        password=password,
    )
    tls_cert = _get(data, "http.tlsCert", "") or ""
    tls_key = _get(data, "http.tlsKey", "") or ""
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("http.tlsCert and http.tlsKey must be set together")
    for key, value in (("http.tlsCert", tls_cert), ("http.tlsKey", tls_key)):
        if value and not Path(value).is_file():
            raise ConfigError(f"{key}: file {value} does not exist")
    http_host = _get(data, "http.host", "0.0.0.0")
    if not isinstance(http_host, str):
        raise ConfigError("http.host must be a string")
    advertise = (
        _get(data, "http.advertiseUrl", "") or f"http://{raft_adv.rsplit(':', 1)[0]}:{http_port}"
    )
    peers = tuple(p for p in _peers(_get(data, "peers")) if p.name != name)
    if any(p.raft_address == raft_adv for p in peers):
        raise ConfigError(f"peers lists raft address {raft_adv} under another name than {name}")
    return Config(
        node_name=name,
        data_dir=Path(data_dir),
        raft_bind=raft_bind,
        raft_advertise=raft_adv,
        http_host=http_host,
        http_port=http_port,
        tls_port=tls_port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        advertise_http_url=advertise,
        peers=peers,
        raft=raft,
        max_concurrent=_int(_get(data, "maxConcurrent", 10), "maxConcurrent", 1, 10_000),
        queue_size=_int(_get(data, "queueSize", 1000), "queueSize", 0, 1_000_000),
        cache_max_size=_int(_get(data, "cacheMaxSize", 1000), "cacheMaxSize", 0, 10_000_000),
        tokens=_tokens(data, env),
        auth_disabled=_bool(_get(data, "auth.disabled", False), "auth.disabled"),
        anonymous_read=_anonymous_scope(_get(data, "auth.anonymousRead", "health")),
        max_body_bytes=_int(
            _get(data, "limits.maxBodyBytes", 1_048_576), "limits.maxBodyBytes", 1024, 64 * 2**20
        ),
        max_operations=_int(
            _get(data, "limits.maxOperations", 100), "limits.maxOperations", 1, 100_000
        ),
        max_connections=_int(
            _get(data, "limits.maxConnections", 1000), "limits.maxConnections", 1, 100_000
        ),
        header_timeout_s=_int(
            _get(data, "limits.headerTimeoutSeconds", 10), "limits.headerTimeoutSeconds", 1, 3600
        ),
        max_definition_bytes=_int(
            _get(data, "limits.maxDefinitionBytes", 16_384),
            "limits.maxDefinitionBytes",
            1024,
            2**20,
        ),
        max_params_bytes=_int(
            _get(data, "limits.maxParamsBytes", 65_536), "limits.maxParamsBytes", 2, 2**20
        ),
        allowed_hosts=_str_list(_get(data, "http.allowedHosts", []), "http.allowedHosts"),
        http_allow=_str_list(_get(data, "handlers.http.allow", []), "handlers.http.allow"),
        python_allow=_str_list(_get(data, "handlers.python.allow", []), "handlers.python.allow"),
        shell_enabled=_bool(_get(data, "handlers.shell.enabled", False), "handlers.shell.enabled"),
        shell_allow=_str_list(_get(data, "handlers.shell.allow", []), "handlers.shell.allow"),
    )
