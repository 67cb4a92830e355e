"""AES-GCM for Raft messages between nodes that both speak it; Fernet with everyone else.

pysyncobj encrypts every Raft message with Fernet: AES-CBC, an HMAC, base64 and a
padder, set up afresh for each message in Python. On this machine that is about 60 µs
per hop (encrypt + decrypt), a fifth of a node's CPU at 100 writes/s (BENCHMARKS,
"Issue 16, sixth round"). AES-GCM does the same job in one call, about 4 µs.

Compatibility. A node of an older release only reads Fernet, and a rolling upgrade runs
both releases side by side, so a node must know its peer reads AES-GCM before it sends
any. pysyncobj's handshake already has each side of a connection send the other a random
32-byte key (inside Fernet), which the other then puts in every message it sends back. A
node that reads AES-GCM makes its key start with :data:`OFFER`; a peer that sees that
prefix on the key it received may seal its messages with AES-GCM. An older node's key is
32 random bytes (a 2^-32 chance of looking like an offer: the connection then fails to
decrypt and is simply re-established with a new key). Every node still reads Fernet, so
nothing changes for older peers, or for pysyncobj's admin utility.

Keys and nonces. The cluster key is derived (HKDF-SHA256) from the Fernet key pysyncobj
derives from the Raft secret. Each direction of each connection then gets its own key:
HKDF of the cluster key and that direction's random handshake key, which the receiver
made fresh for this connection. So a counter nonce starting at 0 never repeats under a
key, and a message recorded on one connection decrypts on no other. The receiver accepts
only increasing counters: a replayed or reordered message drops the connection, as a
Fernet message with an old timestamp does.

Token: ``MAGIC`` (4 bytes, which no Fernet token starts with) + 12-byte nonce (the
counter) + ciphertext and tag; ``MAGIC`` is authenticated as associated data.
"""

from __future__ import annotations

import weakref
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Fernet tokens are urlsafe base64 and start with "gAAAAA"; this never does.
MAGIC = b"\x00rg1"
# The start of the handshake key a node sends when it reads AES-GCM.
OFFER = b"rg1:"
NONCE_BYTES = 12
KEY_BYTES = 32


class CipherError(Exception):
    """A sealed message that must not be read (tampered, replayed, or not for us)."""


_cluster_keys: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(material)


def cluster_key(fernet: Any) -> bytes:
    """The AES-GCM root key for everyone holding the same Raft secret.

    pysyncobj derives the Fernet key from the secret with PBKDF2 (100,000 rounds); this
    key is an HKDF of it, so it costs nothing more at start and every node agrees on it.
    It reads the Fernet object's two key halves (``_signing_key``, ``_encryption_key``):
    cryptography has named them so since its first release, and the tests fail at once
    if that changes."""
    key = _cluster_keys.get(fernet)
    if key is None:
        material = fernet._signing_key + fernet._encryption_key
        key = _hkdf(material, b"raftops raft aes-gcm v1")
        _cluster_keys[fernet] = key
    return key


def offers(handshake_key: Any) -> bool:
    """Whether a peer's handshake key says it reads AES-GCM."""
    return isinstance(handshake_key, bytes) and handshake_key.startswith(OFFER)


def offering(handshake_key: bytes) -> bytes:
    """The handshake key with the offer prefix, keeping its length and the rest of its
    randomness (28 random bytes: 224 bits)."""
    return OFFER + handshake_key[len(OFFER) :]


class Direction:
    """One direction of one connection: a key of its own and the message counter."""

    def __init__(self, fernet: Any, handshake_key: bytes) -> None:
        self.handshake_key = handshake_key
        self._aead = AESGCM(_hkdf(cluster_key(fernet), b"raftops raft direction " + handshake_key))
        self._counter = 0

    def seal(self, data: bytes) -> bytes:
        self._counter += 1
        nonce = self._counter.to_bytes(NONCE_BYTES, "big")
        return MAGIC + nonce + self._aead.encrypt(nonce, data, MAGIC)

    def open(self, token: bytes) -> bytes:
        nonce = token[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        counter = int.from_bytes(nonce, "big")
        if len(nonce) != NONCE_BYTES or counter <= self._counter:
            raise CipherError("replayed or reordered message")
        try:
            data = self._aead.decrypt(nonce, token[len(MAGIC) + NONCE_BYTES :], MAGIC)
        except Exception as exc:  # InvalidTag, or a token too short to hold a tag
            raise CipherError("message failed authentication") from exc
        self._counter = counter
        return data


def is_sealed(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC
