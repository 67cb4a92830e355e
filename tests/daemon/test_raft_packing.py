"""What the daemon sends over the Raft transport reads back through pysyncobj's own
receive path (a pickle in a zlib stream), small messages uncompressed and large ones
compressed: the wire format stays the one every pysyncobj node reads."""

from __future__ import annotations

import zlib

import pysyncobj.pickle

from daemon.raft_transport import COMPRESS_FROM_BYTES, pack


def received(data: bytes) -> object:
    # pysyncobj's TcpConnection.__processParseMessage, after decryption.
    return pysyncobj.pickle.loads(zlib.decompress(data))


def append(entries: int) -> dict:
    return {
        "type": "append_entries",
        "term": 3,
        "commit_index": 1234,
        "entries": [(b"\x00" + b"entry %06d " % n * 20, 1235 + n, 3) for n in range(entries)],
        "prevLogIdx": 1234,
        "prevLogTerm": 3,
    }


def test_a_small_message_is_read_back_by_pysyncobj_and_sent_stored() -> None:
    message = (b"k" * 32, append(1))
    data = pack(message)

    assert received(data) == message
    assert len(pysyncobj.pickle.dumps(message)) < COMPRESS_FROM_BYTES
    assert data[1] >> 6 == 0  # the zlib header's level field: stored, no compression work
    # Pickle protocol 5: entries are plain bytes, not _codecs.encode calls (protocol 2).
    assert zlib.decompress(data)[:2] == b"\x80\x05"
    assert b"_codecs" not in zlib.decompress(data)


def test_a_large_message_is_read_back_by_pysyncobj_and_compressed() -> None:
    message = append(100)
    data = pack(message)

    assert received(data) == message
    assert len(pysyncobj.pickle.dumps(message)) >= COMPRESS_FROM_BYTES
    assert len(data) < len(pysyncobj.pickle.dumps(message)) // 4


def test_what_pysyncobj_sends_is_read_the_same_way() -> None:
    # An older node compresses everything at level 3: nothing changes for the reader.
    message = append(1)
    assert received(zlib.compress(pysyncobj.pickle.dumps(message), 3)) == received(pack(message))
