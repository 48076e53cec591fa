package normalizer

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// typeStr is the processor's name in collector configs.
const typeStr = "normalizer"

// NewFactory returns the factory of the normalizer processor (traces and metrics).
func NewFactory() processor.Factory {
	return processor.NewFactory(
		component.MustNewType(typeStr),
		func() component.Config { return createDefaultConfig() },
		processor.WithTraces(createTraces, component.StabilityLevelBeta),
		processor.WithMetrics(createMetrics, component.StabilityLevelBeta),
	)
}

// The output is always a fresh object: the input is never modified.
var capabilities = processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: false})

func newFromSettings(set processor.Settings, cfg component.Config) (*normalizer, error) {
	tel, err := newTelemetry(set.TelemetrySettings, set.ID)
	if err != nil {
		return nil, err
	}
	return newNormalizer(cfg.(*Config), tel), nil
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	n, err := newFromSettings(set, cfg)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, n.processTraces, capabilities)
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	n, err := newFromSettings(set, cfg)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, n.processMetrics, capabilities)
}
