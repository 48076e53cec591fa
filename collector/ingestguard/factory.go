// Package ingestguard is a collector extension that bounds the work of decoding an OTLP
// request before the receiver decodes it.
//
// The OTLP receiver of collector v0.155 decodes the whole request (recursively, without a
// depth limit) before any processor or the memory_limiter runs: 300,000 nested ArrayValues
// in 2.4 MiB cost hundreds of MiB of goroutine stack, and millions of empty messages in
// 4 MiB allocate hundreds of MiB of structs. This extension is configured as a server
// middleware of the receiver (HTTP: `middlewares:` wraps the handler after decompression and
// inside max_request_body_size; gRPC: a server codec that checks the bytes before the
// pdata codec decodes them) and refuses such requests with one linear, iterative pass over
// the bytes, guided by the OTLP schema.
package ingestguard

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

var componentType = component.MustNewType("ingestguard")

// NewFactory returns the factory of the ingestguard extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(
		componentType,
		func() component.Config { return createDefaultConfig() },
		func(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
			return newGuard(set, cfg.(*Config))
		},
		component.StabilityLevelAlpha,
	)
}
