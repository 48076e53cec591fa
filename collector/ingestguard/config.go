package ingestguard

import "errors"

// Config of the ingestguard extension.
type Config struct {
	// MaxValueDepth: deepest AnyValue nesting accepted (1 = scalars only, 2 = arrays or
	// maps of scalars). The SDK sends at most 2.
	MaxValueDepth int `mapstructure:"max_value_depth"`
	// MaxMessages: most embedded messages (JSON objects) in one request. A CLI span with 15
	// attributes is about 32; a 500-span request of the SDK about 8,300 (measured).
	MaxMessages int `mapstructure:"max_messages"`
}

func createDefaultConfig() *Config {
	return &Config{MaxValueDepth: 8, MaxMessages: 200_000}
}

// Validate refuses limits that would let nothing through or everything through.
func (c *Config) Validate() error {
	if c.MaxValueDepth < 1 || c.MaxValueDepth > 64 {
		return errors.New("max_value_depth must be between 1 and 64")
	}
	if c.MaxMessages < 1 {
		return errors.New("max_messages must be positive")
	}
	return nil
}

func (c *Config) limits() Limits {
	return Limits{MaxValueDepth: c.MaxValueDepth, MaxMessages: c.MaxMessages}
}
