package ingestguard

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

var testLimits = Limits{MaxValueDepth: 8, MaxMessages: 200_000}

// cliTraces is what the SDK sends: spans with scalar and string-array attributes.
func cliTraces(spans int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "deployctl")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("otel_cli_telemetry")
	for i := 0; i < spans; i++ {
		s := ss.Spans().AppendEmpty()
		s.SetName("deployctl deploy")
		s.Attributes().PutStr("cli_telemetry.command", "deploy")
		s.Attributes().PutInt("process.exit.code", 0)
		flags := s.Attributes().PutEmptySlice("cli_telemetry.flags")
		flags.AppendEmpty().SetStr("--force")
		flags.AppendEmpty().SetStr("--stage")
	}
	return td
}

func marshalRequest(td ptrace.Traces) ([]byte, error) {
	return ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
}

func marshalTraces(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	buf, err := marshalRequest(td)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// nestedValue puts a value nested `depth` AnyValues deep on one span attribute.
func nestedValue(depth int) ptrace.Traces {
	td := cliTraces(1)
	v := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutEmpty("deep")
	for i := 1; i < depth; i++ {
		if i%2 == 0 {
			v = v.SetEmptyMap().PutEmpty("k")
		} else {
			v = v.SetEmptySlice().AppendEmpty()
		}
	}
	v.SetStr("leaf")
	return td
}

// len-delimited field `field` holding payload.
func ld(field int, payload []byte) []byte {
	out := appendUvarint(nil, uint64(field<<3|2))
	out = appendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

// deepArrayRequest is the attack of issue 11: one span attribute whose value nests `levels`
// ArrayValues, built outside-in in linear time (as the sender would).
func deepArrayRequest(levels int) []byte {
	core := ld(1, []byte("x")) // AnyValue{string_value: "x"}
	sizes := make([]int, levels+1)
	sizes[levels] = len(core)
	var prefixes [][]byte
	// level i: AnyValue{array_value(5): ArrayValue{values(1): <level i+1>}}
	for i := levels - 1; i >= 0; i-- {
		inner := appendUvarint([]byte{1<<3 | 2}, uint64(sizes[i+1]))
		arr := len(inner) + sizes[i+1]
		outer := appendUvarint([]byte{5<<3 | 2}, uint64(arr))
		prefixes = append(prefixes, append(outer, inner...))
		sizes[i] = len(outer) + arr
	}
	var value bytes.Buffer
	for i := len(prefixes) - 1; i >= 0; i-- {
		value.Write(prefixes[i])
	}
	value.Write(core)
	kv := append(ld(1, []byte("deep")), ld(2, value.Bytes())...)
	span := append(ld(5, []byte("deployctl deploy")), ld(9, kv)...)
	return ld(1, ld(2, ld(2, span)))
}

func TestAcceptsWhatTheSDKSends(t *testing.T) {
	if err := checkProto(marshalTraces(t, cliTraces(500)), msgExportTraceServiceRequest, testLimits); err != nil {
		t.Fatalf("a 500-span CLI request was refused: %v", err)
	}
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("cli_telemetry.command.duration")
	p := m.SetEmptyHistogram().DataPoints().AppendEmpty()
	p.Attributes().PutStr("cli_telemetry.command", "deploy")
	p.BucketCounts().FromRaw([]uint64{1, 2, 3})
	p.ExplicitBounds().FromRaw([]float64{0.1, 1})
	p.Exemplars().AppendEmpty().FilteredAttributes().PutStr("k", "v")
	buf, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkProto(buf, msgExportMetricsServiceRequest, testLimits); err != nil {
		t.Fatalf("a histogram request was refused: %v", err)
	}
}

func TestDepthLimitIsExact(t *testing.T) {
	for depth := 1; depth <= 12; depth++ {
		err := checkProto(marshalTraces(t, nestedValue(depth)), msgExportTraceServiceRequest, testLimits)
		if depth <= testLimits.MaxValueDepth && err != nil {
			t.Errorf("depth %d refused: %v", depth, err)
		}
		if depth > testLimits.MaxValueDepth && !errors.Is(err, errTooDeep) {
			t.Errorf("depth %d: want too_deep, got %v", depth, err)
		}
	}
}

func TestRefusesTheDeepNestingAttack(t *testing.T) {
	buf := deepArrayRequest(300_000)
	if len(buf) < 2<<20 {
		t.Fatalf("attack is %d bytes, want about 2.4 MiB", len(buf))
	}
	if err := checkProto(buf, msgExportTraceServiceRequest, testLimits); !errors.Is(err, errTooDeep) {
		t.Fatalf("want too_deep, got %v", err)
	}
	// The same bytes decode with pdata (the receiver's decoder) at a smaller depth, i.e.
	// the builder above produces what the receiver would accept without the guard.
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(deepArrayRequest(50)); err != nil {
		t.Fatalf("the attack shape is not valid OTLP: %v", err)
	}
}

func TestRefusesMillionsOfEmptyMessages(t *testing.T) {
	var spans bytes.Buffer
	for i := 0; i < 1_000_000; i++ {
		spans.Write([]byte{2<<3 | 2, 0}) // ScopeSpans.spans: an empty Span
	}
	buf := ld(1, ld(2, spans.Bytes()))
	if err := checkProto(buf, msgExportTraceServiceRequest, testLimits); !errors.Is(err, errTooManyObjects) {
		t.Fatalf("want too_many_messages, got %v", err)
	}
}

func TestRefusesMalformedInput(t *testing.T) {
	for name, buf := range map[string][]byte{
		"truncated length": {1<<3 | 2, 10, 1},
		"group":            {1<<3 | 3},
		"endless varint":   bytes.Repeat([]byte{0xff}, 11),
		"child overruns":   ld(1, []byte{1<<3 | 2, 5}),
	} {
		if err := checkProto(buf, msgExportTraceServiceRequest, testLimits); !errors.Is(err, errMalformed) {
			t.Errorf("%s: want malformed, got %v", name, err)
		}
	}
}

func TestJSONDepth(t *testing.T) {
	td := nestedValue(testLimits.MaxValueDepth)
	js, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkJSON(js, testLimits); err != nil {
		t.Fatalf("a value at the depth limit was refused over JSON: %v", err)
	}
	js, _ = (&ptrace.JSONMarshaler{}).MarshalTraces(nestedValue(testLimits.MaxValueDepth + 2))
	if err := checkJSON(js, testLimits); !errors.Is(err, errTooDeep) {
		t.Fatalf("want too_deep, got %v", err)
	}
	deep := strings.Repeat(`{"arrayValue":{"values":[`, 100_000)
	if err := checkJSON([]byte(deep), testLimits); !errors.Is(err, errTooDeep) {
		t.Fatalf("want too_deep, got %v", err)
	}
	// Brackets inside strings (escaped quotes included) do not count.
	str := `{"k":"` + strings.Repeat(`[{\"`, 1000) + `"}`
	if err := checkJSON([]byte(str), testLimits); err != nil {
		t.Fatalf("brackets inside a string counted: %v", err)
	}
}

// maxDepth measures the AnyValue nesting of decoded pdata, recursively (test only). An
// Empty value counts 0: pdata gives a map entry without a value on the wire (no AnyValue
// to decode, so no recursion) an Empty value, like an explicit empty AnyValue, which the
// walk does count.
func maxDepth(v pcommon.Value) int {
	if v.Type() == pcommon.ValueTypeEmpty {
		return 0
	}
	deepest := 0
	switch v.Type() {
	case pcommon.ValueTypeSlice:
		for i := 0; i < v.Slice().Len(); i++ {
			deepest = max(deepest, maxDepth(v.Slice().At(i)))
		}
	case pcommon.ValueTypeMap:
		for _, x := range v.Map().All() {
			deepest = max(deepest, maxDepth(x))
		}
	}
	return deepest + 1
}

func mapDepth(m pcommon.Map) int {
	deepest := 0
	for _, v := range m.All() {
		deepest = max(deepest, maxDepth(v))
	}
	return deepest
}

// FuzzCheckProto: whatever the bytes, the walk terminates without panicking, and when it
// accepts a request that pdata can decode, no value in it is nested deeper than the limit
// and it holds no more spans than the message budget.
func FuzzCheckProto(f *testing.F) {
	seed, _ := ptraceotlp.NewExportRequestFromTraces(nestedValue(4)).MarshalProto()
	f.Add(seed)
	f.Add(deepArrayRequest(20))
	limits := Limits{MaxValueDepth: 3, MaxMessages: 1000}
	f.Fuzz(func(t *testing.T, buf []byte) {
		if checkProto(buf, msgExportTraceServiceRequest, limits) != nil {
			return
		}
		req := ptraceotlp.NewExportRequest()
		if req.UnmarshalProto(buf) != nil {
			return
		}
		td := req.Traces()
		spans := 0
		for _, rs := range td.ResourceSpans().All() {
			if d := mapDepth(rs.Resource().Attributes()); d > limits.MaxValueDepth {
				t.Fatalf("accepted a resource value nested %d deep", d)
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					spans++
					if d := mapDepth(s.Attributes()); d > limits.MaxValueDepth {
						t.Fatalf("accepted a span value nested %d deep", d)
					}
				}
			}
		}
		if spans > limits.MaxMessages {
			t.Fatalf("accepted %d spans", spans)
		}
	})
}

// FuzzCheckJSON: whatever the bytes, the scan terminates, and when it accepts a request
// that pdata's JSON decoder can decode, no span value nests deeper than the JSON nesting
// limit allows (values start 9 levels down in a span, 3 levels per value level).
func FuzzCheckJSON(f *testing.F) {
	seed, _ := (&ptrace.JSONMarshaler{}).MarshalTraces(nestedValue(4))
	f.Add(seed)
	f.Add([]byte(deepJSON(20)))
	limits := Limits{MaxValueDepth: 3, MaxMessages: 1000}
	allowed := (limits.jsonDepth() - 7) / 3
	f.Fuzz(func(t *testing.T, buf []byte) {
		if checkJSON(buf, limits) != nil {
			return
		}
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(buf)
		if err != nil {
			return
		}
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					if d := mapDepth(s.Attributes()); d > allowed {
						t.Fatalf("accepted a span value nested %d deep (allowed %d)", d, allowed)
					}
				}
			}
		}
	})
}
