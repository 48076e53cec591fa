"""Which standard ``OTEL_*`` variables this process is given but cannot honour as set.

Kept apart from :mod:`otel_cli_telemetry.config` (which resolves them, on every run) because
only ``doctor`` and ``status`` need it: the hot path does not load this code.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import (
    _OTLP_EXPORTERS,
    DEFAULT_SAMPLER,
    DEFAULT_TEMPORALITY,
    MAX_TIMEOUT_S,
    MIN_TIMEOUT_S,
    PROTOCOLS,
    SAMPLERS,
    SIGNALS,
    TEMPORALITIES,
    _exporter_names,
    exporter_enabled,
    grpc_available,
    resolve_endpoint,
    resolve_protocol,
    resolve_sampler,
    signal_endpoint,
)


def otel_problems(environ: Mapping[str, str], explicit_endpoint: str | None = None) -> list[str]:
    """Each standard variable this process is given that is not honoured as set, and why.

    ``doctor`` and ``status`` print these; nothing else does (never the user's command).
    """
    problems: list[str] = []
    for signal in SIGNALS:
        names = _exporter_names(environ, signal)
        other = [n for n in names if n not in _OTLP_EXPORTERS and n != "none"]
        if other:
            problems.append(
                f"OTEL_{signal}_EXPORTER={','.join(names)}: only otlp and none are supported"
                + ("" if exporter_enabled(environ, signal) else f"; {signal.lower()} not sent")
            )
    for name in (
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        *(f"OTEL_EXPORTER_OTLP_{s}_PROTOCOL" for s in SIGNALS),
    ):
        value = environ.get(name, "").strip().lower()
        if value and value not in PROTOCOLS:
            problems.append(
                f"{name}={value}: not supported (only http/protobuf and grpc); "
                "sent as http/protobuf"
            )
    traces_protocol = resolve_protocol(environ)
    metrics_raw = environ.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "").strip().lower()
    if metrics_raw in PROTOCOLS and metrics_raw != traces_protocol:
        problems.append(
            f"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL={metrics_raw}: both signals use one "
            f"protocol ({traces_protocol})"
        )
    if traces_protocol == "grpc" and not grpc_available():
        problems.append(
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc (opentelemetry-distro sets it by default), but "
            "the grpc extra is not installed: sent as http/protobuf instead. Install "
            "'otel-cli-telemetry[grpc]', or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf "
            "(which also stops opentelemetry-distro's configurator from failing)"
        )
    if resolve_endpoint(explicit_endpoint, environ) is not None:
        for signal in SIGNALS:
            if exporter_enabled(environ, signal) and not signal_endpoint(
                explicit_endpoint, environ, signal
            ):
                problems.append(
                    f"{signal.lower()}: not sent: no OTEL_EXPORTER_OTLP_{signal}_ENDPOINT or "
                    "OTEL_EXPORTER_OTLP_ENDPOINT"
                )
    for name in (
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        *(f"OTEL_EXPORTER_OTLP_{s}_TIMEOUT" for s in SIGNALS),
    ):
        raw = environ.get(name, "").strip()
        if not raw:
            continue
        try:
            ms = float(raw)
        except ValueError:
            problems.append(f"{name}={raw}: not a number of milliseconds; ignored")
            continue
        if not MIN_TIMEOUT_S <= ms / 1000 <= MAX_TIMEOUT_S:
            problems.append(
                f"{name}={raw} ms: bounded to {MIN_TIMEOUT_S * 1000:.0f}.."
                f"{MAX_TIMEOUT_S * 1000:.0f} ms (the value is in milliseconds, per the "
                "specification)"
            )
    sampler = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if sampler and sampler not in SAMPLERS:
        problems.append(f"OTEL_TRACES_SAMPLER={sampler}: not supported; using {DEFAULT_SAMPLER}")
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if arg and resolve_sampler(environ)[0].endswith("traceidratio"):
        try:
            valid = 0.0 <= float(arg) <= 1.0
        except ValueError:
            valid = False
        if not valid:
            problems.append(f"OTEL_TRACES_SAMPLER_ARG={arg}: not a ratio in 0..1; using 1.0")
    temporality = environ.get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "").strip()
    if temporality and temporality.lower() not in TEMPORALITIES:
        problems.append(
            f"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE={temporality}: not one of "
            f"{', '.join(TEMPORALITIES)}; using {DEFAULT_TEMPORALITY}"
        )
    propagators = [
        p.strip().lower() for p in environ.get("OTEL_PROPAGATORS", "").split(",") if p.strip()
    ]
    if propagators and "tracecontext" not in propagators and "none" not in propagators:
        problems.append(
            f"OTEL_PROPAGATORS={','.join(propagators)}: only tracecontext (TRACEPARENT) is read"
        )
    if environ.get("OTEL_CONFIG_FILE", "").strip():
        problems.append(
            "OTEL_CONFIG_FILE: declarative configuration is not read by this SDK; "
            "the OTEL_* variables above apply"
        )
    return problems
