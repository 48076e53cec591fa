package normalizer

import (
	"context"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"
)

// The shipped collector/allowlist.yaml (generated from the SDK schema) decodes strictly
// into this processor's config, validates, and lets a realistic SDK request through.
func TestShippedAllowlistLoads(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("..", "allowlist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := cm.Sub("processors::normalizer")
	if err != nil {
		t.Fatal(err)
	}
	factory := NewFactory()
	cfg := factory.CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := confmap.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.App == "" || len(cfg.SpanAttributes) == 0 || len(cfg.Metrics) == 0 {
		t.Fatalf("allowlist decoded empty: %+v", cfg)
	}
	sink := new(consumertest.TracesSink)
	set := processortest.NewNopSettings(factory.Type())
	set.ID = component.NewID(factory.Type())
	proc, err := factory.CreateTraces(context.Background(), set, cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	td := realisticTraces(3)
	// realisticTraces names the app "deployctl", as the shipped allowlist does
	if err := proc.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if sink.SpanCount() != 3 {
		t.Fatalf("%d spans", sink.SpanCount())
	}
	out := firstSpan(sink.AllTraces()[0])
	if out.Name() != "deployctl stage new" {
		t.Fatalf("span name %q", out.Name())
	}
	if v, ok := out.Attributes().Get("cli_telemetry.command"); !ok || v.Str() != "stage" {
		t.Fatal("cli_telemetry.command lost")
	}
	// An SDK of the previous release is still heard: its names are renamed, not dropped.
	sink.Reset()
	if err := proc.ConsumeTraces(context.Background(), previousReleaseTraces()); err != nil {
		t.Fatal(err)
	}
	old := firstSpan(sink.AllTraces()[0]).Attributes()
	for _, key := range []string{"cli_telemetry.command", "cli_telemetry.flags", "process.interactive"} {
		if _, ok := old.Get(key); !ok {
			t.Fatalf("%s of a previous-release SDK lost: %v", key, old.AsRaw())
		}
	}
}
