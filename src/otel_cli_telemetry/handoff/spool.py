"""The spool: one file per record awaiting delivery, written atomically.

File names sort by capture time (``<ns>-<pid>-<random>.json``), so delivery keeps order.
After the traces of a record were accepted, the drainer renames it to ``*.t.json`` so a
retry sends only its metrics. Caps (count, bytes, age) bound disk use; every record dropped
by a cap, a corrupt file or a rejection adds one byte to the drops file, and the next
record claims the count as ``cli.telemetry.dropped``: nothing is lost silently.
"""

from __future__ import annotations

import os
import time

from .._files import append_line, ensure_dir, write_atomic
from ..paths import Paths

MAX_RECORDS = 1000
MAX_BYTES = 8 * 1024 * 1024
MAX_AGE_S = 7 * 24 * 3600
TRACES_DONE_SUFFIX = ".t.json"


class SpoolEntry:
    """One spooled record file."""

    __slots__ = ("mtime", "path", "size")

    def __init__(self, path: str, size: int, mtime: float) -> None:
        self.path = path
        self.size = size
        self.mtime = mtime

    @property
    def traces_done(self) -> bool:
        """Its span was already accepted; only its metrics remain to send."""
        return self.path.endswith(TRACES_DONE_SUFFIX)


def count(paths: Paths) -> int:
    """How many records wait (cheap: one directory listing)."""
    try:
        return sum(1 for name in os.listdir(paths.spool_dir) if not name.startswith("."))
    except OSError:
        return 0


def write(paths: Paths, line: bytes) -> bool:
    """Spool one record; False (and one drop counted) when the count cap is reached."""
    if count(paths) >= MAX_RECORDS:
        add_drops(paths, 1)
        return False
    name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}.json"
    write_atomic(os.path.join(paths.spool_dir, name), line)
    return True


def entries(paths: Paths) -> list[SpoolEntry]:
    """Spooled records, oldest first; temp files of interrupted writes are skipped."""
    found = []
    try:
        with os.scandir(paths.spool_dir) as scan:
            for item in scan:
                if item.name.startswith(".") or not item.name.endswith(".json"):
                    continue
                try:
                    stat = item.stat()
                except OSError:
                    continue
                found.append(SpoolEntry(item.path, stat.st_size, stat.st_mtime))
    except OSError:
        return []
    found.sort(key=lambda e: os.path.basename(e.path))
    return found


def enforce_caps(paths: Paths, now: float | None = None) -> int:
    """Delete records past the age, count and byte caps (oldest first); returns drops."""
    now = time.time() if now is None else now
    current = entries(paths)
    doomed = [e for e in current if now - e.mtime > MAX_AGE_S]
    kept = [e for e in current if e not in doomed]
    while len(kept) > MAX_RECORDS or sum(e.size for e in kept) > MAX_BYTES:
        doomed.append(kept.pop(0))
    _remove_stale_temp_files(paths, now)
    dropped = 0
    for entry in doomed:
        if remove(entry.path):
            dropped += 1
    if dropped:
        add_drops(paths, dropped)
    return dropped


def _remove_stale_temp_files(paths: Paths, now: float) -> None:
    try:
        with os.scandir(paths.spool_dir) as scan:
            for item in scan:
                if item.name.startswith(".") and item.name.endswith(".tmp"):
                    try:
                        if now - item.stat().st_mtime > 3600:
                            os.unlink(item.path)
                    except OSError:
                        pass
    except OSError:
        pass


def remove(path: str) -> bool:
    """Delete one spool file; False if it was already gone."""
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def mark_traces_done(entry: SpoolEntry) -> SpoolEntry:
    """Rename a record whose span was accepted, so a retry sends only its metrics."""
    if entry.traces_done:
        return entry
    target = entry.path[: -len(".json")] + TRACES_DONE_SUFFIX
    os.replace(entry.path, target)
    return SpoolEntry(target, entry.size, entry.mtime)


def add_drops(paths: Paths, n: int) -> None:
    """Count ``n`` dropped records (one byte each, appended: safe across processes)."""
    if n > 0:
        ensure_dir(paths.root)
        append_line(paths.drops_file, b"\n" * n)


def pending_drops(paths: Paths) -> int:
    """Drops counted but not yet reported."""
    try:
        return os.path.getsize(paths.drops_file)
    except OSError:
        return 0


def claim_drops(paths: Paths) -> int:
    """Take the drop count for the record being built (rename first: no double claim)."""
    try:
        claimed = f"{paths.drops_file}.{os.getpid()}.{os.urandom(3).hex()}"
        os.replace(paths.drops_file, claimed)
    except OSError:
        return 0
    try:
        return os.path.getsize(claimed)
    except OSError:
        return 0
    finally:
        try:
            os.unlink(claimed)
        except OSError:
            pass
