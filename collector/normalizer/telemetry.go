package normalizer

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// reason says why something was dropped or replaced; it is the `reason` attribute of the
// processor's own counters.
type reason int

const (
	// Dropped (otelcol_processor_normalizer_dropped).
	dropUndeclaredAttribute reason = iota
	dropDuplicateKey
	dropWrongType
	dropInvalidUTF8
	dropInvalidNumber
	dropUndeclaredMetric
	dropWrongMetricType
	dropInvalidSpan
	dropInvalidPoint
	dropSchemaURL
	dropEntityRefs
	dropScopeAttribute
	dropSpanEvent
	dropSpanLink
	dropTraceState
	dropStatusMessage
	dropExemplar
	dropMetricMetadata
	numDropReasons
)

const (
	// Replaced (otelcol_processor_normalizer_replaced).
	replaceInvalidValue reason = iota
	replaceInvalidSpanName
	replaceScopeName
	replaceScopeVersion
	replaceSecret
	replaceTruncated
	replaceMetricText
	replaceRenamedKey // an attribute or metric name of an older SDK, renamed to its current name
	numReplaceReasons
)

var dropReasonNames = [numDropReasons]string{
	"undeclared_attribute", "duplicate_key", "wrong_type", "invalid_utf8", "invalid_number",
	"undeclared_metric", "wrong_metric_type", "invalid_span", "invalid_point",
	"schema_url", "entity_refs", "scope_attribute", "span_event", "span_link",
	"trace_state", "status_message", "exemplar", "metric_metadata",
}

var replaceReasonNames = [numReplaceReasons]string{
	"invalid_value", "invalid_span_name", "scope_name", "scope_version", "secret",
	"truncated", "metric_text", "renamed_key",
}

// Counter names as served on the collector's Prometheus endpoint (no translation).
const (
	droppedMetricName  = "otelcol_processor_normalizer_dropped"
	replacedMetricName = "otelcol_processor_normalizer_replaced"
)

// counts is what one request dropped and replaced; added to the counters once per request.
type counts struct {
	dropped  [numDropReasons]int64
	replaced [numReplaceReasons]int64
}

type telemetry struct {
	dropped      metric.Int64Counter
	replaced     metric.Int64Counter
	dropAttrs    [numDropReasons]metric.AddOption
	replaceAttrs [numReplaceReasons]metric.AddOption
}

func newTelemetry(set component.TelemetrySettings, id component.ID) (*telemetry, error) {
	meter := set.MeterProvider.Meter("github.com/otel-cli-telemetry/otelcol-cli-telemetry/collector/normalizer")
	t := &telemetry{}
	var err error
	t.dropped, err = meter.Int64Counter(droppedMetricName,
		metric.WithDescription("Attributes, fields, spans, metrics and points the normalizer dropped, by reason"),
		metric.WithUnit("{item}"))
	if err != nil {
		return nil, err
	}
	t.replaced, err = meter.Int64Counter(replacedMetricName,
		metric.WithDescription("Values the normalizer replaced with a placeholder, cut, or renamed, by reason"),
		metric.WithUnit("{item}"))
	if err != nil {
		return nil, err
	}
	processor := attribute.String("processor", id.String())
	for i, name := range dropReasonNames {
		t.dropAttrs[i] = metric.WithAttributeSet(attribute.NewSet(processor, attribute.String("reason", name)))
	}
	for i, name := range replaceReasonNames {
		t.replaceAttrs[i] = metric.WithAttributeSet(attribute.NewSet(processor, attribute.String("reason", name)))
	}
	return t, nil
}

func (t *telemetry) record(ctx context.Context, c *counts) {
	for i, n := range c.dropped {
		if n > 0 {
			t.dropped.Add(ctx, n, t.dropAttrs[i])
		}
	}
	for i, n := range c.replaced {
		if n > 0 {
			t.replaced.Add(ctx, n, t.replaceAttrs[i])
		}
	}
}
