"""Delivery: spool -> real OpenTelemetry SDK objects -> OTLP, outside the CLI's hot path.

Everything under this package may import the OpenTelemetry SDK; nothing on the hot path
imports this package except :mod:`.lock` and :mod:`.breaker`, which are standard library only.
"""
