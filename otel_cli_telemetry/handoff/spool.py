"""The spool: one file per record awaiting delivery, written atomically.

Format: each file holds one record as compact JSON whose ``"v"`` field is the record format
version (``schema.RECORD_VERSION``); a drainer drops (and counts) a file of any other
version, or one that does not parse. File names sort by capture time
(``<ns>-<pid>-<random>.json``), so delivery keeps order. After the traces of a record were
accepted, the drainer renames it to ``*.t.json`` so a retry sends only its metrics. Writes
go to a hidden temp file first, then are renamed: a reader never sees half a record.

Caps bound disk use even while delivery fails for days: count (:data:`MAX_RECORDS`), bytes
(:data:`MAX_BYTES`), age (:data:`MAX_AGE_S`) and the size of one record
(:data:`MAX_RECORD_BYTES`). The oldest records go first. Every record dropped by a cap, a
corrupt file or a rejection adds one byte to the drops file, and the next record claims the
count as ``cli.telemetry.dropped`` (a dropped record that itself carried such a count hands
it on): nothing is lost silently.

Nothing here raises into the CLI: a read-only, missing or full state dir makes :func:`write`
return False, and the command goes on exactly as without telemetry.
"""

from __future__ import annotations

import json
import os
import time

from .._files import append_line, ensure_dir, write_atomic
from ..paths import Paths

MAX_RECORDS = 1000
MAX_BYTES = 8 * 1024 * 1024
MAX_AGE_S = 7 * 24 * 3600
#: A larger record is dropped (and counted) instead of spooled.
MAX_RECORD_BYTES = 256 * 1024
#: From this many waiting records on, every write also checks the byte and age caps (a
#: directory scan with one stat per file): only while delivery is failing, never normally.
CHECK_CAPS_FROM = 64
SUFFIX = ".json"
TRACES_DONE_SUFFIX = ".t.json"
_STALE_TEMP_S = 3600


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


def _is_record(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith(".")


def count(paths: Paths) -> int:
    """How many records wait (cheap: one directory listing)."""
    try:
        return sum(1 for name in os.listdir(paths.spool_dir) if _is_record(name))
    except OSError:
        return 0


def write(paths: Paths, line: bytes) -> bool:
    """Spool one record; False when it could not be (too large, or the dir is unusable).

    Never raises. A record that cannot be spooled is counted as a drop (as far as the state
    dir still allows writing the count); when the count cap is reached, the oldest records
    make room (and are counted).
    """
    if len(line) > MAX_RECORD_BYTES:
        add_drops(paths, 1)
        return False
    try:
        waiting = count(paths)
        if waiting >= MAX_RECORDS or (waiting >= CHECK_CAPS_FROM and waiting % 16 == 0):
            enforce_caps(paths, reserve=1)
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}{SUFFIX}"
        write_atomic(os.path.join(paths.spool_dir, name), line)
    except OSError:
        add_drops(paths, 1)
        return False
    return True


def entries(paths: Paths) -> list[SpoolEntry]:
    """Spooled records, oldest first; temp files of interrupted writes are skipped."""
    found = []
    try:
        with os.scandir(paths.spool_dir) as scan:
            for item in scan:
                if not _is_record(item.name):
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


def enforce_caps(paths: Paths, now: float | None = None, reserve: int = 0) -> int:
    """Delete records past the age, count and byte caps (oldest first); returns drops.

    ``reserve`` leaves room for that many records more under the count cap (a writer about
    to add one). Drops are counted, plus any drop count the deleted records carried.
    """
    now = time.time() if now is None else now
    current = entries(paths)
    doomed = [e for e in current if now - e.mtime > MAX_AGE_S]
    kept = [e for e in current if now - e.mtime <= MAX_AGE_S]
    size = sum(e.size for e in kept)
    while kept and (len(kept) + reserve > MAX_RECORDS or size > MAX_BYTES):
        oldest = kept.pop(0)
        size -= oldest.size
        doomed.append(oldest)
    _remove_stale_temp_files(paths, now)
    dropped = carried = 0
    for entry in doomed:
        inherited = carried_drops(entry.path)
        if remove(entry.path):
            dropped += 1
            carried += inherited
    add_drops(paths, dropped + carried)
    return dropped


def carried_drops(path: str) -> int:
    """The ``cli.telemetry.dropped`` count a spooled record carries (0 if none/unreadable)."""
    try:
        with open(path, "rb") as handle:
            record = json.loads(handle.read(MAX_RECORD_BYTES + 1))
        value = record["attributes"].get("cli.telemetry.dropped", 0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _remove_stale_temp_files(paths: Paths, now: float) -> None:
    """Temp files left by a writer that died between write and rename."""
    try:
        with os.scandir(paths.spool_dir) as scan:
            for item in scan:
                if item.name.startswith(".") and item.name.endswith(".tmp"):
                    try:
                        if now - item.stat().st_mtime > _STALE_TEMP_S:
                            os.unlink(item.path)
                    except OSError:
                        pass
    except OSError:
        pass


def remove(path: str) -> bool:
    """Delete one spool file; False if it was already gone (or cannot be deleted)."""
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def mark_traces_done(entry: SpoolEntry) -> SpoolEntry:
    """Rename a record whose span was accepted, so a retry sends only its metrics.

    If the rename fails the entry is returned as it was: a retry may then send its span
    again (a duplicate, never a loss).
    """
    if entry.traces_done:
        return entry
    target = entry.path[: -len(SUFFIX)] + TRACES_DONE_SUFFIX
    try:
        os.replace(entry.path, target)
    except OSError:
        return entry
    return SpoolEntry(target, entry.size, entry.mtime)


def add_drops(paths: Paths, n: int) -> bool:
    """Count ``n`` dropped records (one byte each, appended: safe across processes).

    Never raises; False when the count could not be stored (broken state dir).
    """
    if n <= 0:
        return True
    try:
        ensure_dir(paths.root)
        append_line(paths.drops_file, b"\n" * n)
    except OSError:
        return False
    return True


def pending_drops(paths: Paths) -> int:
    """Drops counted but not yet reported."""
    try:
        return os.path.getsize(paths.drops_file)
    except OSError:
        return 0


def claim_drops(paths: Paths) -> int:
    """Take the drop count for the record being built (rename first: no double claim).

    A caller that then fails to spool its record gives the count back with
    :func:`add_drops`.
    """
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
