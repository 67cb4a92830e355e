"""Backups of the replicated state: a consistent cut, its manifest, the file, its checks.

A backup file is three parts, so a reader can check it before trusting any of it:

    RAFTOPS-BACKUP 1\\n            the format line
    {"appliedIndex": ..., ...}\\n   the manifest, one line of JSON
    <payload>                      zlib-compressed pickle of the state's snapshot fields

The cut is taken on the tick thread between two applied entries (`RaftNode.on_tick_thread`),
so the applied index, the term, the chain digest and the fields belong to one index. There
only the containers are copied (records are never mutated once appended, so sharing them
is safe): ~50 ms at 100,000 records held, where pickling the state there would stall the
tick thread for ~0.7 s. Pickling, compressing and hashing run afterwards, off that thread.

`digest` is the state's chain digest at the applied index (what /health/node showed then).
A restored cluster elects its own leader and marks its own uptime minutes, which extends
that chain at once; so a restore is checked against `contentDigest` too: a hash of what a
restore must reproduce exactly (operations, the execution window and per-operation
histories, the sequence and the lifetime totals), not of leadership and uptime bookkeeping.

"Execution records held" is the feed window (at most `FEED_WINDOW`, 100,000 records) the
console mirrors from; `historyRecords` counts the per-operation windows (at most
`HISTORY_PER_OPERATION` each, the same record objects as the feed where they overlap);
`totalExecutions` is every execution the cluster ever committed (the feed's last seq).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import pickle
import time
import zlib
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from daemon import build
from daemon.contract import format_time
from daemon.state import SNAPSHOT_SCHEMA, ReplicatedState

MAGIC = b"RAFTOPS-BACKUP 1\n"
MANIFEST_MAX_BYTES = 64 * 1024
MANIFEST_FIELDS = (
    "format",
    "node",
    "appliedIndex",
    "term",
    "digest",
    "contentDigest",
    "operations",
    "executionRecordsHeld",
    "historyRecords",
    "totalExecutions",
    "codeVersion",
    "snapshotSchema",
    "build",
    "createdAt",
    "payloadBytes",
    "payloadSha256",
)
# Checked against the payload itself when a backup is read: a manifest that disagrees
# with its payload is refused, whatever the hash says.
SUMMARY_FIELDS = (
    "digest",
    "contentDigest",
    "operations",
    "executionRecordsHeld",
    "historyRecords",
    "totalExecutions",
)


class BackupError(Exception):
    """A backup that cannot be taken or trusted; the message is the one-line reason."""


# ---- the cut ------------------------------------------------------------------------------
def copy_state(state: ReplicatedState) -> dict[str, Any]:
    """The state's snapshot fields, with every container copied (records shared)."""

    def copied(value: Any) -> Any:
        if isinstance(value, deque):
            return deque(value, maxlen=value.maxlen)
        if isinstance(value, dict):
            return {k: copied(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copied(v) for v in value]
        return value

    with state._lock:
        fields = state._serialize()
        out: dict[str, Any] = {}
        for key, value in fields.items():
            if key in ("feed", "execution_seq", "write_ids"):
                # Flat containers of immutable values (records are never mutated once
                # appended): a shallow copy is a true copy, and the biggest one.
                out[key] = deque(value, maxlen=value.maxlen) if key == "feed" else dict(value)
            elif key == "history":
                out[key] = {k: deque(v, maxlen=v.maxlen) for k, v in value.items()}
            else:
                out[key] = copied(value)
        return out


def content_digest(data: dict[str, Any]) -> str:
    """A hash of what a restore must reproduce: see the module docstring. It hashes the
    repr of plain values: dicts keep their insertion order, which the replicated log
    fixes on every node, and floats repr exactly; at 100,000 records this is about twice
    as fast as canonical JSON (the node computes it while serving)."""
    history = data.get("history", {})
    body = (
        sorted(data.get("operations", {}).items()),
        data.get("seq", 0),
        data.get("lifetime"),
        list(data.get("feed", ())),
        [(op_id, [record.get("seq") for record in history[op_id]]) for op_id in sorted(history)],
    )
    return hashlib.sha256(repr(body).encode()).hexdigest()


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "digest": data.get("digest"),
        "contentDigest": content_digest(data),
        "operations": len(data.get("operations", {})),
        "executionRecordsHeld": len(data.get("feed", ())),
        "historyRecords": sum(len(h) for h in data.get("history", {}).values()),
        "totalExecutions": int(data.get("seq", 0)),
    }


# ---- taking one ---------------------------------------------------------------------------
async def take(node: Any) -> tuple[dict[str, Any], bytes, dict[str, float]]:
    """Compact, cut, encode: (manifest, file bytes, ms per phase: compactMs,
    tickThreadMs (the copy on the tick thread), encodeMs)."""
    started = time.perf_counter()
    await node.raft.compact()
    compacted = time.perf_counter()

    def cut(applied_index: int, term: int) -> tuple[int, int, dict[str, Any], float]:
        began = time.perf_counter()
        data = copy_state(node.state)
        return applied_index, term, data, (time.perf_counter() - began) * 1000

    future = node.raft.on_tick_thread(cut)
    applied_index, term, data, held_ms = await asyncio.wait_for(asyncio.wrap_future(future), 30)
    cut_at = time.perf_counter()
    code_version = node.raft.obj.getCodeVersion()
    manifest, body = await asyncio.to_thread(
        encode, data, node.name, applied_index, term, code_version
    )
    timings = {
        "compactMs": round((compacted - started) * 1000, 1),
        "tickThreadMs": round(held_ms, 1),
        "waitForTickMs": round((cut_at - compacted) * 1000 - held_ms, 1),
        "encodeMs": round((time.perf_counter() - cut_at) * 1000, 1),
    }
    return manifest, body, timings


def encode(
    data: dict[str, Any], node_name: str, applied_index: int, term: int, code_version: int
) -> tuple[dict[str, Any], bytes]:
    payload = zlib.compress(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL), 1)
    manifest = {
        "format": 1,
        "node": node_name,
        "appliedIndex": applied_index,
        "term": term,
        **summarize(data),
        "codeVersion": code_version,
        "snapshotSchema": data.get("snapshot_schema", 0),
        "build": build.current().as_json(),
        "createdAt": format_time(time.time()),
        "payloadBytes": len(payload),
        "payloadSha256": hashlib.sha256(payload).hexdigest(),
    }
    return manifest, MAGIC + json.dumps(manifest, sort_keys=True).encode() + b"\n" + payload


# ---- reading one --------------------------------------------------------------------------
class _StateUnpickler(pickle.Unpickler):
    """The state is plain dicts, lists, deques, strings and numbers: nothing else is
    loaded, so a crafted file cannot make the reader run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "deque"):
            return deque
        raise BackupError(f"payload refers to {module}.{name}, which a state never holds")


def read_manifest(stream: io.BufferedIOBase) -> dict[str, Any]:
    if stream.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a backup file (the format line is missing)")
    line = stream.readline(MANIFEST_MAX_BYTES)
    if not line.endswith(b"\n"):
        raise BackupError("the manifest line is cut off or too long")
    try:
        manifest = json.loads(line)
    except ValueError:
        raise BackupError("the manifest is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise BackupError("the manifest is not a JSON object")
    missing = [field for field in MANIFEST_FIELDS if field not in manifest]
    if missing:
        raise BackupError(f"the manifest lacks {', '.join(missing)}")
    if manifest["format"] != 1:
        raise BackupError(f"backup format {manifest['format']!r} is not one this release reads")
    return manifest


def check_loadable(manifest: dict[str, Any]) -> None:
    """Refuse a backup this release cannot load: a newer state machine or snapshot layout."""
    release = build.max_code_version(ReplicatedState)
    if not isinstance(manifest["codeVersion"], int) or manifest["codeVersion"] > release:
        raise BackupError(
            f"the backup's code version {manifest['codeVersion']!r} is newer than this "
            f"release's {release}: restore it with a release that runs that code version"
        )
    schema = manifest["snapshotSchema"]
    if not isinstance(schema, int) or schema > SNAPSHOT_SCHEMA:
        raise BackupError(
            f"the backup's snapshot schema {schema!r} is newer than this release's "
            f"{SNAPSHOT_SCHEMA}"
        )


def read(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, state fields) of a backup file, after every check; BackupError otherwise."""
    try:
        with open(path, "rb") as stream:
            manifest = read_manifest(stream)
            check_loadable(manifest)
            payload = stream.read()
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    return manifest, decode_payload(manifest, payload)


def decode_payload(manifest: dict[str, Any], payload: bytes) -> dict[str, Any]:
    if len(payload) != manifest["payloadBytes"]:
        raise BackupError(
            f"the payload is {len(payload)} bytes, the manifest says "
            f"{manifest['payloadBytes']} (truncated or padded)"
        )
    actual = hashlib.sha256(payload).hexdigest()
    if actual != manifest["payloadSha256"]:
        raise BackupError(
            f"the payload's SHA-256 is {actual[:16]}…, the manifest says "
            f"{str(manifest['payloadSha256'])[:16]}… (the file is corrupted)"
        )
    try:
        data = _StateUnpickler(io.BytesIO(zlib.decompress(payload))).load()
    except BackupError:
        raise
    except Exception as exc:
        raise BackupError(f"the payload cannot be decoded: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("operations"), dict):
        raise BackupError("the payload is not a state snapshot")
    found = summarize(data)
    for field in SUMMARY_FIELDS:
        if found[field] != manifest[field]:
            raise BackupError(
                f"the manifest does not match its payload: {field} is {manifest[field]!r} "
                f"in the manifest, {found[field]!r} in the payload"
            )
    return data


async def live_summary(node: Any) -> dict[str, Any]:
    """What a node holds now, in the manifest's terms: how a restore is checked."""

    def cut(applied_index: int, term: int) -> tuple[int, int, dict[str, Any]]:
        return applied_index, term, copy_state(node.state)

    future = node.raft.on_tick_thread(cut)
    applied_index, term, data = await asyncio.wait_for(asyncio.wrap_future(future), 30)
    summary = await asyncio.to_thread(summarize, data)
    return {
        "node": node.name,
        "appliedIndex": applied_index,
        "term": term,
        **summary,
        "codeVersion": node.raft.obj.getCodeVersion(),
    }


def write_file(chunks: Iterable[bytes], dest: Path) -> int:
    """Write a backup to `dest` (0600) through a temporary file beside it, check it, then
    rename it into place: a failure (a full disk, a broken stream, a corrupt backup)
    removes the partial file and leaves nothing at `dest`. Returns the bytes written."""
    dest = Path(dest)
    partial = dest.with_name(f".{dest.name}.partial")
    written = 0
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        read(partial)
        os.replace(partial, dest)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot write {dest}: {exc.strerror or exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


def read_manifest_file(path: Path) -> dict[str, Any]:
    with open(path, "rb") as stream:
        return read_manifest(stream)
