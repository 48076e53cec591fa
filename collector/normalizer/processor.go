package normalizer

import (
	"context"
	"fmt"
	"math"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/xpdata"
	"go.opentelemetry.io/collector/pdata/xpdata/entity"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// metricRule is one declared metric.
type metricRule struct {
	name        string
	histogram   bool
	unit        string
	description string
	points      attrPolicy
}

// normalizer holds the compiled allowlist; it is read-only after construction, so one
// instance serves concurrent requests.
type normalizer struct {
	cfg        *Config
	resource   attrPolicy
	command    attrPolicy // command spans
	phase      attrPolicy // phase (child) spans
	metrics    map[string]*metricRule
	scopeNames map[string]bool
	spanNames  spanNames
	version    grammar
	maxSlots   int
	telemetry  *telemetry
	pool       sync.Pool
}

// work is one request's scratch space (from a pool: no per-request allocation of it).
type work struct {
	counts counts
	slots  []int32 // per declared key: 0 unseen, i+1 seen once at picks[i], -1 duplicated
	picks  []pick
	mb     xpdata.MapBuilder
}

type pick struct {
	field *fieldRule
	value pcommon.Value
	dup   bool
}

func newNormalizer(cfg *Config, tel *telemetry) *normalizer {
	n := &normalizer{
		cfg:        cfg,
		resource:   newPolicy(cfg.ResourceAttributes, nil, cfg.RenamedAttributes),
		command:    newPolicy(cfg.SpanAttributes, nil, cfg.RenamedAttributes),
		phase:      newPolicy(cfg.PhaseAttributes, nil, cfg.RenamedAttributes),
		metrics:    map[string]*metricRule{},
		scopeNames: map[string]bool{},
		spanNames:  newSpanNames(cfg.App),
		version:    genKinds["version"],
		telemetry:  tel,
	}
	for _, name := range cfg.ScopeNames {
		n.scopeNames[name] = true
	}
	if cfg.PhaseAttributes == nil {
		n.phase = n.command
	}
	n.maxSlots = max(len(n.resource.fields), len(n.command.fields), len(n.phase.fields))
	for name, mc := range cfg.Metrics {
		m := &metricRule{
			name: name, histogram: mc.Type == "histogram", unit: mc.Unit, description: mc.Description,
			points: newPolicy(cfg.MetricAttributes, mc.Attributes, cfg.RenamedAttributes),
		}
		n.metrics[name] = m
		n.maxSlots = max(n.maxSlots, len(m.points.fields))
	}
	for old, current := range cfg.RenamedMetrics {
		if m, ok := n.metrics[current]; ok && cfg.Metrics[old].Type == "" {
			n.metrics[old] = m // sent under its old name: emitted under rule.name
		}
	}
	n.pool.New = func() any { return &work{slots: make([]int32, n.maxSlots)} }
	return n
}

func (n *normalizer) getWork() *work {
	w := n.pool.Get().(*work)
	w.counts = counts{}
	return w
}

func (n *normalizer) putWork(ctx context.Context, w *work) {
	if n.telemetry != nil {
		n.telemetry.record(ctx, &w.counts)
	}
	n.pool.Put(w)
}

// recoverPermanent turns a panic on hostile input into a permanent error for that request
// (the client is told not to retry), instead of taking the collector down.
func recoverPermanent(err *error) {
	if r := recover(); r != nil {
		*err = consumererror.NewPermanent(fmt.Errorf("normalizer: request rejected: %v", r))
	}
}

// processTraces builds fresh traces holding only what the allowlist names.
func (n *normalizer) processTraces(ctx context.Context, in ptrace.Traces) (out ptrace.Traces, err error) {
	defer recoverPermanent(&err)
	w := n.getWork()
	defer n.putWork(ctx, w)
	out = n.normalizeTraces(w, in)
	if out.ResourceSpans().Len() == 0 {
		return out, processorhelper.ErrSkipProcessingData
	}
	return out, nil
}

func (n *normalizer) normalizeTraces(w *work, in ptrace.Traces) ptrace.Traces {
	out := ptrace.NewTraces()
	inRSS := in.ResourceSpans()
	outRSS := out.ResourceSpans()
	outRSS.EnsureCapacity(inRSS.Len())
	for i := 0; i < inRSS.Len(); i++ {
		rs := inRSS.At(i)
		if rs.SchemaUrl() != "" {
			w.counts.dropped[dropSchemaURL]++
		}
		inSS := rs.ScopeSpans()
		var outRS ptrace.ResourceSpans
		started := false
		for j := 0; j < inSS.Len(); j++ {
			ss := inSS.At(j)
			if ss.SchemaUrl() != "" {
				w.counts.dropped[dropSchemaURL]++
			}
			spans := ss.Spans()
			if spans.Len() == 0 {
				continue
			}
			if !started {
				outRS = outRSS.AppendEmpty()
				n.normalizeResource(w, rs.Resource(), outRS.Resource())
				started = true
			}
			outSS := outRS.ScopeSpans().AppendEmpty()
			n.normalizeScope(w, ss.Scope(), outSS.Scope())
			outSpans := outSS.Spans()
			outSpans.EnsureCapacity(spans.Len())
			for k := 0; k < spans.Len(); k++ {
				n.normalizeSpan(w, spans.At(k), outSpans)
			}
			if outSpans.Len() == 0 {
				outRS.ScopeSpans().RemoveIf(func(s ptrace.ScopeSpans) bool { return s.Spans().Len() == 0 })
			}
		}
		if started && outRS.ScopeSpans().Len() == 0 {
			outRSS.RemoveIf(func(r ptrace.ResourceSpans) bool { return r.ScopeSpans().Len() == 0 })
		}
	}
	return out
}

func (n *normalizer) normalizeResource(w *work, in, out pcommon.Resource) {
	if entity.ResourceEntityRefs(in).Len() > 0 {
		w.counts.dropped[dropEntityRefs]++
	}
	n.filterAttributes(w, &n.resource, in.Attributes(), out.Attributes())
}

func (n *normalizer) normalizeScope(w *work, in, out pcommon.InstrumentationScope) {
	if a := in.Attributes().Len(); a > 0 {
		w.counts.dropped[dropScopeAttribute] += int64(a)
	}
	if name := in.Name(); n.scopeNames[name] {
		out.SetName(name)
	} else if name != "" {
		w.counts.replaced[replaceScopeName]++
	}
	if v := in.Version(); v != "" {
		if n.version.re != nil && n.version.valid(v) {
			out.SetVersion(v)
		} else {
			w.counts.replaced[replaceScopeVersion]++
		}
	}
}

// spanFlagsKept: W3C sampled plus the OTLP has-is-remote/is-remote bits; nothing else.
const spanFlagsKept = 0x0000_0301

func (n *normalizer) normalizeSpan(w *work, in ptrace.Span, outSpans ptrace.SpanSlice) {
	if in.TraceID().IsEmpty() || in.SpanID().IsEmpty() {
		w.counts.dropped[dropInvalidSpan]++
		return
	}
	out := outSpans.AppendEmpty()
	out.SetTraceID(in.TraceID())
	out.SetSpanID(in.SpanID())
	out.SetParentSpanID(in.ParentSpanID())
	out.SetFlags(in.Flags() & spanFlagsKept)
	name := in.Name()
	policy := &n.phase
	command := n.spanNames.isCommand(name)
	if command {
		policy = &n.command
	}
	switch {
	case n.spanNames.valid(name):
		out.SetName(name)
	case command:
		out.SetName(n.spanNames.prefix + redacted) // still a command span of this app
		w.counts.replaced[replaceInvalidSpanName]++
	default:
		out.SetName(redacted)
		w.counts.replaced[replaceInvalidSpanName]++
	}
	if k := in.Kind(); k >= ptrace.SpanKindUnspecified && k <= ptrace.SpanKindConsumer {
		out.SetKind(k)
	}
	out.SetStartTimestamp(in.StartTimestamp())
	out.SetEndTimestamp(in.EndTimestamp())
	status := in.Status()
	if c := status.Code(); c >= ptrace.StatusCodeUnset && c <= ptrace.StatusCodeError {
		out.Status().SetCode(c)
	}
	if status.Message() != "" {
		w.counts.dropped[dropStatusMessage]++
	}
	if e := in.Events().Len(); e > 0 {
		w.counts.dropped[dropSpanEvent] += int64(e)
	}
	if l := in.Links().Len(); l > 0 {
		w.counts.dropped[dropSpanLink] += int64(l)
	}
	if in.TraceState().AsRaw() != "" {
		w.counts.dropped[dropTraceState]++
	}
	n.filterAttributes(w, policy, in.Attributes(), out.Attributes())
}

// filterAttributes writes into out (empty) the declared keys of in whose values pass their
// field rule. One pass over in; a key present more than once is hostile and dropped whole.
func (n *normalizer) filterAttributes(w *work, p *attrPolicy, in, out pcommon.Map) {
	picks := w.picks[:0]
	for key, value := range in.All() {
		f := p.byKey[key]
		if f == nil {
			w.counts.dropped[dropUndeclaredAttribute]++
			continue
		}
		if f.key != key { // an old name (renamed_attributes): emitted under f.key
			w.counts.replaced[replaceRenamedKey]++
		}
		switch s := w.slots[f.slot]; {
		case s == 0:
			picks = append(picks, pick{field: f, value: value})
			w.slots[f.slot] = int32(len(picks))
		case s > 0:
			picks[s-1].dup = true
			w.slots[f.slot] = -1
			w.counts.dropped[dropDuplicateKey] += 2
		default:
			w.counts.dropped[dropDuplicateKey]++
		}
	}
	if len(picks) == 0 {
		w.picks = picks
		return
	}
	mb := &w.mb
	mb.EnsureCapacity(len(picks))
	for i := range picks {
		pk := &picks[i]
		w.slots[pk.field.slot] = 0
		if !pk.dup {
			n.emit(w, pk.field, pk.value, mb)
		}
		pk.value = pcommon.Value{}
	}
	mb.UnsafeIntoMap(out)
	w.picks = picks[:0]
}

// emit appends key=value to mb if value has the field's type and kind (a string failing
// its kind becomes the kind's placeholder, as the SDK does); otherwise counts the drop.
func (n *normalizer) emit(w *work, f *fieldRule, v pcommon.Value, mb *xpdata.MapBuilder) {
	if v.Type() != pcommon.ValueTypeSlice {
		if f.array {
			w.counts.dropped[dropWrongType]++
			return
		}
		if t, ok := n.scalarType(w, f, v); ok {
			n.setScalar(w, f, t, v, mb.AppendEmpty(f.key))
		}
		return
	}
	if !f.array && !f.anyScalar {
		w.counts.dropped[dropWrongType]++
		return
	}
	items := v.Slice()
	count := items.Len()
	if count == 0 {
		w.counts.dropped[dropWrongType]++
		return
	}
	if count > n.cfg.MaxArrayLength {
		count = n.cfg.MaxArrayLength
		w.counts.replaced[replaceTruncated]++
	}
	var elem pcommon.ValueType
	for i := 0; i < count; i++ {
		t, ok := n.scalarType(w, f, items.At(i))
		if !ok {
			return
		}
		if i == 0 {
			elem = t
		} else if t != elem {
			w.counts.dropped[dropWrongType]++ // arrays hold one type
			return
		}
	}
	dst := mb.AppendEmpty(f.key).SetEmptySlice()
	dst.EnsureCapacity(count)
	for i := 0; i < count; i++ {
		n.setScalar(w, f, elem, items.At(i), dst.AppendEmpty())
	}
}

// scalarType is the output type of one scalar value if the field accepts it (an int is
// accepted for a number; an implicit identifier takes a string, int, double or bool), with
// strings valid UTF-8 and numbers finite. Counts the reason when not.
func (n *normalizer) scalarType(w *work, f *fieldRule, v pcommon.Value) (pcommon.ValueType, bool) {
	t := v.Type()
	switch t {
	case pcommon.ValueTypeStr:
		if t != f.scalar {
			break
		}
		if !utf8.ValidString(v.Str()) {
			w.counts.dropped[dropInvalidUTF8]++
			return t, false
		}
		return t, true
	case pcommon.ValueTypeInt:
		if f.scalar == pcommon.ValueTypeInt || f.anyScalar {
			return t, true
		}
		if f.scalar == pcommon.ValueTypeDouble {
			return pcommon.ValueTypeDouble, true
		}
	case pcommon.ValueTypeDouble:
		if f.scalar == pcommon.ValueTypeDouble || f.anyScalar {
			if d := v.Double(); math.IsNaN(d) || math.IsInf(d, 0) {
				w.counts.dropped[dropInvalidNumber]++
				return t, false
			}
			return t, true
		}
	case pcommon.ValueTypeBool:
		if f.scalar == pcommon.ValueTypeBool || f.anyScalar {
			return t, true
		}
	}
	w.counts.dropped[dropWrongType]++
	return t, false
}

func (n *normalizer) setScalar(w *work, f *fieldRule, t pcommon.ValueType, v pcommon.Value, dst pcommon.Value) {
	switch t {
	case pcommon.ValueTypeStr:
		dst.SetStr(n.cleanString(w, f, v.Str()))
	case pcommon.ValueTypeInt:
		dst.SetInt(v.Int())
	case pcommon.ValueTypeDouble:
		if v.Type() == pcommon.ValueTypeInt {
			dst.SetDouble(float64(v.Int()))
		} else {
			dst.SetDouble(v.Double())
		}
	case pcommon.ValueTypeBool:
		dst.SetBool(v.Bool())
	}
}

// cleanString: enum and grammar kinds are validated (else the kind's placeholder, which is
// itself accepted: the SDK sends it); text is scrubbed with the generated rules and cut to
// the SDK's length, as the SDK does.
func (n *normalizer) cleanString(w *work, f *fieldRule, s string) string {
	switch {
	case f.kind == "text":
		clean := scrubber.scrub(s)
		if clean != s {
			w.counts.replaced[replaceSecret]++
		}
		if cut := truncateRunes(clean, n.cfg.MaxStringLength); len(cut) != len(clean) {
			w.counts.replaced[replaceTruncated]++
			clean = cut
		}
		return clean
	case s == f.placeholder:
		return s
	case f.enum != nil:
		if _, ok := f.enum[s]; ok {
			return s
		}
	case f.gram != nil:
		if f.cache.check(s, f.gram.valid) {
			return s
		}
	}
	w.counts.replaced[replaceInvalidValue]++
	return f.placeholder
}

// processMetrics builds fresh metrics holding only declared metrics, of the declared type,
// with the schema's unit and description and only declared point attributes.
func (n *normalizer) processMetrics(ctx context.Context, in pmetric.Metrics) (out pmetric.Metrics, err error) {
	defer recoverPermanent(&err)
	w := n.getWork()
	defer n.putWork(ctx, w)
	out = n.normalizeMetrics(w, in)
	if out.ResourceMetrics().Len() == 0 {
		return out, processorhelper.ErrSkipProcessingData
	}
	return out, nil
}

func (n *normalizer) normalizeMetrics(w *work, in pmetric.Metrics) pmetric.Metrics {
	out := pmetric.NewMetrics()
	inRMS := in.ResourceMetrics()
	outRMS := out.ResourceMetrics()
	outRMS.EnsureCapacity(inRMS.Len())
	for i := 0; i < inRMS.Len(); i++ {
		rm := inRMS.At(i)
		if rm.SchemaUrl() != "" {
			w.counts.dropped[dropSchemaURL]++
		}
		var outRM pmetric.ResourceMetrics
		started := false
		inSMS := rm.ScopeMetrics()
		for j := 0; j < inSMS.Len(); j++ {
			sm := inSMS.At(j)
			if sm.SchemaUrl() != "" {
				w.counts.dropped[dropSchemaURL]++
			}
			if sm.Metrics().Len() == 0 {
				continue
			}
			if !started {
				outRM = outRMS.AppendEmpty()
				n.normalizeResource(w, rm.Resource(), outRM.Resource())
				started = true
			}
			outSM := outRM.ScopeMetrics().AppendEmpty()
			n.normalizeScope(w, sm.Scope(), outSM.Scope())
			inMetrics := sm.Metrics()
			outMetrics := outSM.Metrics()
			outMetrics.EnsureCapacity(inMetrics.Len())
			for k := 0; k < inMetrics.Len(); k++ {
				n.normalizeMetric(w, inMetrics.At(k), outMetrics)
			}
			if outMetrics.Len() == 0 {
				outRM.ScopeMetrics().RemoveIf(func(s pmetric.ScopeMetrics) bool { return s.Metrics().Len() == 0 })
			}
		}
		if started && outRM.ScopeMetrics().Len() == 0 {
			outRMS.RemoveIf(func(r pmetric.ResourceMetrics) bool { return r.ScopeMetrics().Len() == 0 })
		}
	}
	return out
}

func (n *normalizer) normalizeMetric(w *work, in pmetric.Metric, outMetrics pmetric.MetricSlice) {
	rule := n.metrics[in.Name()]
	if rule == nil {
		w.counts.dropped[dropUndeclaredMetric]++
		return
	}
	if rule.name != in.Name() { // an old name (renamed_metrics)
		w.counts.replaced[replaceRenamedKey]++
	}
	if a := in.Metadata().Len(); a > 0 {
		w.counts.dropped[dropMetricMetadata] += int64(a)
	}
	if in.Unit() != rule.unit || in.Description() != rule.description {
		w.counts.replaced[replaceMetricText]++
	}
	switch {
	case rule.histogram && in.Type() == pmetric.MetricTypeHistogram:
		h := in.Histogram()
		t := h.AggregationTemporality()
		if t != pmetric.AggregationTemporalityDelta && t != pmetric.AggregationTemporalityCumulative {
			w.counts.dropped[dropWrongMetricType]++
			return
		}
		out := n.newMetric(rule, outMetrics)
		oh := out.SetEmptyHistogram()
		oh.SetAggregationTemporality(t)
		n.histogramPoints(w, rule, h.DataPoints(), oh.DataPoints())
		if oh.DataPoints().Len() == 0 {
			outMetrics.RemoveIf(func(m pmetric.Metric) bool {
				return m.Type() == pmetric.MetricTypeHistogram && m.Histogram().DataPoints().Len() == 0
			})
		}
	case !rule.histogram && in.Type() == pmetric.MetricTypeSum:
		s := in.Sum()
		t := s.AggregationTemporality()
		if !s.IsMonotonic() || (t != pmetric.AggregationTemporalityDelta && t != pmetric.AggregationTemporalityCumulative) {
			w.counts.dropped[dropWrongMetricType]++
			return
		}
		out := n.newMetric(rule, outMetrics)
		os := out.SetEmptySum()
		os.SetIsMonotonic(true)
		os.SetAggregationTemporality(t)
		n.sumPoints(w, rule, s.DataPoints(), os.DataPoints())
		if os.DataPoints().Len() == 0 {
			outMetrics.RemoveIf(func(m pmetric.Metric) bool {
				return m.Type() == pmetric.MetricTypeSum && m.Sum().DataPoints().Len() == 0
			})
		}
	default:
		w.counts.dropped[dropWrongMetricType]++
	}
}

func (n *normalizer) newMetric(rule *metricRule, outMetrics pmetric.MetricSlice) pmetric.Metric {
	out := outMetrics.AppendEmpty()
	out.SetName(rule.name)
	out.SetUnit(rule.unit)
	out.SetDescription(rule.description)
	return out
}

// pointFlagsKept: only "no recorded value".
const pointFlagsKept = pmetric.DataPointFlags(1)

func (n *normalizer) sumPoints(w *work, rule *metricRule, in pmetric.NumberDataPointSlice, out pmetric.NumberDataPointSlice) {
	out.EnsureCapacity(in.Len())
	for i := 0; i < in.Len(); i++ {
		p := in.At(i)
		if e := p.Exemplars().Len(); e > 0 {
			w.counts.dropped[dropExemplar] += int64(e)
		}
		var op pmetric.NumberDataPoint
		switch p.ValueType() {
		case pmetric.NumberDataPointValueTypeInt:
			op = out.AppendEmpty()
			op.SetIntValue(p.IntValue())
		case pmetric.NumberDataPointValueTypeDouble:
			op = out.AppendEmpty()
			op.SetDoubleValue(p.DoubleValue())
		default:
			w.counts.dropped[dropInvalidPoint]++
			continue
		}
		op.SetStartTimestamp(p.StartTimestamp())
		op.SetTimestamp(p.Timestamp())
		op.SetFlags(p.Flags() & pointFlagsKept)
		n.filterAttributes(w, &rule.points, p.Attributes(), op.Attributes())
	}
}

func (n *normalizer) histogramPoints(w *work, rule *metricRule, in pmetric.HistogramDataPointSlice, out pmetric.HistogramDataPointSlice) {
	out.EnsureCapacity(in.Len())
	for i := 0; i < in.Len(); i++ {
		p := in.At(i)
		if e := p.Exemplars().Len(); e > 0 {
			w.counts.dropped[dropExemplar] += int64(e)
		}
		bounds, buckets := p.ExplicitBounds(), p.BucketCounts()
		if bounds.Len() > n.cfg.MaxHistogramBuckets || (buckets.Len() != 0 && buckets.Len() != bounds.Len()+1) {
			w.counts.dropped[dropInvalidPoint]++
			continue
		}
		op := out.AppendEmpty()
		op.SetStartTimestamp(p.StartTimestamp())
		op.SetTimestamp(p.Timestamp())
		op.SetFlags(p.Flags() & pointFlagsKept)
		op.SetCount(p.Count())
		if p.HasSum() {
			op.SetSum(p.Sum())
		}
		if p.HasMin() {
			op.SetMin(p.Min())
		}
		if p.HasMax() {
			op.SetMax(p.Max())
		}
		bounds.CopyTo(op.ExplicitBounds())
		buckets.CopyTo(op.BucketCounts())
		n.filterAttributes(w, &rule.points, p.Attributes(), op.Attributes())
	}
}
