"""A Raft node of an older release, for test_raft_cipher: the daemon's SafeSyncObj on
pysyncobj's stock transport (Fernet only, unmarked handshake keys), in its own process
because the daemon's transport, once installed, replaces pysyncobj's for the process.

Run as ``python -m tests.daemon.cipher_peer ADDRESS OTHER,OTHER SECRET DATA_DIR``; it
writes the value of its replicated counter to DATA_DIR/value as it changes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from pysyncobj import SyncObjConf, SyncObjConsumer, replicated


class Counter(SyncObjConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.value = 0

    @replicated
    def add(self, n: int) -> int:
        self.value += n
        return self.value


def conf(secret: str, data: Path) -> SyncObjConf:
    data.mkdir(parents=True, exist_ok=True)
    return SyncObjConf(
        password=secret,
        journalFile=str(data / "journal"),
        fullDumpFile=str(data / "dump"),
        autoTickPeriod=0.01,
        appendEntriesUseBatch=False,
        dynamicMembershipChange=True,
    )


def main() -> None:
    from daemon.raft_protocol import SafeSyncObj

    address, others, secret, data = (
        sys.argv[1],
        sys.argv[2].split(","),
        sys.argv[3],
        Path(sys.argv[4]),
    )
    counter = Counter()
    _node = SafeSyncObj(address, others, conf=conf(secret, data), consumers=[counter])
    seen = None
    while True:  # the test kills this process
        if counter.value != seen:
            seen = counter.value
            (data / "value.tmp").write_text(str(seen))
            os.replace(data / "value.tmp", data / "value")
        time.sleep(0.01)


if __name__ == "__main__":
    main()
