package normalizer

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The allowlist the unit tests run with: the shape of collector/allowlist.yaml for the
// example app, with one field of every kind and type.
func testConfig() *Config {
	cfg := createDefaultConfig()
	cfg.App = "deployctl"
	cfg.ResourceAttributes = map[string]FieldConfig{
		"service.name":                 {Type: "string", Kind: "identifier"},
		"service.version":              {Type: "string", Kind: "version"},
		"os.type":                      {Type: "string", Kind: "enum", Values: []string{"linux", "darwin", "windows"}},
		"service.instance.id":          {Type: "string", Kind: "identifier"},
		"cli_telemetry.schema.version": {Type: "string", Kind: "version"},
	}
	cfg.SpanAttributes = map[string]FieldConfig{
		"cli_telemetry.command": {Type: "string", Kind: "identifier"},
		"cli_telemetry.flags":   {Type: "string[]", Kind: "identifier"},
		"process.interactive":   {Type: "bool", Kind: "bool"},
		"process.exit.code":     {Type: "int", Kind: "integer"},
		"error.type":            {Type: "string", Kind: "identifier"},
		"deploy.region":         {Type: "string", Kind: "enum", Values: []string{"eu", "us"}},
		"deploy.note":           {Type: "string", Kind: "text"},
		"deploy.ratio":          {Type: "double", Kind: "number"},
		"deploy.timeout":        {Type: "string", Kind: "duration"},
		"deploy.sizes":          {Type: "int[]", Kind: "integer"},
		"deploy.stage":          {Type: "any", Kind: "identifier"},
	}
	cfg.PhaseAttributes = map[string]FieldConfig{
		"error.type":    {Type: "string", Kind: "identifier"},
		"deploy.region": {Type: "string", Kind: "enum", Values: []string{"eu", "us"}},
	}
	cfg.MetricAttributes = map[string]FieldConfig{
		"cli_telemetry.command": {Type: "string", Kind: "identifier"},
		"process.exit.code":     {Type: "int", Kind: "integer"},
		"deploy.region":         {Type: "string", Kind: "enum", Values: []string{"eu", "us"}},
	}
	cfg.Metrics = map[string]MetricConfig{
		"cli_telemetry.command.duration": {Type: "histogram", Unit: "s", Description: "duration of each command",
			Attributes: []string{"cli_telemetry.command", "process.exit.code"}},
		"deploy.artifacts": {Type: "counter", Unit: "{artifact}", Description: "artifacts uploaded"},
	}
	// As generated from the SDK's map of the names its previous release sent.
	cfg.RenamedAttributes = map[string]string{
		"cli.command":                  "cli_telemetry.command",
		"cli.flags":                    "cli_telemetry.flags",
		"cli.interactive":              "process.interactive",
		"cli.telemetry.schema_version": "cli_telemetry.schema.version",
	}
	cfg.RenamedMetrics = map[string]string{"cli.command.duration": "cli_telemetry.command.duration"}
	return cfg
}

// planted is a marker that must never reach the output when planted outside the allowlist.
const planted = "PLANTEDxMARKER"

// A secret of a published format (AWS's documented example key id).
const plantedSecret = "AKIAIOSFODNN7EXAMPLE"

func traceID(b byte) pcommon.TraceID {
	return pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, b}
}
func spanID(b byte) pcommon.SpanID { return pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, b} }

// realisticTraces: what the SDK sends for one command: a command span and two phases.
func realisticTraces(spans int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr("service.name", "deployctl")
	res.PutStr("service.version", "1.4.2")
	res.PutStr("os.type", "linux")
	res.PutStr("service.instance.id", "550e8400-e29b-41d4-a716-446655440000")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("otel_cli_telemetry")
	ss.Scope().SetVersion("0.1.0")
	for i := 0; i < spans; i++ {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(traceID(byte(i)))
		s.SetSpanID(spanID(byte(i)))
		s.SetKind(ptrace.SpanKindInternal)
		s.SetStartTimestamp(1_700_000_000_000_000_000)
		s.SetEndTimestamp(1_700_000_000_500_000_000)
		if i%3 == 0 {
			s.SetName("deployctl stage new")
			a := s.Attributes()
			a.PutStr("cli_telemetry.command", "stage")
			flags := a.PutEmptySlice("cli_telemetry.flags")
			flags.AppendEmpty().SetStr("--force")
			flags.AppendEmpty().SetStr("--region")
			a.PutBool("process.interactive", false)
			a.PutInt("process.exit.code", 0)
			a.PutStr("deploy.region", "eu")
			a.PutStr("deploy.note", "rolled out to canary first")
			a.PutDouble("deploy.ratio", 0.25)
			a.PutStr("deploy.timeout", "30s")
		} else {
			s.SetName("upload")
			s.SetParentSpanID(spanID(byte(i - i%3)))
			s.Attributes().PutStr("error.type", "TimeoutError")
		}
	}
	return td
}

func realisticMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "deployctl")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("otel_cli_telemetry")
	h := sm.Metrics().AppendEmpty()
	h.SetName("cli_telemetry.command.duration")
	h.SetUnit("s")
	h.SetDescription("duration of each command")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	p := hist.DataPoints().AppendEmpty()
	p.SetCount(2)
	p.SetSum(1.5)
	p.ExplicitBounds().FromRaw([]float64{0.1, 1, 10})
	p.BucketCounts().FromRaw([]uint64{0, 1, 1, 0})
	p.Attributes().PutStr("cli_telemetry.command", "stage")
	p.Attributes().PutInt("process.exit.code", 0)
	c := sm.Metrics().AppendEmpty()
	c.SetName("deploy.artifacts")
	c.SetUnit("{artifact}")
	c.SetDescription("artifacts uploaded")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	sp := sum.DataPoints().AppendEmpty()
	sp.SetIntValue(3)
	sp.Attributes().PutStr("deploy.region", "us")
	return md
}

// checkAllowed fails the test if any attribute map of the output holds a key the policy
// does not declare, a value of another type, or a string that is not valid UTF-8.
func checkAllowed(t testing.TB, p *attrPolicy, m pcommon.Map, where string) {
	t.Helper()
	seen := map[string]bool{}
	for k, v := range m.All() {
		f := p.byKey[k]
		if f == nil || f.key != k { // an old (renamed) name is never output
			t.Fatalf("%s: undeclared key %q in output", where, k)
		}
		if seen[k] {
			t.Fatalf("%s: duplicate key %q in output", where, k)
		}
		seen[k] = true
		values := []pcommon.Value{v}
		if f.array || (f.anyScalar && v.Type() == pcommon.ValueTypeSlice) {
			if v.Type() != pcommon.ValueTypeSlice {
				t.Fatalf("%s: %q is %s, want an array", where, k, v.Type())
			}
			values = values[:0]
			for i := 0; i < v.Slice().Len(); i++ {
				values = append(values, v.Slice().At(i))
			}
		}
		for _, item := range values {
			if f.anyScalar && item.Type() != pcommon.ValueTypeMap && item.Type() != pcommon.ValueTypeSlice &&
				item.Type() != pcommon.ValueTypeBytes && item.Type() != pcommon.ValueTypeEmpty {
				continue
			}
			if item.Type() != f.scalar {
				t.Fatalf("%s: %q holds %s, want %s", where, k, item.Type(), f.scalar)
			}
			if item.Type() == pcommon.ValueTypeStr && !utf8.ValidString(item.Str()) {
				t.Fatalf("%s: %q is not valid UTF-8", where, k)
			}
		}
	}
}

// checkTracesAllowed walks the whole output.
func checkTracesAllowed(t testing.TB, n *normalizer, td ptrace.Traces) {
	t.Helper()
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		if rs.SchemaUrl() != "" {
			t.Fatal("resource schema_url in output")
		}
		checkAllowed(t, &n.resource, rs.Resource().Attributes(), "resource")
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			if ss.SchemaUrl() != "" || ss.Scope().Attributes().Len() != 0 {
				t.Fatal("scope schema_url or attributes in output")
			}
			if name := ss.Scope().Name(); name != "" && !n.scopeNames[name] {
				t.Fatalf("scope name %q in output", name)
			}
			for k := 0; k < ss.Spans().Len(); k++ {
				s := ss.Spans().At(k)
				if !utf8.ValidString(s.Name()) || (!n.spanNames.check(s.Name()) && s.Name() != redacted) {
					t.Fatalf("span name %q in output", s.Name())
				}
				if s.Events().Len() != 0 || s.Links().Len() != 0 || s.TraceState().AsRaw() != "" || s.Status().Message() != "" {
					t.Fatal("events, links, trace state or status message in output")
				}
				policy := &n.phase
				if n.spanNames.isCommand(s.Name()) {
					policy = &n.command
				}
				checkAllowed(t, policy, s.Attributes(), "span")
			}
		}
	}
}

// mustNotContain fails if the marshalled output holds needle anywhere.
func mustNotContainTraces(t testing.TB, td ptrace.Traces, needles ...string) {
	t.Helper()
	raw, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	proto, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	for _, needle := range needles {
		if strings.Contains(string(raw), needle) || strings.Contains(string(proto), needle) {
			t.Fatalf("%q survived normalization: %s", needle, raw)
		}
	}
}

func mustNotContainMetrics(t testing.TB, md pmetric.Metrics, needles ...string) {
	t.Helper()
	raw, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	proto, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, needle := range needles {
		if strings.Contains(string(raw), needle) || strings.Contains(string(proto), needle) {
			t.Fatalf("%q survived normalization: %s", needle, raw)
		}
	}
}
