package normalizer

import (
	"math"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Each kind and type: what arrives for a value that fits, one that fails the kind, and one
// of another type.
func TestKindsAndTypes(t *testing.T) {
	type want struct {
		present bool
		value   any
	}
	cases := []struct {
		name  string
		key   string
		set   func(pcommon.Map)
		phase bool
		want  want
	}{
		{"identifier fits", "cli_telemetry.command", func(m pcommon.Map) { m.PutStr("cli_telemetry.command", "stage") }, false, want{true, "stage"}},
		{"identifier with a token", "cli_telemetry.command", func(m pcommon.Map) { m.PutStr("cli_telemetry.command", "ghp_"+strings.Repeat("a1B2", 9)) }, false, want{true, "<redacted>"}},
		{"identifier that is a short token", "cli_telemetry.command", func(m pcommon.Map) { m.PutStr("cli_telemetry.command", "x7Gq2LpV9sKd4TzW1") }, false, want{true, "<redacted>"}},
		{"identifier of 9 words", "cli_telemetry.command", func(m pcommon.Map) { m.PutStr("cli_telemetry.command", "a b c d e f g h i") }, false, want{true, "<redacted>"}},
		{"identifier placeholder kept", "cli_telemetry.command", func(m pcommon.Map) { m.PutStr("cli_telemetry.command", "<redacted>") }, false, want{true, "<redacted>"}},
		{"enum fits", "deploy.region", func(m pcommon.Map) { m.PutStr("deploy.region", "us") }, false, want{true, "us"}},
		{"enum outside", "deploy.region", func(m pcommon.Map) { m.PutStr("deploy.region", "mars") }, false, want{true, "<other>"}},
		{"enum placeholder kept", "deploy.region", func(m pcommon.Map) { m.PutStr("deploy.region", "<other>") }, false, want{true, "<other>"}},
		{"duration fits", "deploy.timeout", func(m pcommon.Map) { m.PutStr("deploy.timeout", "1h30m") }, false, want{true, "1h30m"}},
		{"duration fails", "deploy.timeout", func(m pcommon.Map) { m.PutStr("deploy.timeout", "soon") }, false, want{true, "<invalid-duration>"}},
		{"duration as int", "deploy.timeout", func(m pcommon.Map) { m.PutInt("deploy.timeout", 30) }, false, want{false, nil}},
		{"integer", "process.exit.code", func(m pcommon.Map) { m.PutInt("process.exit.code", 2) }, false, want{true, int64(2)}},
		{"integer as string", "process.exit.code", func(m pcommon.Map) { m.PutStr("process.exit.code", "2") }, false, want{false, nil}},
		{"number from int", "deploy.ratio", func(m pcommon.Map) { m.PutInt("deploy.ratio", 3) }, false, want{true, 3.0}},
		{"number NaN", "deploy.ratio", func(m pcommon.Map) { m.PutDouble("deploy.ratio", math.NaN()) }, false, want{false, nil}},
		{"number +Inf", "deploy.ratio", func(m pcommon.Map) { m.PutDouble("deploy.ratio", math.Inf(1)) }, false, want{false, nil}},
		{"bool as int", "process.interactive", func(m pcommon.Map) { m.PutInt("process.interactive", 1) }, false, want{false, nil}},
		{"text scrubbed", "deploy.note", func(m pcommon.Map) { m.PutStr("deploy.note", "used "+plantedSecret) }, false, want{true, "used <aws-access-key>"}},
		{"text cut to 1024 characters", "deploy.note", func(m pcommon.Map) { m.PutStr("deploy.note", strings.Repeat("é", 2000)) }, false, want{true, strings.Repeat("é", 1024)}},
		{"implicit identifier string", "deploy.stage", func(m pcommon.Map) { m.PutStr("deploy.stage", "prod") }, false, want{true, "prod"}},
		{"implicit identifier int", "deploy.stage", func(m pcommon.Map) { m.PutInt("deploy.stage", 7) }, false, want{true, int64(7)}},
		{"implicit identifier bad string", "deploy.stage", func(m pcommon.Map) { m.PutStr("deploy.stage", "a=b;c") }, false, want{true, "<redacted>"}},
		{"implicit identifier map", "deploy.stage", func(m pcommon.Map) { m.PutEmptyMap("deploy.stage").PutStr("k", "v") }, false, want{false, nil}},
		{"implicit identifier list of ints", "deploy.stage", func(m pcommon.Map) {
			s := m.PutEmptySlice("deploy.stage")
			s.AppendEmpty().SetInt(1)
			s.AppendEmpty().SetInt(2)
		}, false, want{true, []any{int64(1), int64(2)}}},
		{"implicit identifier mixed list", "deploy.stage", func(m pcommon.Map) {
			s := m.PutEmptySlice("deploy.stage")
			s.AppendEmpty().SetInt(1)
			s.AppendEmpty().SetStr("x")
		}, false, want{false, nil}},
		{"array where scalar", "cli_telemetry.command", func(m pcommon.Map) { m.PutEmptySlice("cli_telemetry.command").AppendEmpty().SetStr("x") }, false, want{false, nil}},
		{"scalar where array", "cli_telemetry.flags", func(m pcommon.Map) { m.PutStr("cli_telemetry.flags", "--force") }, false, want{false, nil}},
		{"empty array", "cli_telemetry.flags", func(m pcommon.Map) { m.PutEmptySlice("cli_telemetry.flags") }, false, want{false, nil}},
		{"command-only key on a phase", "cli_telemetry.command", func(m pcommon.Map) { m.PutStr("cli_telemetry.command", "stage") }, true, want{false, nil}},
		{"phase key on a phase", "deploy.region", func(m pcommon.Map) { m.PutStr("deploy.region", "eu") }, true, want{true, "eu"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNormalizer(t)
			td := realisticTraces(1)
			s := firstSpan(td)
			if tc.phase {
				s.SetName("upload")
			}
			s.Attributes().Clear()
			tc.set(s.Attributes())
			out, _ := normalizeTraces(t, n, td)
			checkTracesAllowed(t, n, out)
			v, ok := firstSpan(out).Attributes().Get(tc.key)
			if ok != tc.want.present {
				t.Fatalf("present=%v, want %v (%v)", ok, tc.want.present, firstSpan(out).Attributes().AsRaw())
			}
			if ok && !equalRaw(v.AsRaw(), tc.want.value) {
				t.Fatalf("got %#v, want %#v", v.AsRaw(), tc.want.value)
			}
		})
	}
}

func equalRaw(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok || bok {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestSpanNames(t *testing.T) {
	n := newTestNormalizer(t)
	for name, want := range map[string]string{
		"deployctl":                   "deployctl",
		"deployctl stage new":         "deployctl stage new",
		"deployctl <redacted>":        "deployctl <redacted>",
		"deployctl stage --force":     "deployctl <redacted>",
		"deployctl ":                  "deployctl <redacted>",
		"deployctl stage  new":        "deployctl <redacted>",
		"build":                       "build",
		"build.step-2":                "build.step-2",
		"Build Phase":                 "<redacted>",
		"otherapp deploy":             "<redacted>",
		plantedSecret:                 "<redacted>",
		"x7Gq2LpV9sKd4TzW1mNc8RbY2":   "<redacted>",
		"deployctl x7Gq2LpV9sKd4TzW1": "deployctl <redacted>", // a 17-character token
		"x7Gq2LpV9sKd4TzW1":           "<redacted>",
		strings.Repeat("a", 65):       "<redacted>",
	} {
		td := ptrace.NewTraces()
		s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(traceID(1))
		s.SetSpanID(spanID(1))
		s.SetName(name)
		out, _ := normalizeTraces(t, n, td)
		if got := firstSpan(out).Name(); got != want {
			t.Errorf("%q -> %q, want %q", name, got, want)
		}
	}
}
