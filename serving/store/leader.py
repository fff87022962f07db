"""Who runs the learner: one process at a time holds a leader lock, and loses it when it dies.

:class:`FileLeaderLock` is an exclusive ``flock`` on a file (the SQLite store: one
machine); :class:`serving.store.postgres.AdvisoryLeaderLock` is a PostgreSQL
session advisory lock (any number of hosts on one database). Either is released
by the operating system or the database when its holder dies, so another process
takes over at its next try.
"""

from __future__ import annotations

import abc
import fcntl
import os
from pathlib import Path


class LeaderLock(abc.ABC):
    """A non-blocking exclusive lock that its holder keeps until it releases it or dies."""

    @abc.abstractmethod
    def try_acquire(self) -> bool:
        """Take the lock if it is free (never waits); True while this process holds it."""

    @abc.abstractmethod
    def release(self) -> None:
        """Give up the lock (another process may take it)."""


class FileLeaderLock(LeaderLock):
    """An exclusive ``flock`` on ``path`` (which records the holder's pid).

    Args:
        path: the lock file; created with its directory when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the flock if free; True when this process holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """Unlock and close the file."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
