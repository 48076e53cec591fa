package ingestguard

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// sdkShapedRequest: 300 spans with the attributes of the SDK's command spans.
func sdkShapedRequest(b *testing.B) []byte {
	td := cliTraces(300)
	for _, s := range td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().All() {
		for _, k := range []string{"cli_telemetry.ci.detected", "process.interactive"} {
			s.Attributes().PutBool(k, false)
		}
		for _, k := range []string{"deploy.functions.added", "deploy.functions.updated", "process.pid", "workspace.stages"} {
			s.Attributes().PutInt(k, 3)
		}
		s.Attributes().PutDouble("cli_telemetry.sdk.overhead_ms", 1.5)
		s.Attributes().PutStr("process.executable.name", "deployctl")
	}
	buf, err := marshalRequest(td)
	if err != nil {
		b.Fatal(err)
	}
	return buf
}

// BenchmarkCheckProto: the guard's cost on a 300-span request of the SDK's shape.
func BenchmarkCheckProto(b *testing.B) {
	buf := sdkShapedRequest(b)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if err := checkProto(buf, msgExportTraceServiceRequest, testLimits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/300, "ns/span")
}

// BenchmarkPdataUnmarshal: the receiver's own decoding of the same request, for scale.
func BenchmarkPdataUnmarshal(b *testing.B) {
	buf := sdkShapedRequest(b)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/300, "ns/span")
}
