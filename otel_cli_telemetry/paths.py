"""Where the SDK keeps its files: the app's user state dir, as platformdirs defines it.

The hot path must not import platformdirs (~10 ms), so the few rules it applies with
``appauthor=False`` are repeated here; ``tests/test_paths.py`` checks that both agree on this
platform. Resolving a path creates nothing: directories are made only when a file is written.
"""

from __future__ import annotations

import os
import sys

#: Subfolder of the app's state dir, so our files never mix with the app's own.
SUBDIR = "otel-cli-telemetry"


def user_state_dir(app: str) -> str:
    """``platformdirs.user_state_dir(app, appauthor=False)``, without importing it."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(base, app)
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~/Library/Application Support"), app)
    base = os.environ.get("XDG_STATE_HOME", "").strip()
    if not base:
        base = os.path.expanduser("~/.local/state")
    return os.path.join(base, app)


class Paths:
    """Every file the SDK uses for one app."""

    __slots__ = ("root",)

    def __init__(self, root: str) -> None:
        self.root = root

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Paths) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @classmethod
    def for_app(cls, app: str, state_dir: str | None = None) -> Paths:
        """The paths for ``app``; ``state_dir`` overrides the platform default."""
        return cls(state_dir or os.path.join(user_state_dir(app), SUBDIR))

    @property
    def state_file(self) -> str:
        """Consent, notice version and settings written by ``enable``/``disable``."""
        return os.path.join(self.root, "state.json")

    @property
    def installation_id_file(self) -> str:
        """The random installation id, created once (first writer wins)."""
        return os.path.join(self.root, "installation_id")

    @property
    def spool_dir(self) -> str:
        """One file per record awaiting delivery."""
        return os.path.join(self.root, "spool")

    @property
    def drops_file(self) -> str:
        """One byte per dropped record, claimed by the next record
        (``cli_telemetry.sdk.dropped``)."""
        return os.path.join(self.root, "dropped")

    @property
    def lock_file(self) -> str:
        """Held (flock) by the one running drainer."""
        return os.path.join(self.root, "drainer.lock")

    @property
    def breaker_file(self) -> str:
        """The persisted circuit breaker: failures and when to try again."""
        return os.path.join(self.root, "breaker.json")

    @property
    def history_file(self) -> str:
        """Every record captured on this machine, sent or not (read by ``report``)."""
        return os.path.join(self.root, "records.jsonl")

    @property
    def delivery_log(self) -> str:
        """What the drainer delivered or failed to deliver, one JSON line per attempt."""
        return os.path.join(self.root, "delivery.jsonl")

    @property
    def schema_file(self) -> str:
        """The app's last declared schema, so the admin command can print it."""
        return os.path.join(self.root, "schema.json")
