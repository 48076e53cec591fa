"""The local history: every record this machine captured and allowed to send, as JSON lines.

It is what ``report`` reads and what a user can inspect to see exactly what was recorded.
One rotation (``records.jsonl.1``) bounds it to about twice :data:`MAX_BYTES`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from .._files import append_line
from .._jsonlite import loads
from ..paths import Paths

TYPE_CHECKING = False  # typing costs a process that has not loaded it ~40 M instructions
if TYPE_CHECKING:
    from typing import Any

MAX_BYTES = 4 * 1024 * 1024


def append(paths: Paths, line: bytes) -> None:
    """Append one record line, rotating first when the file is full."""
    path = paths.history_file
    try:
        if os.path.getsize(path) > MAX_BYTES:
            os.replace(path, path + ".1")
    except OSError:
        pass
    append_line(path, line)


def read(paths: Paths) -> Iterator[dict[str, Any]]:
    """Records in the history, oldest first; corrupt lines are skipped."""
    for path in (paths.history_file + ".1", paths.history_file):
        try:
            with open(path, "rb") as handle:
                for raw in handle:
                    try:
                        value = loads(raw)
                    except ValueError:
                        continue
                    if isinstance(value, dict):
                        yield value
        except OSError:
            continue
