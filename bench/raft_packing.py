"""What one Raft message costs to build and to read: pysyncobj's own body against the daemon's.

    python -m bench.raft_packing [--messages 20000]

A sender pickles the message, compresses it and encrypts it (Fernet, the cluster secret);
a receiver does the reverse (pysyncobj's TcpConnection.send and __processParseMessage).
pysyncobj pickles with protocol 2 and compresses at zlib level 3; the daemon pickles with
protocol 5, sends messages under 4 KiB as stored zlib blocks (daemon/raft_transport.py,
``pack``) and, between two nodes of this release, seals with AES-GCM instead of Fernet
(daemon/raft_cipher.py). Timed in this process with timeit, for
an append of one 300-byte entry (a commit's critical-path message) and for an append
batch of 100 entries, pysyncobj's body first as the same-run baseline.
"""

from __future__ import annotations

import argparse
import os
import timeit
import zlib
from typing import Any

import pysyncobj.pickle
from pysyncobj.encryptor import getEncryptor

from bench.common import save_result
from daemon import raft_cipher
from daemon.raft_transport import pack


def append(entries: int) -> tuple[bytes, dict[str, Any]]:
    # (the connection's random key, the message), as pysyncobj sends it
    return os.urandom(32), {
        "type": "append_entries",
        "term": 3,
        "commit_index": 1234,
        "entries": [(b"\x00" + os.urandom(300), 1235 + n, 3) for n in range(entries)],
        "prevLogIdx": 1234,
        "prevLogTerm": 3,
    }


def timed(fn: Any, count: int) -> float:
    """Best of 5 runs, in µs per call."""
    return min(timeit.repeat(fn, number=count, repeat=5)) / count * 1e6


def measure(message: Any, count: int) -> dict[str, Any]:
    fernet = getEncryptor("bench secret")

    def pysyncobj_body() -> bytes:
        return zlib.compress(pysyncobj.pickle.dumps(message), 3)

    def daemon_body() -> bytes:
        return pack(message)

    # Between two nodes of this release: AES-GCM on a connection's own key (raft_cipher).
    sealer = raft_cipher.Direction(fernet, raft_cipher.offering(bytes(32)))
    opener = raft_cipher.Direction(fernet, raft_cipher.offering(bytes(32)))

    def gcm_open(token: bytes) -> bytes:
        opener._counter = 0  # the same token again: skip the replay check
        return opener.open(token)

    ciphers = {
        "pysyncobj": (lambda b: fernet.encrypt_at_time(b, 100), fernet.decrypt),
        "daemon": (sealer.seal, gcm_open),
    }
    result: dict[str, Any] = {"pickledBytes": len(pysyncobj.pickle.dumps(message))}
    for name, body in (("pysyncobj", pysyncobj_body), ("daemon", daemon_body)):
        built = body()
        encrypt, decrypt = ciphers[name]
        token = encrypt(built)
        result[name] = {
            "bytesOnWire": len(token),
            "buildUs": round(timed(body, count), 2),
            "encryptUs": round(timed(lambda b=built, f=encrypt: f(b), count), 2),
            "decryptUs": round(timed(lambda t=token, f=decrypt: f(t), count), 2),
            "readUs": round(
                timed(lambda b=built: pysyncobj.pickle.loads(zlib.decompress(b)), count), 2
            ),
        }
        side = result[name]
        side["perHopUs"] = round(
            side["buildUs"] + side["encryptUs"] + side["decryptUs"] + side["readUs"], 2
        )
    result["perHopRatio"] = round(result["daemon"]["perHopUs"] / result["pysyncobj"]["perHopUs"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raft_packing", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="timed calls per figure")
    args = parser.parse_args()
    data = {
        "oneEntry": measure(append(1), args.messages),
        "hundredEntries": measure(append(100), max(100, args.messages // 100)),
    }
    path = save_result("raft-packing", data)
    for case, figures in data.items():
        print(
            f"{case}: per hop (build + encrypt + decrypt + read) pysyncobj "
            f"{figures['pysyncobj']['perHopUs']} µs, daemon {figures['daemon']['perHopUs']} µs "
            f"(ratio {figures['perHopRatio']}); bytes on the wire "
            f"{figures['pysyncobj']['bytesOnWire']} vs {figures['daemon']['bytesOnWire']}"
        )
    print(f"-> {path}")


if __name__ == "__main__":
    main()
