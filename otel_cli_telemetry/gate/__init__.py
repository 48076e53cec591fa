"""The gate: consent and opt-outs decide whether anything is recorded or sent.

The decision itself is made in :mod:`otel_cli_telemetry.config` (one place, one order);
this package holds the persisted state (:mod:`.state`) and the notice and prompt
(:mod:`.notice`) that ``init()`` shows.
"""
