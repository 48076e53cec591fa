package normalizer

import (
	"math"
	mathbits "math/bits"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// The shapes of the data generate.py writes into rules_gen.go from the SDK's rule data
// file (otel_cli_telemetry/privacy/rules.json, whose description fields define the
// semantics). The logic that applies them is here and mirrors otel_cli_telemetry/privacy/
// rules.py.

type grammarSpec struct {
	Pattern   string
	MaxLength int
}

type kindSpec struct {
	Pattern     string // empty for kinds without a grammar (enum, text, numbers)
	MaxLength   int
	Placeholder string // what a value failing the kind becomes; empty: it is dropped
}

type ruleSpec struct {
	ID          string
	Pattern     string
	Keywords    []string
	MinCounts   []int // per keyword: it counts as present only with this many occurrences
	Also        []string
	MinLength   int
	MinDigits   int
	Placeholder string
	Check       string
}

type harmlessSpec struct {
	ID      string
	Pattern string
}

type entropySpec struct {
	MinLength          int
	MinLengthShort     int // for names and identifier values
	Alphabet           string
	MinAlnum           int
	MinClasses         int
	MinBitsPerChar     float64
	MinTransitionRatio float64
	Placeholder        string
	Harmless           []harmlessSpec
}

// grammar is a compiled names/kind grammar: the whole value must match, within maxLength
// characters; with noFinding, no rule or entropy finding may be in it either.
type grammar struct {
	re        *regexp.Regexp
	maxLength int
	noFinding bool
}

func mustGrammar(pattern string, maxLength int, noFinding bool) grammar {
	return grammar{re: regexp.MustCompile(`^(?:` + pattern + `)$`), maxLength: maxLength, noFinding: noFinding}
}

func (g grammar) valid(s string) bool {
	if len(s) == 0 || utf8.RuneCountInString(s) > g.maxLength || !g.re.MatchString(s) {
		return false
	}
	return !g.noFinding || (scrubber.scrub(s) == s && !scrubber.hasToken(s, scrubber.entropy.MinLengthShort))
}

var (
	scrubber = newRuleSet(genRuleSpecs, genEntropySpec, genKindSpecs)
	genNames = mustGrammar(genNamesSpec.Pattern, genNamesSpec.MaxLength, true)
	genKinds = compileKinds()
)

// Kinds whose grammar also forbids any rule or entropy finding (rules.json descriptions).
var kindsWithoutFindings = map[string]bool{"identifier": true, "version": true}

func compileKinds() map[string]grammar {
	out := map[string]grammar{}
	for name, spec := range genKindSpecs {
		if spec.Pattern != "" {
			out[name] = mustGrammar(spec.Pattern, spec.MaxLength, kindsWithoutFindings[name])
		}
	}
	return out
}

// kindPlaceholder is what a string failing kind becomes ("" for none).
func kindPlaceholder(kind string) string { return genKindSpecs[kind].Placeholder }

// Scrubbing limits, as in the SDK's scrubber.
const (
	maxScrubLength  = 4096 // characters scanned; longer values are truncated first
	truncateBackoff = 256  // how far back a cut looks for whitespace
	maxScrubRounds  = 4    // passes until the text settles; else the value is redacted
	redacted        = "<redacted>"
)

type rule struct {
	id          string
	re          *regexp.Regexp
	groups      int
	placeholder string
	check       string
	minLength   int
	minDigits   int
	keywords    []int // indexes into ruleSet.keywords; empty: always tried
	minCounts   []int
	also        []string
}

// ruleSet applies the generated rules to free text, as the SDK's scrub() does.
type ruleSet struct {
	rules    []rule
	keywords []string
	// Keyword indexes by their first byte (one-byte keywords) and first two bytes (longer
	// ones), so the scan looks only at keywords that can start at each position.
	singles     [256][]int
	startsWord  [256]bool
	bigramIndex [65536]uint16 // 1 + index into bigramLists, 0 for none
	bigramLists [][]int
	// rulesByKeyword lists, per keyword, the rules that name it; keywordless marks (as a
	// bitset) the rules tried on every value.
	rulesByKeyword [][]int
	keywordless    []uint64
	scratchPool    sync.Pool
	placeholders   map[string]bool
	entropy        entropySpec
	alphabet       [256]bool
	harmless       []*regexp.Regexp
}

func newRuleSet(specs []ruleSpec, entropy entropySpec, kinds map[string]kindSpec) *ruleSet {
	rs := &ruleSet{placeholders: map[string]bool{redacted: true, "<user>": true, "<host>": true}, entropy: entropy}
	index := map[string]int{}
	for _, spec := range specs {
		re := regexp.MustCompile(spec.Pattern)
		r := rule{id: spec.ID, re: re, groups: re.NumSubexp(), placeholder: spec.Placeholder, check: spec.Check,
			minLength: spec.MinLength, minDigits: spec.MinDigits, also: spec.Also}
		for i, kw := range spec.Keywords {
			kw = strings.ToLower(kw)
			k, ok := index[kw]
			if !ok {
				k = len(rs.keywords)
				index[kw] = k
				rs.keywords = append(rs.keywords, kw)
				rs.indexKeyword(kw, k)
			}
			r.keywords = append(r.keywords, k)
			count := 1
			if i < len(spec.MinCounts) {
				count = spec.MinCounts[i]
			}
			r.minCounts = append(r.minCounts, count)
		}
		rs.rules = append(rs.rules, r)
		rs.placeholders[spec.Placeholder] = true
	}
	for _, k := range kinds {
		if k.Placeholder != "" {
			rs.placeholders[k.Placeholder] = true
		}
	}
	rs.rulesByKeyword = make([][]int, len(rs.keywords))
	rs.keywordless = make([]uint64, (len(rs.rules)+63)/64)
	for i, r := range rs.rules {
		if len(r.keywords) == 0 {
			rs.keywordless[i/64] |= 1 << (i % 64)
		}
		for _, k := range r.keywords {
			rs.rulesByKeyword[k] = append(rs.rulesByKeyword[k], i)
		}
	}
	rs.scratchPool.New = rs.newScratch
	if entropy.Placeholder != "" {
		rs.placeholders[entropy.Placeholder] = true
		class := regexp.MustCompile(`^[` + entropy.Alphabet + `]$`)
		for b := 0; b < utf8.RuneSelf; b++ {
			rs.alphabet[b] = class.MatchString(string(rune(b)))
		}
		for _, h := range entropy.Harmless {
			rs.harmless = append(rs.harmless, regexp.MustCompile(h.Pattern))
		}
	}
	return rs
}

// scrub returns text with every rule's matches replaced, never raising; a value that does
// not settle within maxScrubRounds becomes "<redacted>" (fail closed).
func (rs *ruleSet) scrub(text string) string {
	if utf8.RuneCountInString(text) > maxScrubLength {
		text = truncateText(text)
	}
	sc := rs.scratchPool.Get().(*scrubScratch)
	defer rs.scratchPool.Put(sc)
	for round := 0; round < maxScrubRounds; round++ {
		next := rs.oneRound(text, sc)
		if utf8.RuneCountInString(next) > maxScrubLength {
			next = truncateText(next)
		}
		if next == text {
			return text
		}
		text = next
	}
	return redacted
}

// scrubScratch is one scrub call's working memory (pooled).
type scrubScratch struct {
	counts  []int    // per keyword: occurrences found
	touched []int    // keywords with counts > 0
	marks   []uint64 // per rule: a keyword of it occurs (or it has none)
}

func (rs *ruleSet) newScratch() any {
	return &scrubScratch{counts: make([]int, len(rs.keywords)), marks: make([]uint64, (len(rs.rules)+63)/64)}
}

// oneRound applies, in file order, every rule whose hints the text passes (decided once,
// on the round's input, as rules.py's candidate_rules does), then the entropy catch-all.
// Only rules without keywords and rules with a keyword that occurs are looked at.
func (rs *ruleSet) oneRound(text string, sc *scrubScratch) string {
	lowered := lowerText(text)
	rs.countKeywords(lowered, sc)
	marks := sc.marks
	copy(marks, rs.keywordless)
	for _, k := range sc.touched {
		for _, i := range rs.rulesByKeyword[k] {
			marks[i/64] |= 1 << (i % 64)
		}
	}
	length := utf8.RuneCountInString(text)
	digits := -1
	var buf [32]int
	candidates := buf[:0]
	for word, bits := range marks {
		for bits != 0 {
			i := word*64 + mathbits.TrailingZeros64(bits)
			bits &= bits - 1
			r := &rs.rules[i]
			if r.minLength > length {
				continue
			}
			if r.minDigits > 0 {
				if digits < 0 {
					digits = countDigits(text)
				}
				if digits < r.minDigits {
					continue
				}
			}
			if len(r.keywords) > 0 && !r.keywordPresent(lowered, rs.keywords, sc.counts) {
				continue
			}
			if len(r.also) > 0 && !containsAny(lowered, r.also) {
				continue
			}
			candidates = append(candidates, i)
		}
	}
	for _, i := range candidates {
		text = rs.apply(&rs.rules[i], text)
	}
	return rs.replaceTokens(text)
}

func (r *rule) keywordPresent(lowered string, keywords []string, counts []int) bool {
	for j, k := range r.keywords {
		need := r.minCounts[j]
		if need <= 1 {
			if counts[k] > 0 {
				return true
			}
		} else if counts[k] >= need && strings.Count(lowered, keywords[k]) >= need {
			return true // the scan counts overlapping hits; Python's str.count does not
		}
	}
	return false
}

func (rs *ruleSet) indexKeyword(kw string, k int) {
	rs.startsWord[kw[0]] = true
	if len(kw) == 1 {
		rs.singles[kw[0]] = append(rs.singles[kw[0]], k)
		return
	}
	bigram := uint16(kw[0])<<8 | uint16(kw[1])
	if rs.bigramIndex[bigram] == 0 {
		rs.bigramLists = append(rs.bigramLists, nil)
		rs.bigramIndex[bigram] = uint16(len(rs.bigramLists))
	}
	list := &rs.bigramLists[rs.bigramIndex[bigram]-1]
	*list = append(*list, k)
}

// countKeywords counts, for each keyword, its (overlapping) occurrences in lowered; linear
// in len(lowered) times the keywords sharing a first two bytes.
func (rs *ruleSet) countKeywords(lowered string, sc *scrubScratch) {
	for _, k := range sc.touched {
		sc.counts[k] = 0
	}
	sc.touched = sc.touched[:0]
	hit := func(k int) {
		if sc.counts[k] == 0 {
			sc.touched = append(sc.touched, k)
		}
		sc.counts[k]++
	}
	for i := 0; i < len(lowered); i++ {
		c := lowered[i]
		if !rs.startsWord[c] {
			continue
		}
		for _, k := range rs.singles[c] {
			hit(k)
		}
		if i+1 < len(lowered) {
			if list := rs.bigramIndex[uint16(c)<<8|uint16(lowered[i+1])]; list != 0 {
				for _, k := range rs.bigramLists[list-1] {
					if strings.HasPrefix(lowered[i:], rs.keywords[k]) {
						hit(k)
					}
				}
			}
		}
	}
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			n++
		}
	}
	return n
}

// lowerText is Python's str.lower for keyword search: ASCII lowered in place, other
// characters by Go's Unicode mapping (keywords are ASCII, so only containment matters).
func lowerText(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
		if 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// apply replaces r's matches as rules.py's Rule.replace does: the whole match becomes group
// 1 (a prefix kept verbatim, if any) + the placeholder + group 2 (a suffix, if any). A part
// that already is a placeholder, or fails the rule's check (Luhn, IBAN), is left as it is.
func (rs *ruleSet) apply(r *rule, text string) string {
	matches := r.re.FindAllStringSubmatchIndex(text, -1)
	if matches == nil {
		return text
	}
	var b strings.Builder
	last := 0
	changed := false
	for _, m := range matches {
		start, end := m[0], m[1]
		prefix, suffix := "", ""
		if r.groups >= 1 && m[2] >= 0 {
			start = m[3]
			prefix = text[m[2]:m[3]]
		}
		if r.groups >= 2 && m[4] >= 0 {
			end = m[4]
			suffix = text[m[4]:m[5]]
		}
		end = max(start, end)
		part := text[start:end]
		if rs.isScrubbed(part) || !passesCheck(r.check, part) {
			continue
		}
		b.WriteString(text[last:m[0]])
		b.WriteString(prefix)
		b.WriteString(r.placeholder)
		b.WriteString(suffix)
		last = m[1]
		changed = true
	}
	if !changed {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// isScrubbed: the text is a placeholder, maybe quoted or followed by punctuation only.
func (rs *ruleSet) isScrubbed(text string) bool {
	if rs.placeholders[text] {
		return true
	}
	head := strings.TrimLeft(text, `"'`)
	i := strings.IndexByte(head, '>')
	if i < 0 || !rs.placeholders[head[:i+1]] {
		return false
	}
	for _, c := range head[i+1:] {
		if unicode.IsLetter(c) || unicode.IsNumber(c) { // Python's str.isalnum
			return false
		}
	}
	return true
}

func passesCheck(check, s string) bool {
	switch check {
	case "":
		return true
	case "luhn":
		return luhn(s)
	case "iban":
		return ibanValid(s)
	}
	return true // an unknown check never stops a redaction (fail closed)
}

// luhn: the ASCII digits of s, 13 to 19 of them, pass the Luhn checksum.
func luhn(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n >= 13 && n <= 19 && sum%10 == 0
}

// ibanValid: s without spaces is 15 to 34 ASCII letters and digits and passes ISO 7064
// mod 97-10 (first four characters moved to the end, A=10 .. Z=35).
func ibanValid(s string) bool {
	chars := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z':
			chars = append(chars, c)
		case c >= 'a' && c <= 'z':
			chars = append(chars, c-'a'+'A')
		default:
			return false
		}
	}
	if len(chars) < 15 || len(chars) > 34 {
		return false
	}
	rem := 0
	for _, c := range append(chars[4:len(chars):len(chars)], chars[:4]...) {
		if c >= 'A' {
			rem = (rem*100 + int(c-'A') + 10) % 97
		} else {
			rem = (rem*10 + int(c-'0')) % 97
		}
	}
	return rem == 1
}

// replaceTokens is the entropy catch-all (rules.json entropy.description): every maximal
// run of alphabet characters at least MinLength long that is a token, or has a
// '/'-separated part that is one, becomes the placeholder.
func (rs *ruleSet) replaceTokens(text string) string {
	e := &rs.entropy
	if e.Placeholder == "" || len(text) < e.MinLength {
		return text
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); {
		if !rs.alphabet[text[i]] {
			i++
			continue
		}
		j := i
		for j < len(text) && rs.alphabet[text[j]] {
			j++
		}
		if j-i >= e.MinLength && rs.runIsToken(text[i:j]) {
			b.WriteString(text[last:i])
			b.WriteString(e.Placeholder)
			last = j
		}
		i = j
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// hasToken: a run of text at least minLength characters long is a token (rules.py's
// has_token; names and identifier values use the shorter minimum).
func (rs *ruleSet) hasToken(text string, minLength int) bool {
	if rs.entropy.Placeholder == "" || len(text) < minLength {
		return false
	}
	for i := 0; i < len(text); {
		if !rs.alphabet[text[i]] {
			i++
			continue
		}
		j := i
		for j < len(text) && rs.alphabet[text[j]] {
			j++
		}
		if j-i >= minLength && rs.runIsToken(text[i:j]) {
			return true
		}
		i = j
	}
	return false
}

func (rs *ruleSet) runIsToken(run string) bool {
	if rs.looksRandom(run) {
		return true
	}
	if strings.IndexByte(run, '/') >= 0 {
		for part := range strings.SplitSeq(run, "/") {
			if rs.looksRandom(part) {
				return true
			}
		}
	}
	return false
}

func charClass(c byte) int {
	switch {
	case 'a' <= c && c <= 'z':
		return 1
	case 'A' <= c && c <= 'Z':
		return 2
	case '0' <= c && c <= '9':
		return 3
	}
	return 0
}

// looksRandom: enough letters and digits, of enough classes, with enough class changes
// between adjacent letters/digits (upper followed by lower does not count), enough Shannon
// entropy, and no harmless shape.
func (rs *ruleSet) looksRandom(candidate string) bool {
	e := &rs.entropy
	var classes [4]bool
	alnum, transitions, previous := 0, 0, 0
	for i := 0; i < len(candidate); i++ {
		kind := charClass(candidate[i])
		if kind != 0 {
			alnum++
			classes[kind] = true
			if previous != 0 && kind != previous && !(previous == 2 && kind == 1) {
				transitions++
			}
		}
		previous = kind
	}
	n := 0
	for _, c := range classes[1:] {
		if c {
			n++
		}
	}
	if alnum < e.MinAlnum || n < e.MinClasses {
		return false
	}
	if float64(transitions) < e.MinTransitionRatio*float64(alnum) {
		return false
	}
	if shannon(candidate) < e.MinBitsPerChar {
		return false
	}
	for _, h := range rs.harmless {
		if h.MatchString(candidate) {
			return false
		}
	}
	return true
}

// shannon is -sum(p*log2 p) over the distinct characters of s, summed in order of first
// appearance, as rules.py does (so both ends agree but for the last bit at the threshold).
func shannon(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	size := float64(len(s))
	var seen [256]bool
	total := 0.0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !seen[c] {
			seen[c] = true
			p := float64(counts[c]) / size
			total += p * math.Log2(p)
		}
	}
	return -total
}

// truncateText cuts text to maxScrubLength characters; when the cut falls inside a word,
// back to the last whitespace within truncateBackoff characters (the SDK's _truncate).
func truncateText(text string) string {
	runes := []rune(text)
	if len(runes) <= maxScrubLength {
		return text
	}
	head := runes[:maxScrubLength]
	if !isPySpace(runes[maxScrubLength]) {
		for i := maxScrubLength - 1; i > maxScrubLength-1-truncateBackoff; i-- {
			if isPySpace(head[i]) {
				return string(head[:i+1])
			}
		}
	}
	return string(head)
}

// truncateRunes cuts s to at most n characters (Python's s[:n]).
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}

// isPySpace is Python's str.isspace for one character.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (0x1c <= r && r <= 0x1f)
}
