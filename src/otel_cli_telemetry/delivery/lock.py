"""The drainer lock: at most one drainer per user and app, and no stale locks.

An OS file lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) is released by the
kernel when its holder dies, however it dies, so there is nothing to recover after a crash
or SIGKILL. A drainer that hangs is bounded by its own watchdog (see ``drainer``), which
ends the process and with it the lock: that is the lease.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType

from .._files import ensure_dir


class DrainerLock:
    """Non-blocking exclusive lock on a file; ``acquired`` says whether we hold it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.acquired = False
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Try once; never waits."""
        ensure_dir(os.path.dirname(self.path))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform == "win32":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        self.acquired = True
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError:
            pass
        return True

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.acquired = False

    def __enter__(self) -> DrainerLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def held_by_someone(path: str) -> bool:
    """Whether a drainer holds the lock now (checked by taking and dropping it)."""
    if not os.path.exists(path):
        return False
    probe = DrainerLock(path)
    if probe.acquire():
        probe.release()
        return False
    return True
