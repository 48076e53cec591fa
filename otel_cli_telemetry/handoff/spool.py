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
count as ``cli_telemetry.sdk.dropped`` (a dropped record that itself carried such a count hands
it on): nothing is lost silently. Near the count cap, writers take a short lock
(``spool.lock``) so that concurrent commands never push the spool past it.

The spool holds only what it can deliver: regular files of at most :data:`MAX_RECORD_BYTES`
whose JSON nests at most :data:`MAX_DEPTH` deep. Anything else found under a record's name
(a FIFO, a symlink, a directory, a 50 MB file, deeply nested or corrupt JSON) is moved
aside to ``quarantine/`` (bounded, oldest out) and counted as a drop: it is never opened in
a way that could block (``O_NONBLOCK``, ``O_NOFOLLOW``, checked with ``fstat``), never
parsed past the depth bound, and never counted against the caps that protect good records.

Nothing here raises into the CLI: a read-only, missing or full state dir makes :func:`write`
return False, and the command goes on exactly as without telemetry.
"""

from __future__ import annotations

import os
import stat
import time

from .._files import append_line, ensure_dir, temp_path, write_atomic, write_new
from .._jsonlite import loads
from ..paths import Paths
from ..schema import lookup

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from typing import Any

MAX_RECORDS = 1000
MAX_BYTES = 8 * 1024 * 1024
MAX_AGE_S = 7 * 24 * 3600
#: A larger record is dropped (and counted) instead of spooled.
MAX_RECORD_BYTES = 256 * 1024
#: From this many waiting records on, every write also checks the byte and age caps (a
#: directory scan with one stat per file): only while delivery is failing, never normally.
CHECK_CAPS_FROM = 64
#: Deepest nesting of JSON arrays/objects a record may have (a record needs 6).
MAX_DEPTH = 16
#: Files kept in ``quarantine/`` for inspection (the newest), within :data:`MAX_RECORD_BYTES`
#: each; older or larger ones are deleted once counted.
QUARANTINE_MAX_FILES = 16
#: Writers take the spool lock once this close to the count cap (concurrent commands could
#: otherwise each see room for one more record and all write it).
LOCK_NEAR_CAP = 64
#: How long (s) a writer near the cap tries for the spool lock before writing without it
#: (and trimming after): a holder stopped by Ctrl-Z must never block a command for long.
_LOCK_WAIT_S = 0.25
SUFFIX = ".json"
TRACES_DONE_SUFFIX = ".t.json"
_STALE_TEMP_S = 3600


class Unreadable(ValueError):
    """A spool file that is not a deliverable record file: it is quarantined, never retried."""


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
    """How many records wait (cheap: one directory listing, file types from it, no stat)."""
    try:
        with os.scandir(paths.spool_dir) as scan:
            return sum(
                1 for item in scan if _is_record(item.name) and item.is_file(follow_symlinks=False)
            )
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
    lock_fd: int | None = None
    tmp = ""
    try:
        waiting = count(paths)
        near_cap = waiting >= MAX_RECORDS - LOCK_NEAR_CAP
        if waiting >= CHECK_CAPS_FROM and waiting % 16 == 0:
            enforce_caps(paths)  # bytes and age: a scan with one stat per file
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}{SUFFIX}"
        final = os.path.join(paths.spool_dir, name)
        if not near_cap:
            write_atomic(final, line)
            return True
        # Near the cap: the record is written first, then, holding the lock only for a
        # listing and a rename, the oldest make room and it takes its place.
        ensure_dir(paths.spool_dir)
        tmp = temp_path(final)
        write_new(tmp, line)
        lock_fd = _take_spool_lock(paths)
        _make_room(paths)
        os.replace(tmp, final)
        tmp = ""
        if lock_fd is None:  # written without the lock: trim back to the cap
            enforce_caps(paths)
    except Exception:  # whatever the spool holds, the record is counted
        add_drops(paths, 1)
        return False
    finally:
        if tmp:
            remove(tmp)
        if lock_fd is not None:
            os.close(lock_fd)
    return True


def _take_spool_lock(paths: Paths) -> int | None:
    """The spool lock's descriptor, or None if it stayed busy for :data:`_LOCK_WAIT_S`."""
    from ..delivery.lock import try_lock_fd

    give_up = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            fd = try_lock_fd(os.path.join(paths.root, "spool.lock"))
        except OSError:
            return None
        if fd is not None or time.monotonic() >= give_up:
            return fd
        time.sleep(0.0005)


def _make_room(paths: Paths) -> None:
    """Delete the oldest records (counted, with what they carried) so one more fits under
    the count cap. Only the listing's names: quick enough to hold a lock."""
    try:
        names = sorted(name for name in os.listdir(paths.spool_dir) if _is_record(name))
    except OSError:
        return
    dropped = carried = 0
    try:
        for name in names[: max(0, len(names) + 1 - MAX_RECORDS)]:
            path = os.path.join(paths.spool_dir, name)
            inherited = carried_drops(path)
            if remove(path):
                dropped += 1
                carried += inherited
    finally:
        add_drops(paths, dropped + carried)


def entries(paths: Paths) -> list[SpoolEntry]:
    """Spooled records, oldest first; temp files of interrupted writes are skipped.

    A record name on something that is not a regular file of at most
    :data:`MAX_RECORD_BYTES` is quarantined (and counted) here, so that nothing downstream
    ever opens it or counts it against the caps.
    """
    found = []
    try:
        with os.scandir(paths.spool_dir) as scan:
            for item in scan:
                if not _is_record(item.name):
                    continue
                try:
                    info = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
                    quarantine(paths, item.path)
                    continue
                found.append(SpoolEntry(item.path, info.st_size, info.st_mtime))
    except OSError:
        return []
    found.sort(key=lambda e: os.path.basename(e.path))
    return found


def load(path: str) -> Any:
    """The JSON value in the spool file ``path``, read without ever blocking.

    Raises :class:`Unreadable` for anything that is not a record file (not a regular file,
    too large, nested deeper than :data:`MAX_DEPTH`, not JSON) and ``OSError`` when the
    file cannot be opened (``FileNotFoundError``: it is gone).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if os.path.islink(path):  # O_NOFOLLOW refused it (ELOOP)
            raise Unreadable("a symbolic link") from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a regular file")
        chunks = []
        size = 0
        while size <= MAX_RECORD_BYTES:
            chunk = os.read(fd, MAX_RECORD_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_RECORD_BYTES:
        raise Unreadable("too large")
    raw = b"".join(chunks)
    if nesting_depth(raw) > MAX_DEPTH:
        raise Unreadable("nested too deep")
    try:
        return loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Unreadable("not JSON") from exc


def nesting_depth(raw: bytes) -> int:
    """How deep the arrays and objects in the JSON text ``raw`` nest (strings skipped).

    Checked before parsing: the parser recurses once per level, and a host that raised its
    recursion limit (in-process delivery runs inside the CLI) could overflow the C stack.
    Stops counting at :data:`MAX_DEPTH` + 1.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return 0  # cannot be deeper: the common case, no scan
    # Strings skipped at C speed: drop escaped backslashes, then escaped quotes; every other
    # quote left then opens a string (exact up to where a parser would stop on bad JSON).
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in raw else raw
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for char in brackets:
        if char in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


_OPENERS = frozenset(b"[{")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def quarantine(paths: Paths, path: str, carried: int = 0) -> bool:
    """Move a spool file that cannot be delivered aside (``quarantine/``) and count it as a
    dropped record, plus ``carried`` drops it held; deleted if it cannot be moved.

    False if it could be neither moved nor deleted (it stays; callers must not retry it in
    the same pass). The quarantine keeps :data:`QUARANTINE_MAX_FILES` small files.
    """
    folder = quarantine_dir(paths)
    moved = False
    try:
        ensure_dir(folder)
        os.replace(path, os.path.join(folder, os.path.basename(path)))
        moved = True
    except OSError:
        if not remove(path):
            return False
    add_drops(paths, 1 + max(0, carried))
    if moved:
        _trim_quarantine(folder)
    return True


def quarantine_dir(paths: Paths) -> str:
    """Where undeliverable spool files are kept for inspection."""
    return os.path.join(paths.root, "quarantine")


def clear_quarantine(paths: Paths) -> None:
    """Delete every file set aside (``disable``: nothing of the user's stays behind)."""
    _trim_quarantine(quarantine_dir(paths), keep=0)


def _trim_quarantine(folder: str, keep: int = QUARANTINE_MAX_FILES) -> None:
    """Keep the newest ``keep`` small regular files; delete everything else in the folder."""
    try:
        with os.scandir(folder) as scan:
            items = []
            for item in scan:
                try:
                    items.append((item.stat(follow_symlinks=False), item.path))
                except OSError:
                    continue
    except OSError:
        return
    items.sort(key=lambda pair: pair[0].st_mtime, reverse=True)
    kept = 0
    for info, path in items:
        small_file = stat.S_ISREG(info.st_mode) and info.st_size <= MAX_RECORD_BYTES
        if small_file and kept < keep:
            kept += 1
            continue
        try:
            if stat.S_ISDIR(info.st_mode):
                import shutil

                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


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
    dropped = carried = 0
    try:
        _remove_stale_temp_files(paths, now)
        for entry in doomed:
            inherited = carried_drops(entry.path)
            if remove(entry.path):
                dropped += 1
                carried += inherited
    finally:  # whatever happens, what was deleted is counted
        add_drops(paths, dropped + carried)
    return dropped


def carried_drops(path: str) -> int:
    """The ``cli_telemetry.sdk.dropped`` count a spooled record carries (0 if none/unreadable).

    Never raises and never blocks, whatever the file is (see :func:`load`).
    """
    try:
        return drops_in(load(path))
    except Exception:  # an unreadable file carries nothing we can see
        return 0


def drops_in(record: Any) -> int:
    """The ``cli_telemetry.sdk.dropped`` count in a parsed record (0 if none or malformed)."""
    attributes = record.get("attributes") if isinstance(record, dict) else None
    # A record spooled by the previous version carries the count under its old name.
    value = (
        lookup(attributes, "cli_telemetry.sdk.dropped", 0) if isinstance(attributes, dict) else 0
    )
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
