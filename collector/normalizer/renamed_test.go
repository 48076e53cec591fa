package normalizer

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// previousReleaseTraces: what an SDK of the previous release sends for one command, under
// the names it used before they moved into the cli_telemetry namespace.
func previousReleaseTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr("service.name", "deployctl")
	res.PutStr("service.instance.id", "550e8400-e29b-41d4-a716-446655440000")
	res.PutStr("cli.installation.id", "550e8400-e29b-41d4-a716-446655440000") // removed
	res.PutStr("cli.telemetry.schema_version", "2.d13059d5")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("otel_cli_telemetry")
	s := ss.Spans().AppendEmpty()
	s.SetName("deployctl stage new")
	s.SetTraceID(traceID(1))
	s.SetSpanID(spanID(1))
	a := s.Attributes()
	a.PutStr("cli.command", "stage new")
	a.PutEmptySlice("cli.flags").AppendEmpty().SetStr("--force")
	a.PutBool("cli.interactive", true)
	a.PutInt("process.exit.code", 0)
	return td
}

func TestPreviousReleaseNamesAreRenamedNotDropped(t *testing.T) {
	n := newTestNormalizer(t)
	out, c := normalizeTraces(t, n, previousReleaseTraces())
	checkTracesAllowed(t, n, out)
	res := out.ResourceSpans().At(0).Resource().Attributes().AsRaw()
	if res["cli_telemetry.schema.version"] != "2.d13059d5" || res["service.instance.id"] == nil {
		t.Fatalf("resource %v", res)
	}
	got := firstSpan(out).Attributes().AsRaw()
	want := map[string]any{
		"cli_telemetry.command": "stage new",
		"cli_telemetry.flags":   []any{"--force"},
		"process.interactive":   true,
		"process.exit.code":     int64(0),
	}
	if len(got) != len(want) {
		t.Fatalf("span attributes %v, want %v", got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || !equalRaw(g, v) {
			t.Fatalf("%s = %v, want %v (all: %v)", k, g, v, got)
		}
	}
	mustNotContainTraces(t, out, "cli.command", "cli.flags", "cli.interactive", "cli.telemetry", "cli.installation.id")
	if r := c.replaced[replaceRenamedKey]; r != 4 {
		t.Fatalf("renamed_key counted %d, want 4 (3 span keys, 1 resource key)", r)
	}
	// cli.installation.id has no successor (service.instance.id carries the same uuid).
	if d := c.dropped[dropUndeclaredAttribute]; d != 1 {
		t.Fatalf("undeclared_attribute counted %d, want 1", d)
	}
}

// A renamed key still has to pass its current key's rule: the rename is not a way around it.
func TestRenamedKeysAreCheckedLikeTheirCurrentNames(t *testing.T) {
	n := newTestNormalizer(t)
	td := previousReleaseTraces()
	a := firstSpan(td).Attributes()
	a.PutStr("cli.interactive", "yes")               // wrong type for a bool
	a.PutStr("cli.command", "deploy "+plantedSecret) // fails the identifier kind
	out, c := normalizeTraces(t, n, td)
	got := firstSpan(out).Attributes().AsRaw()
	if _, ok := got["process.interactive"]; ok {
		t.Fatalf("a wrongly typed old key was kept: %v", got)
	}
	if cmd, _ := got["cli_telemetry.command"].(string); strings.Contains(cmd, plantedSecret) {
		t.Fatalf("a secret under an old key survived: %v", got)
	}
	if c.dropped[dropWrongType] != 1 {
		t.Fatalf("wrong_type counted %d, want 1", c.dropped[dropWrongType])
	}
}

// Old and current name in one map are the same key twice: hostile, both dropped.
func TestOldAndCurrentNameTogetherAreADuplicate(t *testing.T) {
	n := newTestNormalizer(t)
	td := previousReleaseTraces()
	firstSpan(td).Attributes().PutStr("cli_telemetry.command", "deploy")
	out, c := normalizeTraces(t, n, td)
	if _, ok := firstSpan(out).Attributes().Get("cli_telemetry.command"); ok {
		t.Fatal("a key sent under both names was kept")
	}
	if c.dropped[dropDuplicateKey] != 2 {
		t.Fatalf("duplicate_key counted %d, want 2", c.dropped[dropDuplicateKey])
	}
}

func TestPreviousReleaseMetricIsRenamed(t *testing.T) {
	n := newTestNormalizer(t)
	md := realisticMetrics()
	h := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
	h.SetName("cli.command.duration")
	p := h.Histogram().DataPoints().At(0).Attributes()
	p.Remove("cli_telemetry.command")
	p.PutStr("cli.command", "stage")
	out, c := normalizeMetrics(t, n, md)
	metrics := out.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	if metrics.Len() != 2 {
		t.Fatalf("%d metrics", metrics.Len())
	}
	got := metrics.At(0)
	if got.Name() != "cli_telemetry.command.duration" || got.Type() != pmetric.MetricTypeHistogram {
		t.Fatalf("metric %q %s", got.Name(), got.Type())
	}
	if v, ok := got.Histogram().DataPoints().At(0).Attributes().Get("cli_telemetry.command"); !ok || v.Str() != "stage" {
		t.Fatalf("point attributes %v", got.Histogram().DataPoints().At(0).Attributes().AsRaw())
	}
	mustNotContainMetrics(t, out, "cli.command")
	if c.replaced[replaceRenamedKey] != 2 || c.dropped[dropUndeclaredMetric] != 0 {
		t.Fatalf("counts %+v", *c)
	}
}

// An old name declared by the app itself is the app's field: kept, never renamed; and a
// rename must lead to a declared name.
func TestConfigValidateRenames(t *testing.T) {
	cfg := testConfig()
	cfg.RenamedAttributes["cli.agent"] = "cli_telemetry.agent" // not declared here
	cfg.RenamedMetrics["old.metric"] = "deploy.artifacts"
	cfg.SpanAttributes["old.metric"] = FieldConfig{Type: "string", Kind: "identifier"}
	cfg.RenamedAttributes["deploy.note"] = "deploy.region" // the old name is declared
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid renames accepted")
	}
	for _, want := range []string{
		`renamed_attributes::cli.agent: "cli_telemetry.agent" is not declared`,
		"renamed_attributes::deploy.note: the old name is itself declared",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "old.metric") {
		t.Fatalf("metric renames are checked against metric names only: %v", err)
	}
}
