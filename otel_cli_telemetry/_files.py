"""Small, careful file operations shared by state, spool and delivery.

Every writer goes through :func:`write_atomic` (temp file + rename), so a reader sees either
the old content or the new, never half of it, whatever crashes or runs in parallel. Files are
private to the user (mode 0600, directories 0700).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from typing import Any

_DIR_MODE = 0o700
_FILE_MODE = 0o600


def ensure_dir(path: str) -> None:
    """Create ``path`` (and parents) private to the user, if missing.

    ``""`` (the folder of a bare file name such as ``records.jsonl``) is the working
    directory, which exists: nothing to create (``os.makedirs("")`` would raise).
    """
    if path:
        os.makedirs(path, mode=_DIR_MODE, exist_ok=True)


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` all at once: a temp file in the same folder, then rename."""
    folder = os.path.dirname(path)
    ensure_dir(folder)
    tmp = temp_path(path)
    write_new(tmp, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def temp_path(path: str) -> str:
    """A hidden, unique temp file name next to ``path`` (``.<name>.<pid>.<random>.tmp``)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def write_new(path: str, data: bytes) -> None:
    """Create ``path`` (it must not exist; mode 0600) holding ``data``.

    On any failure (a full disk fails the write or the close) the file is removed before
    the error propagates: no empty or partial file is ever left behind.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        _unlink_quietly(path)
        raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def append_line(path: str, line: bytes) -> None:
    """Append one line with a single ``write`` in O_APPEND mode (no interleaving in practice)."""
    ensure_dir(os.path.dirname(path))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, _FILE_MODE)
    try:
        os.write(fd, line if line.endswith(b"\n") else line + b"\n")
    finally:
        os.close(fd)


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when missing, unreadable, corrupt or not an object."""
    from ._jsonlite import loads  # lazily: a run switched off from the environment never needs it

    try:
        with open(path, "rb") as handle:
            value = loads(handle.read())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path: str, value: dict[str, Any]) -> None:
    """Write a JSON object atomically (one line, sorted keys; see :mod:`._jsonlite`)."""
    from ._jsonlite import dumps

    write_atomic(path, dumps(value, sort_keys=True).encode() + b"\n")


def why_not_appendable(path: str) -> str | None:
    """Why :func:`append_line` would fail for ``path`` now, or None if it would work.

    For ``status`` and ``doctor``: appending to a log file is swallowed at run time (telemetry
    never breaks the host), so the admin side is where a bad ``<APP>_TELEMETRY_LOG`` shows.
    Checks without writing: the file's write permission, or else that its nearest existing
    folder is a folder the user may create entries in.
    """
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return "it is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else "permission denied"
    folder = os.path.dirname(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return f"{folder} is not a directory"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"permission denied in {folder}"
    return None
