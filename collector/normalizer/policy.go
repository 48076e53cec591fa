package normalizer

import (
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// fieldRule is one declared attribute key, compiled from its FieldConfig.
type fieldRule struct {
	key    string
	slot   int // index of this key within its policy, for duplicate detection
	scalar pcommon.ValueType
	array  bool
	kind   string
	enum   map[string]struct{}
	gram   *grammar
	cache  *validCache
}

// attrPolicy is a set of declared keys (the resource's, the spans', one metric's points').
type attrPolicy struct {
	byKey  map[string]*fieldRule
	fields []*fieldRule
}

func newPolicy(fields map[string]FieldConfig, only []string) attrPolicy {
	p := attrPolicy{byKey: map[string]*fieldRule{}}
	keys := only
	if len(keys) == 0 {
		keys = sortedKeys(fields)
	}
	for _, key := range keys {
		fc := fields[key]
		f := &fieldRule{key: key, slot: len(p.fields), kind: fc.Kind, array: strings.HasSuffix(fc.Type, "[]")}
		switch strings.TrimSuffix(fc.Type, "[]") {
		case "string":
			f.scalar = pcommon.ValueTypeStr
		case "int":
			f.scalar = pcommon.ValueTypeInt
		case "double":
			f.scalar = pcommon.ValueTypeDouble
		case "bool":
			f.scalar = pcommon.ValueTypeBool
		}
		if fc.Kind == "enum" {
			f.enum = make(map[string]struct{}, len(fc.Values))
			for _, v := range fc.Values {
				f.enum[v] = struct{}{}
			}
		}
		if g, ok := genKinds[fc.Kind]; ok {
			f.gram = &g
			f.cache = newValidCache()
		}
		p.byKey[key] = f
		p.fields = append(p.fields, f)
	}
	return p
}

// validCache remembers grammar verdicts for short values: CLI telemetry repeats the same
// few command names, flags and versions, and a map lookup is cheaper than a regex match.
// Bounded: once full it stops learning (hostile traffic can only slow it down, never grow
// it or change a verdict).
type validCache struct {
	mu      sync.RWMutex
	verdict map[string]bool
}

const (
	validCacheEntries  = 4096
	validCacheMaxBytes = 128
)

func newValidCache() *validCache { return &validCache{verdict: make(map[string]bool, 64)} }

func (c *validCache) check(s string, valid func(string) bool) bool {
	if len(s) > validCacheMaxBytes {
		return valid(s)
	}
	c.mu.RLock()
	ok, hit := c.verdict[s]
	c.mu.RUnlock()
	if hit {
		return ok
	}
	ok = valid(s)
	c.mu.Lock()
	if len(c.verdict) < validCacheEntries {
		c.verdict[strings.Clone(s)] = ok
	}
	c.mu.Unlock()
	return ok
}

// spanNameRule accepts "<app>", "<app> <command path>" (each component a name) and a bare
// name (a phase); anything else is replaced.
type spanNameRule struct {
	app    string
	prefix string
	cache  *validCache
}

func (r *spanNameRule) valid(name string) bool {
	return r.cache.check(name, r.check)
}

func (r *spanNameRule) check(name string) bool {
	if !utf8.ValidString(name) {
		return false
	}
	if name == r.app {
		return true
	}
	if rest, ok := strings.CutPrefix(name, r.prefix); ok {
		if rest == "" {
			return false
		}
		for part := range strings.SplitSeq(rest, " ") {
			if !genNames.valid(part) {
				return false
			}
		}
		return true
	}
	return genNames.valid(name)
}
