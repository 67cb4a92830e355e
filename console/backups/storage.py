"""Where backup files live: one small interface, a local-directory backend by default.

An S3-compatible backend would implement the same four methods; none is shipped,
because none can be tested against a real S3-compatible server on this machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from django.conf import settings

from daemon import backup

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class Storage(Protocol):
    def write(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store a backup under `key`, checked before it counts; BackupError otherwise,
        with nothing left behind."""

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        """The stored file as a local path for as long as the block runs."""

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


class LocalDirectoryStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not KEY.match(key):
            raise backup.BackupError(f"not a storage key: {key[:40]!r}")
        return self.root / key

    def write(self, key: str, chunks: Iterable[bytes]) -> int:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # backups hold every operation definition and result
        return backup.write_file(chunks, self._path(key))

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.exists():
            raise backup.BackupError(f"the backup file {key} is missing from {self.root}")
        yield path

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


def default_storage() -> Storage:
    return LocalDirectoryStorage(Path(settings.BACKUPS_DIR))
