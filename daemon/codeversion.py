"""Switching the cluster's state-machine code version (POST /admin/code-version).

A replicated method added at `ver=N` is only used once the cluster has enabled code
version N. Until then every node applies entries the old way, so a node can still be
put back on an older build. The switch itself is a Raft entry: a node whose build
supports less than N cannot apply it and stops applying anything after it. So the
switch is refused unless every member says (on /health/node) that it supports N, and
it never goes back down: after it, rolling a binary back below N is no longer safe.
"""

from __future__ import annotations

import logging
from typing import Any

from daemon import build
from daemon.errors import ApiError
from daemon.raft import RaftNode
from daemon.reporting import Reporting

log = logging.getLogger("daemon.codeversion")

MAX_CODE_VERSION = 1_000_000  # a sanity bound on input, far above any real ver=


def requested_version(body: Any) -> int:
    if not isinstance(body, dict) or set(body) != {"version"}:
        raise ApiError(400, 'body must be {"version": <code version, an integer>}')
    version = body["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ApiError(400, "version must be an integer")
    if not 0 <= version <= MAX_CODE_VERSION:
        raise ApiError(400, f"version must be between 0 and {MAX_CODE_VERSION}")
    return version


def _rollback_note(version: int) -> str:
    return (
        f"code version {version} is enabled: rolling a node back to a release whose "
        f"maxCodeVersion is below {version} is no longer safe (it could not apply the log)"
    )


def current(raft: RaftNode, name: str) -> dict[str, Any]:
    enabled = raft.code_version()
    return {
        "node": name,
        "codeVersion": enabled,
        "maxCodeVersion": build.current().max_code_version,
        "rollbackSafe": enabled == 0,
        "note": _rollback_note(enabled) if enabled else "no code version switch yet",
    }


async def switch(raft: RaftNode, reporting: Reporting, body: Any) -> dict[str, Any]:
    version = requested_version(body)
    enabled = raft.code_version()
    if version < enabled:
        raise ApiError(
            409,
            f"refused: the cluster has code version {enabled} enabled; code versions "
            f"never go back (asked for {version})",
            codeVersion=enabled,
        )
    cluster = await reporting.cluster_view()
    members = {n["name"]: n for n in cluster["nodes"]}
    short = []
    for name, member in sorted(members.items()):
        supported = member.get("maxCodeVersion")
        if not member["reachable"]:
            short.append(f"{name} did not answer")
        elif not isinstance(supported, int) or supported < version:
            release = (member.get("build") or {}).get("release", "an unknown release")
            short.append(f"{name} runs {release} with maxCodeVersion {supported}")
    reports = {name: m.get("maxCodeVersion") for name, m in sorted(members.items())}
    if short:
        log.info("code version %d refused: %s", version, "; ".join(short))
        raise ApiError(
            409,
            f"refused: every member must report maxCodeVersion >= {version}, but "
            + "; ".join(short),
            codeVersion=enabled,
            members=reports,
        )
    if version == enabled:
        return {**current(raft, reporting.name), "changed": False, "previous": enabled,
                "members": reports}  # fmt: skip
    error = await raft.set_code_version(version)
    if error != 0 or raft.code_version() < version:
        raise ApiError(
            503,
            f"the switch to code version {version} was not committed (reason {error}); "
            "retry in a moment",
            codeVersion=raft.code_version(),
        )
    log.warning(
        "code version switched from %d to %d (members' maxCodeVersion: %s); %s",
        enabled, version, reports, _rollback_note(version),
    )  # fmt: skip
    return {**current(raft, reporting.name), "changed": True, "previous": enabled,
            "members": reports}  # fmt: skip
