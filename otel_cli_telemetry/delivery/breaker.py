"""The circuit breaker, persisted across runs, with the delivery cursor.

After a failed delivery the endpoint is left alone for a while that grows with each
consecutive failure (30 s, 1 min, 2 min, ... up to 6 h, with jitter), or for as long as the
server's ``Retry-After`` asks (capped). No command starts a drainer while the breaker is open,
so a firewalled machine pays one file read per command, not a process and a timeout.
A success closes it. ``flush`` may try through an open breaker.

The breaker belongs to the endpoint that failed (``endpoint``): a user who fixes a wrong
endpoint is not kept waiting for hours by the failures of the old one.

``metrics_cursor_ns`` is where the last accepted metrics window ended: delta metric points
are sent as contiguous windows per installation, which is what delta-to-cumulative
conversion in the collector and Prometheus need. ``pending_batch`` names the records of a
batch sent but not yet confirmed, so that its retry is the same request (see
``drainer._next_batch``).
"""

from __future__ import annotations

import time

from .._files import read_json, write_json
from ..paths import Paths

BASE_DELAY_S = 30.0
MAX_DELAY_S = 6 * 3600.0
MAX_RETRY_AFTER_S = 24 * 3600.0


class DeliveryState:
    """What the breaker file holds."""

    __slots__ = (
        "endpoint",
        "failures",
        "last_error",
        "last_success",
        "metrics_cursor_ns",
        "open_until",
        "pending_batch",
    )

    def __init__(self) -> None:
        self.endpoint = ""
        self.failures = 0
        self.open_until = 0.0
        self.last_error = ""
        self.last_success = 0.0
        self.metrics_cursor_ns = 0
        self.pending_batch: list[str] = []

    @classmethod
    def load(cls, paths: Paths) -> DeliveryState:
        """Read the breaker file; a missing or corrupt one reads as closed."""
        raw = read_json(paths.breaker_file) or {}
        state = cls()
        for name, kind in (
            ("endpoint", str),
            ("failures", int),
            ("open_until", float),
            ("last_error", str),
            ("last_success", float),
            ("metrics_cursor_ns", int),
        ):
            value = raw.get(name)
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                try:
                    setattr(state, name, kind(value))
                except ValueError:
                    pass
        batch = raw.get("pending_batch")
        if isinstance(batch, list) and all(isinstance(name, str) for name in batch):
            state.pending_batch = batch[:4096]
        return state

    def save(self, paths: Paths) -> None:
        """Persist atomically."""
        write_json(paths.breaker_file, {name: getattr(self, name) for name in self.__slots__})

    def is_open(self, now: float | None = None, endpoint: str | None = None) -> bool:
        """Whether deliveries (to ``endpoint``, if given) should wait."""
        if endpoint and self.endpoint and endpoint != self.endpoint:
            return False
        return _is_open(self.open_until, time.time() if now is None else now)

    def record_failure(
        self, error: str, retry_after_s: float | None = None, endpoint: str | None = None
    ) -> None:
        """Open (or keep open, longer) after a failed delivery (to ``endpoint``)."""
        if endpoint is not None:
            if self.endpoint and endpoint != self.endpoint:
                self.failures = 0  # another endpoint's history says nothing about this one
            self.endpoint = endpoint
        self.failures += 1
        if retry_after_s is not None and retry_after_s >= 0:
            # The server said when: honour it (bounded), even when it is sooner than backoff.
            delay = min(retry_after_s, MAX_RETRY_AFTER_S)
        else:
            # The exponent is capped: 2 ** 1100 would not even convert to a float.
            delay = min(BASE_DELAY_S * 2.0 ** min(self.failures - 1, 32), MAX_DELAY_S)
            import random  # only on failure: keeps the hot path's imports small

            delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
        self.open_until = time.time() + delay
        self.last_error = error[:200]

    def record_success(self) -> None:
        """Close after an accepted delivery."""
        self.failures = 0
        self.open_until = 0.0
        self.last_error = ""
        self.last_success = time.time()


def breaker_open(paths: Paths, endpoint: str | None = None) -> bool:
    """Cheap check for the hot path: open for ``endpoint`` (or for any, if None)."""
    raw = read_json(paths.breaker_file)
    if not raw:
        return False
    failed = raw.get("endpoint")
    if endpoint and isinstance(failed, str) and failed and failed != endpoint:
        return False
    until = raw.get("open_until", 0)
    return isinstance(until, (int, float)) and _is_open(until, time.time())


def _is_open(until: float, now: float) -> bool:
    """Open until ``until``; a date further away than any delay we set means the clock
    went back (or the file was edited): treat it as closed rather than wait for months."""
    return now < until <= now + MAX_RETRY_AFTER_S + 60.0
