// Package normalizer is a collector processor that rebuilds every traces and metrics
// payload from an allowlist, in the manner of Sentry Relay's schema normalization: the
// output is built fresh and holds only what the allowlist names, with the declared type
// and kind, so whatever a client adds that the allowlist does not know is left behind.
//
// The allowlist (collector/allowlist.yaml) is generated from the SDK's schema; the secret
// rules (rules_gen.go) are generated from the SDK's rule data file. See collector/README.md.
package normalizer // import "github.com/otel-cli-telemetry/otelcol-cli-telemetry/collector/normalizer"

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// FieldConfig declares one attribute key: the OTLP value type it must have and the kind
// of value (shared contract with the SDK: enum, identifier, integer, number, bool,
// version, duration, text).
type FieldConfig struct {
	// Type is string, int, double, bool, or an array of one of them (string[], ...).
	Type string `mapstructure:"type"`
	// Kind says which values are valid; only text is scrubbed, the others are validated.
	Kind string `mapstructure:"kind"`
	// Values lists the allowed values of an enum.
	Values []string `mapstructure:"values"`
}

// MetricConfig declares one metric the app may send.
type MetricConfig struct {
	// Type is the SDK's kind: counter (a monotonic sum) or histogram.
	Type        string `mapstructure:"type"`
	Unit        string `mapstructure:"unit"`
	Description string `mapstructure:"description"`
	// Attributes limits the point attributes to these keys of metric_attributes; empty
	// means every key of metric_attributes.
	Attributes []string `mapstructure:"attributes"`
}

// Config is the normalizer's configuration: the allowlist and the limits.
type Config struct {
	// App is the application's name: command spans are named "<app> <command path>".
	App string `mapstructure:"app"`
	// ScopeNames are the instrumentation scope names kept; any other name is emptied.
	ScopeNames []string `mapstructure:"scope_names"`
	// MaxStringLength caps text values, in characters (the SDK's own limit).
	MaxStringLength int `mapstructure:"max_string_length"`
	// MaxArrayLength caps array attribute values; longer arrays are cut.
	MaxArrayLength int `mapstructure:"max_array_length"`
	// MaxHistogramBuckets caps explicit bounds per histogram point; longer points are dropped.
	MaxHistogramBuckets int `mapstructure:"max_histogram_buckets"`

	// ResourceAttributes are the keys allowed on resources.
	ResourceAttributes map[string]FieldConfig `mapstructure:"resource_attributes"`
	// SpanAttributes are the keys allowed on command spans ("<app> ..."); PhaseAttributes
	// those on phase spans (when unset, phases get SpanAttributes).
	SpanAttributes  map[string]FieldConfig `mapstructure:"span_attributes"`
	PhaseAttributes map[string]FieldConfig `mapstructure:"phase_attributes"`
	// MetricAttributes are the keys allowed on metric points; Metrics the metrics.
	MetricAttributes map[string]FieldConfig  `mapstructure:"metric_attributes"`
	Metrics          map[string]MetricConfig `mapstructure:"metrics"`

	// RenamedAttributes maps attribute names an older SDK sends to their current names
	// (generated from the SDK's own map): such a key is renamed, then checked like the
	// current one, and counted as replaced (reason renamed_key) instead of being dropped
	// as undeclared. RenamedMetrics does the same for metric names.
	RenamedAttributes map[string]string `mapstructure:"renamed_attributes"`
	RenamedMetrics    map[string]string `mapstructure:"renamed_metrics"`
}

func createDefaultConfig() *Config {
	return &Config{
		ScopeNames:          []string{"otel_cli_telemetry"},
		MaxStringLength:     genKindSpecs["text"].MaxLength,
		MaxArrayLength:      64,
		MaxHistogramBuckets: 64,
	}
}

var validTypes = map[string]bool{
	"string": true, "int": true, "double": true, "bool": true,
	"string[]": true, "int[]": true, "double[]": true, "bool[]": true,
	"any": true, // an implicit identifier: an identifier string, or an int, double or bool
}

// kindTypes: the scalar OTLP types a kind can describe.
var kindTypes = map[string][]string{
	"enum":       {"string"},
	"identifier": {"string"},
	"version":    {"string"},
	"duration":   {"string"},
	"text":       {"string"},
	"integer":    {"int"},
	"number":     {"double", "int"},
	"bool":       {"bool"},
}

// Validate fails at start-up on an allowlist the processor cannot enforce: fail closed.
func (c *Config) Validate() error {
	var errs []error
	if c.App == "" {
		errs = append(errs, errors.New("app: required (command spans are named after it)"))
	} else if !genNames.valid(c.App) {
		errs = append(errs, fmt.Errorf("app %q: does not match the names grammar", c.App))
	}
	if c.MaxStringLength < 1 || c.MaxArrayLength < 1 || c.MaxHistogramBuckets < 1 {
		errs = append(errs, errors.New("max_string_length, max_array_length and max_histogram_buckets must be positive"))
	}
	for _, group := range []struct {
		name   string
		fields map[string]FieldConfig
	}{{"resource_attributes", c.ResourceAttributes}, {"span_attributes", c.SpanAttributes},
		{"phase_attributes", c.PhaseAttributes}, {"metric_attributes", c.MetricAttributes}} {
		for _, key := range sortedKeys(group.fields) {
			if err := group.fields[key].validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s::%s: %w", group.name, key, err))
			}
		}
	}
	if len(c.Metrics) == 0 {
		errs = append(errs, errors.New("metrics: at least one metric must be declared"))
	}
	for _, name := range sortedKeys(c.Metrics) {
		m := c.Metrics[name]
		if m.Type != "counter" && m.Type != "histogram" {
			errs = append(errs, fmt.Errorf("metrics::%s: type %q is neither counter nor histogram", name, m.Type))
		}
		for _, key := range m.Attributes {
			if _, ok := c.MetricAttributes[key]; !ok {
				errs = append(errs, fmt.Errorf("metrics::%s: attribute %q is not in metric_attributes", name, key))
			}
		}
	}
	declared := map[string]bool{}
	for _, fields := range []map[string]FieldConfig{c.ResourceAttributes, c.SpanAttributes, c.PhaseAttributes, c.MetricAttributes} {
		for key := range fields {
			declared[key] = true
		}
	}
	errs = append(errs, validateRenames("renamed_attributes", c.RenamedAttributes, declared)...)
	metrics := map[string]bool{}
	for name := range c.Metrics {
		metrics[name] = true
	}
	errs = append(errs, validateRenames("renamed_metrics", c.RenamedMetrics, metrics)...)
	return errors.Join(errs...)
}

// validateRenames: every old name must lead to a declared current name and must not be
// declared itself (a declared name is kept as it is, so its rename could never apply).
func validateRenames(group string, renamed map[string]string, declared map[string]bool) []error {
	var errs []error
	for _, old := range sortedKeys(renamed) {
		switch current := renamed[old]; {
		case !declared[current]:
			errs = append(errs, fmt.Errorf("%s::%s: %q is not declared", group, old, current))
		case declared[old]:
			errs = append(errs, fmt.Errorf("%s::%s: the old name is itself declared", group, old))
		}
	}
	return errs
}

func (f FieldConfig) validate() error {
	if !validTypes[f.Type] {
		return fmt.Errorf("type %q: want string, int, double, bool or an array of one", f.Type)
	}
	scalars, ok := kindTypes[f.Kind]
	if !ok {
		return fmt.Errorf("kind %q is unknown", f.Kind)
	}
	scalar := strings.TrimSuffix(f.Type, "[]")
	if scalar == "any" {
		if f.Kind != "identifier" {
			return fmt.Errorf("type any is only for (implicit) identifiers, not kind %q", f.Kind)
		}
		return nil
	}
	fits := false
	for _, s := range scalars {
		fits = fits || s == scalar
	}
	if !fits {
		return fmt.Errorf("kind %q cannot have type %q", f.Kind, f.Type)
	}
	if f.Kind == "enum" && len(f.Values) == 0 {
		return errors.New("an enum needs values")
	}
	if f.Kind != "enum" && len(f.Values) != 0 {
		return fmt.Errorf("values are only for enums, not kind %q", f.Kind)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
