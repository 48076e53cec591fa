"""The drainer lock: at most one drainer per user and app, and no stale locks.

An OS file lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) is released by the
kernel when its holder dies, however it dies, so there is nothing to recover after a crash
or SIGKILL. A drainer that hangs is bounded by its own watchdog (see ``drainer``), which
ends the process and with it the lock: that is the lease.

Single flight on POSIX: the CLI that decides to start a drainer takes the lock *itself*
(:func:`try_lock_fd`) and hands the locked descriptor to the child, so no second CLI can
start another drainer during the few hundred milliseconds the first one needs to start up.
``flock`` belongs to the open file description, which parent and child share; the parent
closes its copy right after the spawn and the drainer :meth:`DrainerLock.adopt`\\ s it.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType

from .._files import ensure_dir


def _lock_fd(fd: int) -> bool:
    """Try to lock ``fd`` exclusively without waiting."""
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def try_lock_fd(path: str) -> int | None:
    """Open and lock ``path``; the locked descriptor, or None if someone holds the lock.

    Raises ``OSError`` only when the lock file cannot be opened or created at all.
    """
    ensure_dir(os.path.dirname(path))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if not _lock_fd(fd):
        os.close(fd)
        return None
    return fd


def _write_pid(fd: int) -> None:
    """Leave the holder's pid in the file (for people and ``doctor``; never trusted)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
    except (OSError, AttributeError):
        pass


class DrainerLock:
    """Non-blocking exclusive lock on a file; ``acquired`` says whether we hold it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.acquired = False
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Try once; never waits. ``OSError`` if the lock file cannot be created."""
        if self.acquired:
            return True
        fd = try_lock_fd(self.path)
        if fd is None:
            return False
        self._fd = fd
        self.acquired = True
        _write_pid(fd)
        return True

    def adopt(self, fd: int) -> bool:
        """Take over a descriptor whose lock the spawning CLI took for us.

        Checks that ``fd`` is really this lock file and that the lock is ours (re-locking a
        description we already hold succeeds at once); False otherwise, and ``fd`` is closed.
        """
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            same = False
        if not same or not _lock_fd(fd):
            try:
                os.close(fd)
            except OSError:
                pass
            return False
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
        self._fd = fd
        self.acquired = True
        _write_pid(fd)
        return True

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases it)."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
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
    try:
        fd = try_lock_fd(path)
    except OSError:
        return False
    if fd is None:
        return True
    os.close(fd)
    return False
