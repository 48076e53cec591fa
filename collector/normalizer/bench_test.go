package normalizer

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BenchmarkNormalizeTraces: a request of 300 realistic CLI spans (a command span with the
// built-in attributes and declared fields, two phases each), decoded once; reports ns/span
// for the normalization alone (the input is not rebuilt inside the loop).
func BenchmarkNormalizeTraces(b *testing.B) {
	const spans = 300
	n := newTestNormalizer(b)
	raw, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(realisticTraces(spans))
	if err != nil {
		b.Fatal(err)
	}
	in, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(raw)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.processTraces(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}

// BenchmarkDecodeAndNormalizeTraces includes the proto decode the receiver does, for scale.
func BenchmarkDecodeAndNormalizeTraces(b *testing.B) {
	const spans = 300
	n := newTestNormalizer(b)
	raw, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(realisticTraces(spans))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		in, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := n.processTraces(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}

func BenchmarkScrubText(b *testing.B) {
	values := []string{"rolled out to canary first", "deploy to eu-west-1 with --force", "password=hunter2 token AKIAIOSFODNN7EXAMPLE"}
	b.ReportAllocs()
	for b.Loop() {
		for _, v := range values {
			scrubber.scrub(v)
		}
	}
}

func BenchmarkScrubCleanText(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		scrubber.scrub("rolled out to canary first")
	}
}

// BenchmarkNormalizeMetrics: one SDK-shaped metrics request (a histogram and a counter per
// resource, 100 resources); reports ns per data point.
func BenchmarkNormalizeMetrics(b *testing.B) {
	n := newTestNormalizer(b)
	md := realisticMetrics()
	for i := 1; i < 100; i++ {
		realisticMetrics().ResourceMetrics().MoveAndAppendTo(md.ResourceMetrics())
	}
	points := md.DataPointCount()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.processMetrics(ctx, md); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*points), "ns/point")
}
