package normalizer

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/xpdata/entity"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func newTestNormalizer(t testing.TB) *normalizer {
	t.Helper()
	cfg := testConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return newNormalizer(cfg, nil)
}

func normalizeTraces(t testing.TB, n *normalizer, td ptrace.Traces) (ptrace.Traces, *counts) {
	t.Helper()
	w := n.getWork()
	out := n.normalizeTraces(w, td)
	c := w.counts
	n.pool.Put(w)
	return out, &c
}

func normalizeMetrics(t testing.TB, n *normalizer, md pmetric.Metrics) (pmetric.Metrics, *counts) {
	t.Helper()
	w := n.getWork()
	out := n.normalizeMetrics(w, md)
	c := w.counts
	n.pool.Put(w)
	return out, &c
}

func firstSpan(td ptrace.Traces) ptrace.Span {
	return td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
}

func TestRealisticTracesPassUnchanged(t *testing.T) {
	n := newTestNormalizer(t)
	in := realisticTraces(3)
	out, c := normalizeTraces(t, n, in)
	if !out.ResourceSpans().At(0).Resource().Attributes().Equal(in.ResourceSpans().At(0).Resource().Attributes()) {
		t.Fatal("resource attributes changed")
	}
	for i := 0; i < 3; i++ {
		a, b := in.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(i), out.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(i)
		if a.Name() != b.Name() || a.TraceID() != b.TraceID() || a.SpanID() != b.SpanID() || a.ParentSpanID() != b.ParentSpanID() ||
			a.StartTimestamp() != b.StartTimestamp() || a.EndTimestamp() != b.EndTimestamp() || a.Kind() != b.Kind() ||
			!a.Attributes().Equal(b.Attributes()) || a.Attributes().Len() != b.Attributes().Len() {
			t.Fatalf("span %d changed: %v -> %v", i, a.Attributes().AsRaw(), b.Attributes().AsRaw())
		}
	}
	scope := out.ResourceSpans().At(0).ScopeSpans().At(0).Scope()
	if scope.Name() != "otel_cli_telemetry" || scope.Version() != "0.1.0" {
		t.Fatalf("scope %q %q", scope.Name(), scope.Version())
	}
	if *c != (counts{}) {
		t.Fatalf("clean input counted drops: %+v", *c)
	}
}

func TestRealisticMetricsPassUnchanged(t *testing.T) {
	n := newTestNormalizer(t)
	in := realisticMetrics()
	out, c := normalizeMetrics(t, n, in)
	want, _ := (&pmetric.JSONMarshaler{}).MarshalMetrics(in)
	got, _ := (&pmetric.JSONMarshaler{}).MarshalMetrics(out)
	if string(want) != string(got) {
		t.Fatalf("clean metrics changed:\n%s\n%s", want, got)
	}
	if *c != (counts{}) {
		t.Fatalf("clean input counted drops: %+v", *c)
	}
}

// Every field of the OTLP trace protos (trace.proto, resource.proto, common.proto): a value
// planted there does not survive unless the allowlist names it.
func TestPlantedTraceFieldsDoNotSurvive(t *testing.T) {
	cases := []struct {
		name   string
		plant  func(ptrace.Traces)
		reason reason // a drop reason that must be counted (-1: a replacement, checked by check)
		check  func(*testing.T, ptrace.Traces)
	}{
		{"ResourceSpans.schema_url", func(td ptrace.Traces) { td.ResourceSpans().At(0).SetSchemaUrl("https://" + planted) }, dropSchemaURL, nil},
		{"ScopeSpans.schema_url", func(td ptrace.Traces) { td.ResourceSpans().At(0).ScopeSpans().At(0).SetSchemaUrl("https://" + planted) }, dropSchemaURL, nil},
		{"Resource.attributes undeclared", func(td ptrace.Traces) {
			td.ResourceSpans().At(0).Resource().Attributes().PutStr("host.name."+planted, planted)
		}, dropUndeclaredAttribute, nil},
		{"Resource.dropped_attributes_count", func(td ptrace.Traces) { td.ResourceSpans().At(0).Resource().SetDroppedAttributesCount(424242) }, -1,
			func(t *testing.T, out ptrace.Traces) {
				if out.ResourceSpans().At(0).Resource().DroppedAttributesCount() != 0 {
					t.Fatal("dropped_attributes_count kept")
				}
			}},
		{"Resource.entity_refs", func(td ptrace.Traces) {
			ref := entity.ResourceEntityRefs(td.ResourceSpans().At(0).Resource()).AppendEmpty()
			ref.SetType(planted)
			ref.SetSchemaUrl("https://" + planted)
			ref.IdKeys().Append("service.name")
		}, dropEntityRefs, nil},
		{"InstrumentationScope.name", func(td ptrace.Traces) { td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().SetName(planted) }, -1, nil},
		{"InstrumentationScope.version", func(td ptrace.Traces) {
			td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().SetVersion(planted + " " + plantedSecret)
		}, -1, nil},
		{"InstrumentationScope.attributes", func(td ptrace.Traces) {
			td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().Attributes().PutStr("cli_telemetry.command", planted)
		}, dropScopeAttribute, nil},
		{"InstrumentationScope.dropped_attributes_count", func(td ptrace.Traces) {
			td.ResourceSpans().At(0).ScopeSpans().At(0).Scope().SetDroppedAttributesCount(424242)
		}, -1, func(t *testing.T, out ptrace.Traces) {
			if out.ResourceSpans().At(0).ScopeSpans().At(0).Scope().DroppedAttributesCount() != 0 {
				t.Fatal("scope dropped_attributes_count kept")
			}
		}},
		{"Span.trace_state", func(td ptrace.Traces) { firstSpan(td).TraceState().FromRaw("vendor=" + planted) }, dropTraceState, nil},
		{"Span.flags high bits", func(td ptrace.Traces) { firstSpan(td).SetFlags(0xFFFF_FFFF) }, -1, func(t *testing.T, out ptrace.Traces) {
			if f := firstSpan(out).Flags(); f != spanFlagsKept {
				t.Fatalf("flags %#x", f)
			}
		}},
		{"Span.name secret", func(td ptrace.Traces) { firstSpan(td).SetName("deployctl " + plantedSecret) }, -1, nil},
		{"Span.name other app", func(td ptrace.Traces) { firstSpan(td).SetName(planted + " deploy") }, -1, nil},
		{"Span.name invalid UTF-8", func(td ptrace.Traces) { firstSpan(td).SetName("deployctl \xff" + planted) }, -1, nil},
		{"Span.kind out of range", func(td ptrace.Traces) { firstSpan(td).SetKind(ptrace.SpanKind(4242)) }, -1, func(t *testing.T, out ptrace.Traces) {
			if k := firstSpan(out).Kind(); k != ptrace.SpanKindUnspecified {
				t.Fatalf("kind %v", k)
			}
		}},
		{"Span.dropped_attributes_count", func(td ptrace.Traces) { firstSpan(td).SetDroppedAttributesCount(424242) }, -1, func(t *testing.T, out ptrace.Traces) {
			s := firstSpan(out)
			if s.DroppedAttributesCount()+s.DroppedEventsCount()+s.DroppedLinksCount() != 0 {
				t.Fatal("dropped counts kept")
			}
		}},
		{"Span.dropped_events_count", func(td ptrace.Traces) { firstSpan(td).SetDroppedEventsCount(424242) }, -1, func(t *testing.T, out ptrace.Traces) {
			if firstSpan(out).DroppedEventsCount() != 0 {
				t.Fatal("dropped_events_count kept")
			}
		}},
		{"Span.dropped_links_count", func(td ptrace.Traces) { firstSpan(td).SetDroppedLinksCount(424242) }, -1, func(t *testing.T, out ptrace.Traces) {
			if firstSpan(out).DroppedLinksCount() != 0 {
				t.Fatal("dropped_links_count kept")
			}
		}},
		{"Span.events", func(td ptrace.Traces) {
			e := firstSpan(td).Events().AppendEmpty()
			e.SetName("exception " + planted)
			e.Attributes().PutStr("exception.message", plantedSecret)
			e.SetDroppedAttributesCount(424242)
		}, dropSpanEvent, nil},
		{"Span.links", func(td ptrace.Traces) {
			l := firstSpan(td).Links().AppendEmpty()
			l.SetTraceID(traceID(0xEE))
			l.SetSpanID(spanID(0xEE))
			l.TraceState().FromRaw("k=" + planted)
			l.Attributes().PutStr("cli_telemetry.command", planted)
			l.SetFlags(424242)
		}, dropSpanLink, nil},
		{"Status.message", func(td ptrace.Traces) {
			firstSpan(td).Status().SetMessage(planted + " " + plantedSecret)
			firstSpan(td).Status().SetCode(ptrace.StatusCodeError)
		}, dropStatusMessage, func(t *testing.T, out ptrace.Traces) {
			if firstSpan(out).Status().Code() != ptrace.StatusCodeError {
				t.Fatal("status code lost")
			}
		}},
		{"Status.code out of range", func(td ptrace.Traces) { firstSpan(td).Status().SetCode(ptrace.StatusCode(4242)) }, -1, func(t *testing.T, out ptrace.Traces) {
			if firstSpan(out).Status().Code() != ptrace.StatusCodeUnset {
				t.Fatal("bad status code kept")
			}
		}},
		{"Span empty trace_id", func(td ptrace.Traces) {
			firstSpan(td).SetTraceID(pcommon.TraceID{})
			firstSpan(td).SetName("deployctl " + strings.ToLower(planted))
		}, dropInvalidSpan, nil},
		{"Span.attributes undeclared", func(td ptrace.Traces) { firstSpan(td).Attributes().PutStr("user.home", planted) }, dropUndeclaredAttribute, nil},
		{"AnyValue kvlist", func(td ptrace.Traces) {
			firstSpan(td).Attributes().PutEmptyMap("deploy.note").PutStr("token", planted)
		}, dropWrongType, nil},
		{"AnyValue bytes", func(td ptrace.Traces) {
			firstSpan(td).Attributes().PutEmptyBytes("deploy.note").FromRaw([]byte(planted))
		}, dropWrongType, nil},
		{"AnyValue bytes inside array", func(td ptrace.Traces) {
			s := firstSpan(td).Attributes().PutEmptySlice("cli_telemetry.flags")
			s.AppendEmpty().SetStr("--force")
			s.AppendEmpty().SetEmptyBytes().FromRaw([]byte(planted))
		}, dropWrongType, nil},
		{"AnyValue nested array", func(td ptrace.Traces) {
			s := firstSpan(td).Attributes().PutEmptySlice("cli_telemetry.flags")
			s.AppendEmpty().SetEmptySlice().AppendEmpty().SetStr(planted)
		}, dropWrongType, nil},
		{"AnyValue mixed array", func(td ptrace.Traces) {
			s := firstSpan(td).Attributes().PutEmptySlice("deploy.sizes")
			s.AppendEmpty().SetInt(1)
			s.AppendEmpty().SetStr(planted)
		}, dropWrongType, nil},
		{"AnyValue double where int", func(td ptrace.Traces) { firstSpan(td).Attributes().PutDouble("process.exit.code", 424242.5) }, dropWrongType, nil},
		{"AnyValue string where bool", func(td ptrace.Traces) { firstSpan(td).Attributes().PutStr("process.interactive", planted) }, dropWrongType, nil},
		{"AnyValue empty", func(td ptrace.Traces) { firstSpan(td).Attributes().PutEmpty("deploy.region") }, dropWrongType, func(t *testing.T, out ptrace.Traces) {
			if _, ok := firstSpan(out).Attributes().Get("deploy.region"); ok {
				t.Fatal("empty value kept")
			}
		}},
		{"duplicate key, second a map", func(td ptrace.Traces) {
			firstSpan(td).Attributes().PutEmptyMap(dupKey("cli_telemetry.flags")).PutStr("token", planted)
		}, dropDuplicateKey, func(t *testing.T, out ptrace.Traces) {
			if _, ok := firstSpan(out).Attributes().Get("cli_telemetry.flags"); ok {
				t.Fatal("a duplicated key was kept")
			}
		}},
		{"duplicate key on resource", func(td ptrace.Traces) {
			td.ResourceSpans().At(0).Resource().Attributes().PutStr(dupKey("service.name"), planted)
		}, dropDuplicateKey, func(t *testing.T, out ptrace.Traces) {
			if _, ok := out.ResourceSpans().At(0).Resource().Attributes().Get("service.name"); ok {
				t.Fatal("a duplicated key was kept")
			}
		}},
		{"invalid UTF-8 value", func(td ptrace.Traces) { firstSpan(td).Attributes().PutStr("deploy.note", planted+"\xc3\x28") }, dropInvalidUTF8, nil},
		{"invalid UTF-8 in array", func(td ptrace.Traces) {
			s := firstSpan(td).Attributes().PutEmptySlice("cli_telemetry.flags")
			s.AppendEmpty().SetStr("--" + planted + "\xff")
		}, dropInvalidUTF8, nil},
		{"enum outside its values", func(td ptrace.Traces) { firstSpan(td).Attributes().PutStr("deploy.region", planted) }, -1, nil},
		{"identifier failing its grammar", func(td ptrace.Traces) {
			firstSpan(td).Attributes().PutStr("cli_telemetry.command", "/home/"+planted+"/x y")
		}, -1, nil},
		{"identifier too long", func(td ptrace.Traces) {
			firstSpan(td).Attributes().PutStr("cli_telemetry.command", strings.Repeat(planted, 10))
		}, -1, nil},
		{"version failing its grammar", func(td ptrace.Traces) {
			td.ResourceSpans().At(0).Resource().Attributes().PutStr("service.version", "1.0 "+planted)
		}, -1, nil},
		{"duration failing its grammar", func(td ptrace.Traces) { firstSpan(td).Attributes().PutStr("deploy.timeout", planted) }, -1, nil},
		{"text with a secret", func(td ptrace.Traces) { firstSpan(td).Attributes().PutStr("deploy.note", "key "+plantedSecret+" used") }, -1, nil},
		{"text too long", func(td ptrace.Traces) {
			firstSpan(td).Attributes().PutStr("deploy.note", strings.Repeat("word ", 300)+planted)
		}, -1, nil},
		{"array too long", func(td ptrace.Traces) {
			s := firstSpan(td).Attributes().PutEmptySlice("cli_telemetry.flags")
			for i := 0; i < 100; i++ {
				s.AppendEmpty().SetStr("--flag")
			}
			s.AppendEmpty().SetStr("--" + strings.ToLower(planted))
		}, -1, func(t *testing.T, out ptrace.Traces) {
			v, _ := firstSpan(out).Attributes().Get("cli_telemetry.flags")
			if v.Slice().Len() != 64 {
				t.Fatalf("array of %d", v.Slice().Len())
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNormalizer(t)
			in := realisticTraces(1)
			tc.plant(in)
			in = rewireTraces(t, in, dupKeys...)
			before, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(in)
			out, c := normalizeTraces(t, n, in)
			after, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(in)
			if string(before) != string(after) {
				t.Fatal("the input was modified (MutatesData is false)")
			}
			checkTracesAllowed(t, n, out)
			mustNotContainTraces(t, out, planted, strings.ToLower(planted), plantedSecret, "424242")
			if tc.reason >= 0 && c.dropped[tc.reason] == 0 {
				t.Fatalf("drop reason %s not counted: %+v", dropReasonNames[tc.reason], *c)
			}
			if tc.reason < 0 && *c == (counts{}) && tc.check == nil {
				t.Fatal("nothing counted")
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

// dupKey is a stand-in key of the same length as key; rewire turns it into key on the
// wire, giving a map with the key twice, as a hostile client can send (pdata keeps both
// entries; Get returns the first). pdata has no API to append a duplicate key.
func dupKey(key string) string { return key[:len(key)-1] + "\x7f" }

func rewireTraces(t testing.TB, td ptrace.Traces, keys ...string) ptrace.Traces {
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		b = []byte(strings.ReplaceAll(string(b), dupKey(k), k))
	}
	out, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rewireMetrics(t testing.TB, md pmetric.Metrics, keys ...string) pmetric.Metrics {
	b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		b = []byte(strings.ReplaceAll(string(b), dupKey(k), k))
	}
	out, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var dupKeys = []string{"cli_telemetry.flags", "service.name", "deploy.region"}

func TestPlantedMetricFieldsDoNotSurvive(t *testing.T) {
	metricAt := func(md pmetric.Metrics, i int) pmetric.Metric {
		return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(i)
	}
	cases := []struct {
		name   string
		plant  func(pmetric.Metrics)
		reason reason
	}{
		{"ResourceMetrics.schema_url", func(md pmetric.Metrics) { md.ResourceMetrics().At(0).SetSchemaUrl("https://" + planted) }, dropSchemaURL},
		{"ScopeMetrics.schema_url", func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).SetSchemaUrl("https://" + planted)
		}, dropSchemaURL},
		{"Resource.attributes undeclared", func(md pmetric.Metrics) { md.ResourceMetrics().At(0).Resource().Attributes().PutStr(planted, "x") }, dropUndeclaredAttribute},
		{"Resource.entity_refs", func(md pmetric.Metrics) {
			entity.ResourceEntityRefs(md.ResourceMetrics().At(0).Resource()).AppendEmpty().SetType(planted)
		}, dropEntityRefs},
		{"Scope.attributes", func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().Attributes().PutStr("k", planted)
		}, dropScopeAttribute},
		{"Metric.name undeclared", func(md pmetric.Metrics) { metricAt(md, 1).SetName(planted) }, dropUndeclaredMetric},
		{"Metric.name secret", func(md pmetric.Metrics) { metricAt(md, 1).SetName(plantedSecret) }, dropUndeclaredMetric},
		{"Metric.metadata", func(md pmetric.Metrics) { metricAt(md, 0).Metadata().PutStr("k", planted) }, dropMetricMetadata},
		{"Metric.description and unit", func(md pmetric.Metrics) {
			metricAt(md, 0).SetDescription(planted)
			metricAt(md, 0).SetUnit(plantedSecret)
		}, -1},
		{"Metric wrong type (gauge)", func(md pmetric.Metrics) {
			m := metricAt(md, 1)
			m.SetEmptyGauge().DataPoints().AppendEmpty().Attributes().PutStr("deploy.region", "eu")
			m.Gauge().DataPoints().At(0).SetIntValue(424242)
		}, dropWrongMetricType},
		{"Metric wrong type (exponential histogram)", func(md pmetric.Metrics) {
			m := metricAt(md, 0)
			m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty().SetCount(424242)
		}, dropWrongMetricType},
		{"Metric wrong type (summary)", func(md pmetric.Metrics) {
			metricAt(md, 0).SetEmptySummary().DataPoints().AppendEmpty().SetCount(424242)
		}, dropWrongMetricType},
		{"Sum not monotonic", func(md pmetric.Metrics) { metricAt(md, 1).Sum().SetIsMonotonic(false) }, dropWrongMetricType},
		{"Sum exemplars", func(md pmetric.Metrics) {
			e := metricAt(md, 1).Sum().DataPoints().At(0).Exemplars().AppendEmpty()
			e.FilteredAttributes().PutStr("token", planted)
			e.SetIntValue(424242)
			e.SetTraceID(traceID(0xEE))
		}, dropExemplar},
		{"Histogram exemplars", func(md pmetric.Metrics) {
			e := metricAt(md, 0).Histogram().DataPoints().At(0).Exemplars().AppendEmpty()
			e.FilteredAttributes().PutStr("user", planted)
			e.SetDoubleValue(424242)
		}, dropExemplar},
		{"NumberDataPoint.attributes undeclared", func(md pmetric.Metrics) {
			metricAt(md, 1).Sum().DataPoints().At(0).Attributes().PutStr("host.name", planted)
		}, dropUndeclaredAttribute},
		{"HistogramDataPoint.attributes not of this metric", func(md pmetric.Metrics) {
			metricAt(md, 0).Histogram().DataPoints().At(0).Attributes().PutStr("deploy.region", planted)
		}, dropUndeclaredAttribute},
		{"HistogramDataPoint buckets mismatch", func(md pmetric.Metrics) {
			p := metricAt(md, 0).Histogram().DataPoints().At(0)
			p.BucketCounts().FromRaw([]uint64{424242})
		}, dropInvalidPoint},
		{"NumberDataPoint without value", func(md pmetric.Metrics) {
			p := metricAt(md, 1).Sum().DataPoints().AppendEmpty()
			p.Attributes().PutStr("deploy.region", "eu")
			p.SetTimestamp(424242)
		}, dropInvalidPoint},
		{"DataPoint flags", func(md pmetric.Metrics) {
			metricAt(md, 1).Sum().DataPoints().At(0).SetFlags(pmetric.DataPointFlags(424242))
		}, -1},
		{"Sum temporality unspecified", func(md pmetric.Metrics) {
			metricAt(md, 1).Sum().SetAggregationTemporality(pmetric.AggregationTemporalityUnspecified)
		}, dropWrongMetricType},
		{"Histogram temporality unspecified", func(md pmetric.Metrics) {
			metricAt(md, 0).Histogram().SetAggregationTemporality(pmetric.AggregationTemporalityUnspecified)
		}, dropWrongMetricType},
		{"Histogram too many bounds", func(md pmetric.Metrics) {
			p := metricAt(md, 0).Histogram().DataPoints().At(0)
			bounds := make([]float64, 424)
			for i := range bounds {
				bounds[i] = float64(i)
			}
			p.ExplicitBounds().FromRaw(bounds)
			p.BucketCounts().FromRaw(make([]uint64, 425))
			p.SetCount(424242)
		}, dropInvalidPoint},
		{"Scope name and version", func(md pmetric.Metrics) {
			scope := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope()
			scope.SetName(planted)
			scope.SetVersion(plantedSecret)
		}, -1},
		{"Resource.dropped_attributes_count", func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).Resource().SetDroppedAttributesCount(424242)
		}, -1},
		{"Scope.dropped_attributes_count", func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().SetDroppedAttributesCount(424242)
		}, -1},
		{"Metric type empty", func(md pmetric.Metrics) {
			m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().AppendEmpty()
			m.SetName("deploy.artifacts")
		}, dropWrongMetricType},
		{"duplicate point attribute", func(md pmetric.Metrics) {
			metricAt(md, 1).Sum().DataPoints().At(0).Attributes().PutStr(dupKey("deploy.region"), planted)
		}, dropDuplicateKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNormalizer(t)
			in := realisticMetrics()
			tc.plant(in)
			in = rewireMetrics(t, in, dupKeys...)
			out, c := normalizeMetrics(t, n, in)
			mustNotContainMetrics(t, out, planted, plantedSecret, "424242")
			if tc.reason >= 0 && c.dropped[tc.reason] == 0 {
				t.Fatalf("drop reason %s not counted: %+v", dropReasonNames[tc.reason], *c)
			}
			for i := 0; i < out.ResourceMetrics().Len(); i++ {
				rm := out.ResourceMetrics().At(i)
				checkAllowed(t, &n.resource, rm.Resource().Attributes(), "resource")
				for j := 0; j < rm.ScopeMetrics().Len(); j++ {
					for k := 0; k < rm.ScopeMetrics().At(j).Metrics().Len(); k++ {
						m := rm.ScopeMetrics().At(j).Metrics().At(k)
						rule := n.metrics[m.Name()]
						if rule == nil || m.Unit() != rule.unit || m.Description() != rule.description || m.Metadata().Len() != 0 {
							t.Fatalf("metric %q with unit %q / description %q", m.Name(), m.Unit(), m.Description())
						}
					}
				}
			}
		})
	}
}

func TestEmptyOutputIsSkipped(t *testing.T) {
	n := newTestNormalizer(t)
	td := realisticTraces(1)
	firstSpan(td).SetSpanID(pcommon.SpanID{})
	_, err := n.processTraces(context.Background(), td)
	if !errors.Is(err, processorhelper.ErrSkipProcessingData) {
		t.Fatalf("want ErrSkipProcessingData, got %v", err)
	}
}

// Through the factory, as the collector runs it: capabilities, the counters on the
// collector's own telemetry, and the output reaching the next consumer.
func TestFactoryPipelineAndCounters(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	factory := NewFactory()
	set := processortest.NewNopSettings(factory.Type())
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.ID = component.NewIDWithName(factory.Type(), "test")
	sink := new(consumertest.TracesSink)
	proc, err := factory.CreateTraces(context.Background(), set, testConfig(), sink)
	if err != nil {
		t.Fatal(err)
	}
	if proc.Capabilities().MutatesData {
		t.Fatal("MutatesData must be false: the output is built fresh")
	}
	if err := proc.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	td := realisticTraces(3)
	firstSpan(td).Attributes().PutStr("undeclared", planted)
	firstSpan(td).Status().SetMessage(planted)
	if err := proc.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if err := proc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.SpanCount() != 3 {
		t.Fatalf("%d spans reached the next consumer", sink.SpanCount())
	}
	mustNotContainTraces(t, sink.AllTraces()[0], planted)
	got, err := tel.GetMetric(droppedMetricName)
	if err != nil {
		t.Fatal(err)
	}
	byReason := map[string]int64{}
	for _, dp := range got.Data.(metricdata.Sum[int64]).DataPoints {
		r, _ := dp.Attributes.Value("reason")
		p, _ := dp.Attributes.Value("processor")
		if p.AsString() != "normalizer/test" {
			t.Fatalf("processor attribute %q", p.AsString())
		}
		byReason[r.AsString()] += dp.Value
	}
	if byReason["undeclared_attribute"] != 1 || byReason["status_message"] != 1 {
		t.Fatalf("counters: %v", byReason)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.App = "" },
		func(c *Config) { c.App = "Bad App" },
		func(c *Config) { c.SpanAttributes["x"] = FieldConfig{Type: "map", Kind: "text"} },
		func(c *Config) { c.SpanAttributes["x"] = FieldConfig{Type: "int", Kind: "text"} },
		func(c *Config) { c.SpanAttributes["x"] = FieldConfig{Type: "string", Kind: "enum"} },
		func(c *Config) { c.SpanAttributes["x"] = FieldConfig{Type: "string", Kind: "secretive"} },
		func(c *Config) { c.Metrics["m"] = MetricConfig{Type: "gauge"} },
		func(c *Config) { c.Metrics["m"] = MetricConfig{Type: "counter", Attributes: []string{"nope"}} },
		func(c *Config) { c.Metrics = nil },
		func(c *Config) { c.MaxArrayLength = 0 },
	}
	for i, mutate := range bad {
		cfg := testConfig()
		mutate(cfg)
		if cfg.Validate() == nil {
			t.Errorf("case %d: an invalid config was accepted", i)
		}
	}
	if err := testConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := componenttest.CheckConfigStruct(createDefaultConfig()); err != nil {
		t.Fatal(err)
	}
	var _ processor.Factory = NewFactory()
}
