"""Send CLI runs the way the SDK's drainer does: the real OpenTelemetry SDK and OTLP exporters.

One run = one process: a command span named "<app> <command path>" (INTERNAL) with child
phase spans, and one DELTA metric export (cli_telemetry.command.duration + app metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}


@dataclass
class Run:
    """One CLI process."""

    command: str
    exit_code: int = 0
    error_type: str | None = None
    os_type: str = "linux"
    arch: str = "amd64"
    ci: bool = False
    version: str = "1.4.2"
    phases: tuple[str, ...] = ("build",)
    duration_s: float = 0.2
    bytes_uploaded: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def resource(run: Run, app: str = "deployctl") -> Resource:
    return Resource.create(
        {
            "service.name": app,
            "service.version": run.version,
            "os.type": run.os_type,
            "host.arch": run.arch,
            "service.instance.id": "7b0c0a52-0000-4000-8000-000000000000",
            "telemetry.sdk.name": "otel_cli_telemetry",
        }
    )


def send_runs(
    base_url: str,
    runs: list[Run],
    *,
    app: str = "deployctl",
    span_exporter: SpanExporter | None = None,
    metric_exporter: MetricExporter | None = None,
    metrics: bool = True,
) -> None:
    """Export every run as its own process would (own providers, one metric export each)."""
    for run in runs:
        res = resource(run, app)
        exporter = span_exporter or OTLPSpanExporter(endpoint=base_url + "/v1/traces", timeout=10)
        tracer_provider = TracerProvider(resource=res)
        tracer_provider.add_span_processor(_NoShutdown(exporter))
        tracer = tracer_provider.get_tracer("otel_cli_telemetry", "0.1.0")
        attributes: dict[str, Any] = {
            "cli_telemetry.command": run.command,
            "process.exit.code": run.exit_code,
            "cli_telemetry.ci.detected": run.ci,
            "process.executable.name": app,
            **run.extra,
        }
        if run.error_type:
            attributes["error.type"] = run.error_type
        with tracer.start_as_current_span(
            f"{app} {run.command}", kind=SpanKind.INTERNAL, attributes=attributes
        ) as command_span:
            for phase in run.phases:
                with tracer.start_as_current_span(phase):
                    pass
            if run.exit_code:
                command_span.set_status(Status(StatusCode.ERROR))
        tracer_provider.shutdown()
        if not metrics:
            continue

        m_exporter = metric_exporter or OTLPMetricExporter(
            endpoint=base_url + "/v1/metrics", timeout=10, preferred_temporality=DELTA
        )
        reader = PeriodicExportingMetricReader(
            _NoShutdownMetric(m_exporter), export_interval_millis=3_600_000
        )
        meter_provider = MeterProvider(resource=res, metric_readers=[reader])
        meter = meter_provider.get_meter("otel_cli_telemetry", "0.1.0")
        point = {"cli_telemetry.command": run.command, "process.exit.code": run.exit_code}
        if run.error_type:
            point["error.type"] = run.error_type
        meter.create_histogram("cli_telemetry.command.duration", unit="s").record(
            run.duration_s, point
        )
        if run.bytes_uploaded:
            meter.create_counter("deploy.bytes_uploaded", unit="By").add(
                run.bytes_uploaded, {"deploy.change": "added"}
            )
        meter_provider.shutdown()


class _NoShutdown(SimpleSpanProcessor):
    """Exports synchronously and checks the collector accepted each span."""

    def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
        result = self.span_exporter.export((span,))
        if result.name != "SUCCESS":
            raise RuntimeError(f"span export failed: {result}")

    def shutdown(self) -> None:
        return None


class _NoShutdownMetric(MetricExporter):
    """Forwards to an exporter, fails loudly on a refused export, keeps it open for reuse."""

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(preferred_temporality=DELTA)
        self._inner = inner

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = self._inner.export(metrics_data, timeout_millis=timeout_millis)
        if result != MetricExportResult.SUCCESS:
            raise RuntimeError(f"metric export failed: {result}")
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None
