package normalizer

import (
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// fieldRule is one declared attribute key, compiled from its FieldConfig.
type fieldRule struct {
	key         string
	slot        int // index of this key within its policy, for duplicate detection
	anyScalar   bool
	scalar      pcommon.ValueType // the element type, unless anyScalar
	array       bool
	kind        string
	enum        map[string]struct{}
	gram        *grammar
	placeholder string // what a string failing the kind becomes
	cache       *validCache
}

// attrPolicy is a set of declared keys (the resource's, the spans', one metric's points').
// byKey also holds the old names of renamed keys, leading to the current key's rule (whose
// key differs from the one looked up: that is how a rename is recognised).
type attrPolicy struct {
	byKey  map[string]*fieldRule
	fields []*fieldRule
}

func newPolicy(fields map[string]FieldConfig, only []string, renamed map[string]string) attrPolicy {
	p := attrPolicy{byKey: map[string]*fieldRule{}}
	keys := only
	if len(keys) == 0 {
		keys = sortedKeys(fields)
	}
	for _, key := range keys {
		fc := fields[key]
		f := &fieldRule{
			key: key, slot: len(p.fields), kind: fc.Kind, array: strings.HasSuffix(fc.Type, "[]"),
			placeholder: kindPlaceholder(fc.Kind),
		}
		switch strings.TrimSuffix(fc.Type, "[]") {
		case "string":
			f.scalar = pcommon.ValueTypeStr
		case "int":
			f.scalar = pcommon.ValueTypeInt
		case "double":
			f.scalar = pcommon.ValueTypeDouble
		case "bool":
			f.scalar = pcommon.ValueTypeBool
		case "any":
			// An implicit identifier (a field declared with a bare description): a string
			// must be an identifier; ints, doubles and bools are kept; or a list of one.
			f.anyScalar = true
			f.scalar = pcommon.ValueTypeStr
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
	for old, current := range renamed {
		if f, ok := p.byKey[current]; ok && p.byKey[old] == nil {
			p.byKey[old] = f // same rule, same slot: old and current together are a duplicate
		}
	}
	return p
}

// validCache remembers grammar verdicts for short values: CLI telemetry repeats the same
// few command names, flags and versions, and a map lookup is cheaper than a regex match and
// a secret scan. Bounded: once full it stops learning (hostile traffic can only slow it
// down, never grow it or change a verdict).
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

// spanNames classifies and checks span names. A command span is named "<app>" or
// "<app> <command path>", each path component a name (or "<redacted>", what the SDK sends
// for a component that failed); any other span is a phase, named by one name.
type spanNames struct {
	app    string
	prefix string
	cache  *validCache
}

func newSpanNames(app string) spanNames {
	return spanNames{app: app, prefix: app + " ", cache: newValidCache()}
}

func (r *spanNames) isCommand(name string) bool {
	return name == r.app || strings.HasPrefix(name, r.prefix)
}

func (r *spanNames) valid(name string) bool {
	return r.cache.check(name, r.check)
}

func (r *spanNames) check(name string) bool {
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
			if part != redacted && !genNames.valid(part) {
				return false
			}
		}
		return true
	}
	return genNames.valid(name)
}
