package normalizer

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// hostileTraces: every field of the trace protos set, with planted secrets and markers.
func hostileTraces() ptrace.Traces {
	td := realisticTraces(3)
	rs := td.ResourceSpans().At(0)
	rs.SetSchemaUrl("https://" + plantedSecret)
	rs.Resource().Attributes().PutStr("aws.key", plantedSecret)
	ss := rs.ScopeSpans().At(0)
	ss.Scope().Attributes().PutStr("k", plantedSecret)
	s := ss.Spans().At(0)
	s.Status().SetMessage(plantedSecret)
	s.TraceState().FromRaw("k=" + plantedSecret)
	s.Events().AppendEmpty().SetName(plantedSecret)
	s.Links().AppendEmpty().Attributes().PutStr("k", plantedSecret)
	s.Attributes().PutStr("deploy.note", "key="+plantedSecret)
	s.Attributes().PutEmptyMap("cli_telemetry.command").PutStr("k", plantedSecret)
	s.Attributes().PutStr(dupKey("deploy.region"), plantedSecret)
	return td
}

func FuzzNormalizeTraces(f *testing.F) {
	for _, td := range []ptrace.Traces{realisticTraces(3), hostileTraces()} {
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add([]byte(strings.ReplaceAll(string(b), dupKey("deploy.region"), "deploy.region")))
	}
	n := newTestNormalizer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data)
		if err != nil {
			return
		}
		out, _ := normalizeTraces(t, n, in)
		checkTracesAllowed(t, n, out)
		checkTextScrubbed(t, n, out)
		mustNotContainTraces(t, out, plantedSecret)
		if _, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(out); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzNormalizeMetrics(f *testing.F) {
	b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(realisticMetrics())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	n := newTestNormalizer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(data)
		if err != nil {
			return
		}
		out, _ := normalizeMetrics(t, n, in)
		mustNotContainMetrics(t, out, plantedSecret)
		for i := 0; i < out.ResourceMetrics().Len(); i++ {
			rm := out.ResourceMetrics().At(i)
			checkAllowed(t, &n.resource, rm.Resource().Attributes(), "resource")
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					rule := n.metrics[m.Name()]
					if rule == nil {
						t.Fatalf("undeclared metric %q", m.Name())
					}
					switch m.Type() {
					case pmetric.MetricTypeSum:
						for p := 0; p < m.Sum().DataPoints().Len(); p++ {
							dp := m.Sum().DataPoints().At(p)
							checkAllowed(t, &rule.points, dp.Attributes(), "point")
							if dp.Exemplars().Len() != 0 {
								t.Fatal("exemplar in output")
							}
						}
					case pmetric.MetricTypeHistogram:
						for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
							dp := m.Histogram().DataPoints().At(p)
							checkAllowed(t, &rule.points, dp.Attributes(), "point")
							if dp.Exemplars().Len() != 0 {
								t.Fatal("exemplar in output")
							}
						}
					default:
						t.Fatalf("metric type %s in output", m.Type())
					}
				}
			}
		}
	})
}

// checkTextScrubbed: every string in the output passed its kind: text is a fixed point
// of the scrubber, other kinds are valid, valid UTF-8 everywhere.
func checkTextScrubbed(t *testing.T, n *normalizer, td ptrace.Traces) {
	t.Helper()
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		ss := td.ResourceSpans().At(i).ScopeSpans()
		for j := 0; j < ss.Len(); j++ {
			spans := ss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				for key, v := range spans.At(k).Attributes().All() {
					policy := &n.phase
					if n.spanNames.isCommand(spans.At(k).Name()) {
						policy = &n.command
					}
					f := policy.byKey[key]
					checkString(t, n, f, v)
					if v.Type() == pcommon.ValueTypeSlice {
						for e := 0; e < v.Slice().Len(); e++ {
							checkString(t, n, f, v.Slice().At(e))
						}
					}
				}
			}
		}
	}
}

func checkString(t *testing.T, n *normalizer, f *fieldRule, v pcommon.Value) {
	if v.Type() != pcommon.ValueTypeStr {
		return
	}
	s := v.Str()
	if !utf8.ValidString(s) {
		t.Fatalf("%s: invalid UTF-8", f.key)
	}
	switch {
	case f.kind == "text":
		if scrubber.scrub(s) != s {
			t.Fatalf("%s: %q is not scrubbed", f.key, s)
		}
	case s == f.placeholder:
	case f.enum != nil:
		if _, ok := f.enum[s]; !ok {
			t.Fatalf("%s: %q is not an enum value", f.key, s)
		}
	case f.gram != nil:
		if !f.gram.valid(s) {
			t.Fatalf("%s: %q fails its grammar", f.key, s)
		}
	}
}
