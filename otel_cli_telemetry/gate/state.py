"""The persisted state of one app's telemetry: consent, notice, installation id.

Reading creates nothing. A missing, unreadable or corrupt state file reads as "no state"
(the defaults decide); it is never an error for the host. Writes are atomic.
"""

from __future__ import annotations

import os
from typing import Any

from .._files import ensure_dir, read_json, temp_path, write_json, write_new
from ..paths import Paths

_HEX = frozenset("0123456789abcdef")


def _is_uuid4(value: str) -> bool:
    parts = value.split("-")
    return (
        [len(p) for p in parts] == [8, 4, 4, 4, 12]
        and all(c in _HEX for c in value.replace("-", ""))
        and parts[2][0] == "4"
        and parts[3][0] in "89ab"
    )


#: Values of ``consent`` in the state file.
GRANTED = "granted"
DENIED = "denied"


class State:
    """What the state file says; every field may be absent."""

    __slots__ = ("consent", "consent_schema", "consent_source", "corrupt", "notice_schema")

    def __init__(
        self,
        consent: str | None = None,
        consent_source: str | None = None,
        consent_schema: str | None = None,
        notice_schema: str | None = None,
        corrupt: bool = False,
    ) -> None:
        self.consent = consent  # GRANTED | DENIED | None
        self.consent_source = consent_source  # "prompt" | "command"
        self.consent_schema = consent_schema  # schema version the answer was given for
        self.notice_schema = notice_schema  # schema version whose notice was shown
        self.corrupt = corrupt  # the file existed but could not be read as a state

    @classmethod
    def load(cls, paths: Paths) -> State:
        """Read the state file; never raises. A known key with an unusable value is ignored
        (and marks the file corrupt), as if the file did not say anything about it."""
        raw = read_json(paths.state_file)
        if raw is None:
            return cls(corrupt=os.path.exists(paths.state_file))
        clean = _valid_entries(raw)
        return cls(
            consent=clean.get("consent"),
            consent_source=clean.get("consent_source"),
            consent_schema=clean.get("consent_schema"),
            notice_schema=clean.get("notice_schema"),
            corrupt=any(key in raw and key not in clean for key in _KNOWN_KEYS),
        )


#: Keys of the state file and the values each may hold (None: any string).
_KNOWN_KEYS: dict[str, tuple[str, ...] | None] = {
    "consent": (GRANTED, DENIED),
    "consent_source": ("prompt", "command"),
    "consent_schema": None,
    "notice_schema": None,
}


def _valid_entries(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` without known keys whose value is unusable (unknown keys are kept)."""
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        allowed = _KNOWN_KEYS.get(key, ())
        if key in _KNOWN_KEYS and (
            not isinstance(value, str) or (allowed is not None and value not in allowed)
        ):
            continue
        clean[key] = value
    return clean


def update_state(paths: Paths, **changes: str | None) -> None:
    """Merge ``changes`` into the state file; unusable entries (or a corrupt file) are
    replaced. Raises OSError when the file cannot be written."""
    current = _valid_entries(read_json(paths.state_file) or {})
    current.update(changes)
    write_json(paths.state_file, {k: v for k, v in current.items() if v is not None})


def read_installation_id(paths: Paths) -> str | None:
    """The installation id if one exists and is a valid uuid4; creates nothing."""
    try:
        with open(paths.installation_id_file, encoding="utf-8") as handle:
            value = handle.read(64).strip()
    except (OSError, ValueError):
        return None
    return value if _is_uuid4(value) else None


def new_uuid4() -> str:
    """A random uuid4 string, without importing ``uuid`` (which is slow to import)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def installation_id(paths: Paths) -> str:
    """The installation id, created on first use.

    Many processes may start for the first time at once: each writes a complete candidate
    file and tries to hard-link it into place; the link fails for all but one, and the
    losers read the winner's id. A corrupt id file is replaced.
    """
    existing = read_installation_id(paths)
    if existing:
        return existing
    ensure_dir(paths.root)
    candidate = new_uuid4()
    tmp = temp_path(paths.installation_id_file)
    try:
        write_new(tmp, (candidate + "\n").encode())  # a full disk leaves no temp file
        try:
            os.link(tmp, paths.installation_id_file)
            return candidate
        except FileExistsError:
            winner = read_installation_id(paths)
            if winner:
                return winner
            # The existing file is corrupt: replace it. Processes racing here may each
            # replace it; all end up reading (and later runs using) the last one written.
            os.replace(tmp, paths.installation_id_file)
            return read_installation_id(paths) or candidate
        except OSError:  # no hard links on this file system
            if not os.path.exists(paths.installation_id_file):
                os.replace(tmp, paths.installation_id_file)
            return read_installation_id(paths) or candidate
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def save_declaration(paths: Paths, declaration: dict[str, Any]) -> None:
    """Remember the app's declaration (``Settings.declaration()``) for the admin command.

    Written only when it changed: one small read per run otherwise.
    """
    if read_json(paths.schema_file) != declaration:
        write_json(paths.schema_file, declaration)
