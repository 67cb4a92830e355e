"""Bounds on what a not-yet-authenticated peer may do to the Raft port.

pysyncobj (pinned to 0.3.17) reads an incoming connection until the socket is empty,
appending each chunk to a `bytes` buffer, and only then looks at the 4-byte length
prefix. Anyone who reaches the Raft port, with no secret, could send a 2 GiB length
and then zeros: the node's memory grew by hundreds of MB, one core stayed busy copying
the buffer and the tick thread starved long enough for elections to start.

:class:`BoundedConnection` replaces the connection class pysyncobj's server accepts
with. Until a message from the peer has decrypted (which proves it knows the Raft
secret) it

- refuses a declared message length above UNAUTHENTICATED_MAX_BYTES, before buffering,
  and drops the connection when more than that is buffered;
- reads at most READS_PER_EVENT chunks per poll event, so the tick thread keeps time;
- counts against MAX_UNAUTHENTICATED: when a new one arrives over the limit, the oldest
  unauthenticated connection is dropped (a real peer authenticates within one round
  trip, so an attacker cannot hold the slots), and one older than HANDSHAKE_DEADLINE_S
  is dropped whenever a new one arrives.

Authenticated connections keep pysyncobj's behaviour except for the read cap per event.

Every connection, incoming and outgoing, also sends cheaper: see :func:`pack`, and
seals with AES-GCM instead of Fernet where the peer reads it (``daemon/raft_cipher.py``).
"""

from __future__ import annotations

import logging
import pickle
import socket
import struct
import threading
import time
import zlib
from typing import Any

import pysyncobj.pickle
import pysyncobj.tcp_server
import pysyncobj.transport
from cryptography.fernet import InvalidToken
from pysyncobj.monotonic import monotonic as pysyncobj_clock
from pysyncobj.tcp_connection import TcpConnection

from daemon import raft_cipher
from daemon.ratelog import RateLimitedLog

log = logging.getLogger("daemon.raft")

# The first messages of the handshake are a 32-byte key and a node address, encrypted.
UNAUTHENTICATED_MAX_BYTES = 64 * 1024
MAX_UNAUTHENTICATED = 16
HANDSHAKE_DEADLINE_S = 5.0
READS_PER_EVENT = 64  # x recvBufferSize (8 KiB by default) per poll event


# Below this size a message goes out as stored (uncompressed) zlib blocks.
COMPRESS_FROM_BYTES = 4096
# pysyncobj pickles messages with protocol 2, where every bytes object (each log entry)
# becomes a call to _codecs.encode that the reader looks up and runs: 7 µs for a
# one-entry append against 2.7 µs with protocol 5. Readers detect the protocol, and
# every node runs Python 3.11 (pyproject), which reads it.
PICKLE_PROTOCOL = 5


def pack(message: Any) -> bytes:
    """pysyncobj's message body: a pickle in a zlib stream, as pysyncobj reads it.

    pysyncobj compresses every message at zlib level 3, and setting up that compressor
    (a 32 KiB window, its hash tables) costs 60-100 µs here, per message: more than the
    Fernet encryption, on every hop of every commit, for a few hundred bytes that do not
    even shrink. Small messages are sent as stored blocks with the smallest window
    (about 1 µs); larger ones (append batches, snapshot chunks) are compressed as before.
    Both are ordinary zlib streams that any pysyncobj node's ``zlib.decompress`` reads,
    so the wire format, and mixed-version clusters, are unchanged (the pickle protocol
    aside: see PICKLE_PROTOCOL)."""
    data = pickle.dumps(message, PICKLE_PROTOCOL)
    if len(data) >= COMPRESS_FROM_BYTES:
        return zlib.compress(data, 3)
    stored = zlib.compressobj(0, zlib.DEFLATED, 9, 1)
    return stored.compress(data) + stored.flush()


class CheapSend(TcpConnection):
    """pysyncobj's connection, sending with :func:`pack` instead of level-3 compression
    and sealing with AES-GCM where the peer offered it (``raft_cipher``); it reads
    both ciphers."""

    _recv_rand_key: bytes | None = None
    _sealing: raft_cipher.Direction | None = None
    _opening: raft_cipher.Direction | None = None
    # When this side last sent anything (pysyncobj's clock): the peer has read since.
    sent_at: float = float("-inf")

    # pysyncobj sets the handshake key this side makes (os.urandom(32)) and sends it to
    # the peer: marked, it tells the peer this node reads AES-GCM.
    @property
    def recvRandKey(self) -> bytes | None:
        return self._recv_rand_key

    @recvRandKey.setter
    def recvRandKey(self, key: bytes | None) -> None:
        if isinstance(key, bytes) and len(key) == raft_cipher.KEY_BYTES:
            key = raft_cipher.offering(key)
        self._recv_rand_key = key

    def send(self, message: Any) -> None:
        peer_key = self.sendRandKey
        if peer_key:
            message = (peer_key, message)
        data = pack(message)
        if self.encryptor:
            if raft_cipher.offers(peer_key):
                data = self._sealer(peer_key).seal(data)
            else:
                data = self.encryptor.encrypt_at_time(data, int(pysyncobj_clock()))
        self._TcpConnection__writeBuffer += struct.pack("i", len(data)) + data
        self.sent_at = pysyncobj_clock()
        self._TcpConnection__trySendBuffer()

    def _sealer(self, peer_key: bytes) -> raft_cipher.Direction:
        sealing = self._sealing
        if sealing is None or sealing.handshake_key != peer_key:
            sealing = self._sealing = raft_cipher.Direction(self.encryptor, peer_key)
        return sealing

    def _opener(self, own_key: bytes) -> raft_cipher.Direction:
        opening = self._opening
        if opening is None or opening.handshake_key != own_key:
            opening = self._opening = raft_cipher.Direction(self.encryptor, own_key)
        return opening

    def _TcpConnection__processParseMessage(self) -> Any:  # pysyncobj's private name
        """pysyncobj's reader, which also opens AES-GCM messages. Anything that does not
        open, unpickle and carry this connection's key drops the connection."""
        buffer = self._TcpConnection__readBuffer
        if len(buffer) < 4:
            return None
        (length,) = struct.unpack("i", buffer[:4])
        if len(buffer) - 4 < length:
            return None
        data = buffer[4 : 4 + length]
        own_key = self.recvRandKey
        try:
            if self.encryptor and raft_cipher.is_sealed(data):
                if not own_key:
                    raise raft_cipher.CipherError("a sealed message before the handshake")
                data = self._opener(own_key).open(data)
            elif self.encryptor:
                timestamp = self.encryptor.extract_timestamp(data)
                if timestamp < self.recvLastTimestamp:
                    raise raft_cipher.CipherError("a Fernet message older than the last")
                self.recvLastTimestamp = timestamp
                data = self.encryptor.decrypt(data)
            message = pysyncobj.pickle.loads(zlib.decompress(data))
            if own_key:
                rand_key, message = message
                if rand_key != own_key:
                    raise raft_cipher.CipherError("a message for another connection")
        except Exception as exc:  # as pysyncobj: whatever does not read drops the connection
            # ...but, unlike pysyncobj, says so: a peer started with another raft.password
            # lands here on every reconnect (about once a second) and never joins.
            _DROPS.warning(
                "raft: dropping a connection from %s: %s", self._peer(), _unreadable(exc)
            )
            self.disconnect()
            return None
        self._TcpConnection__readBuffer = buffer[4 + length :]
        return message

    def _peer(self) -> str:
        try:
            host, port = self._TcpConnection__socket.getpeername()[:2]
        except (OSError, AttributeError, ValueError):
            return "an unknown peer"
        return f"{host}:{port}"


# Every connection this port drops is reported through this one limit: anyone who can
# reach it can open connections and send garbage, and one line per drop would fill the log.
_DROPS = RateLimitedLog(log, 1.0, left_out="{} more dropped since the last such line")


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, raft_cipher.CipherError):
        return str(exc)
    if isinstance(exc, InvalidToken):
        return "it does not decrypt with this cluster's secret (another raft.password?)"
    return f"a message that does not read ({type(exc).__name__})"


class PeerConnection(CheapSend):
    """The connections this node opens to its peers."""


class BoundedConnection(CheapSend):
    _pending: dict[int, BoundedConnection] = {}  # id -> unauthenticated incoming connection
    _pending_lock = threading.Lock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.authenticated = False
        self.accepted_at = time.monotonic()
        self._admit()

    # ---- the unauthenticated pool -------------------------------------------------
    def _admit(self) -> None:
        now = time.monotonic()
        with self._pending_lock:
            pending = self._pending
            stale = [c for c in pending.values() if now - c.accepted_at > HANDSHAKE_DEADLINE_S]
            oldest = sorted(pending.values(), key=lambda c: c.accepted_at)
            over = oldest[: max(0, len(pending) + 1 - MAX_UNAUTHENTICATED)]
            pending[id(self)] = self
        for conn in {id(c): c for c in stale + over}.values():
            _DROPS.warning("raft: dropping an unauthenticated connection (handshake limit)")
            conn.disconnect()

    def _leave_pool(self) -> None:
        with self._pending_lock:
            self._pending.pop(id(self), None)

    def disconnect(self) -> None:
        self._leave_pool()
        super().disconnect()

    # ---- reading (pysyncobj's private methods, overridden by their mangled names) ----
    def _TcpConnection__tryReadBuffer(self) -> None:  # pysyncobj's private name
        for _ in range(READS_PER_EVENT):
            if not self._TcpConnection__processRead():
                break
        self._TcpConnection__lastReadTime = pysyncobj_clock()

    def _TcpConnection__processRead(self) -> bool:  # pysyncobj's private name
        sock: socket.socket = self._TcpConnection__socket
        try:
            incoming = sock.recv(self._TcpConnection__recvBufferSize)
        except OSError as exc:
            if exc.errno not in (socket.errno.EAGAIN, socket.errno.EWOULDBLOCK):
                self.disconnect()
            return False
        if not incoming or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.disconnect()
            return False
        buffer = self._TcpConnection__readBuffer + incoming
        self._TcpConnection__readBuffer = buffer
        if not self.authenticated and self._too_big(buffer):
            _DROPS.warning("raft: dropping an unauthenticated connection that sent too much")
            self.disconnect()
            return False
        return True

    @staticmethod
    def _too_big(buffer: bytes) -> bool:
        if len(buffer) > UNAUTHENTICATED_MAX_BYTES + 4:
            return True
        if len(buffer) >= 4:
            declared = struct.unpack("i", buffer[:4])[0]
            return declared < 0 or declared > UNAUTHENTICATED_MAX_BYTES
        return False

    def _TcpConnection__processParseMessage(self) -> Any:  # pysyncobj's private name
        message = super()._TcpConnection__processParseMessage()
        if message is not None and not self.authenticated and self.encryptor is not None:
            # It decrypted with the shared secret: this peer is one of ours.
            self.authenticated = True
            self._leave_pool()
        return message


def install() -> None:
    """Make pysyncobj's server accept connections as :class:`BoundedConnection`, and
    open its outgoing ones as :class:`PeerConnection`."""
    pysyncobj.tcp_server.TcpConnection = BoundedConnection  # type: ignore[misc]
    pysyncobj.transport.TcpConnection = PeerConnection  # type: ignore[misc]
