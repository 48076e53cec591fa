package normalizer

import (
	"math"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The shapes of the data generate.py writes into rules_gen.go from the SDK's rule data
// file (otel_cli_telemetry/privacy/rules.json). The logic that applies them is here.

type grammarSpec struct {
	Pattern   string
	MaxLength int
}

type ruleSpec struct {
	ID          string
	Pattern     string
	Keywords    []string
	Placeholder string
	Check       string
}

type harmlessSpec struct {
	ID      string
	Pattern string
}

type entropySpec struct {
	MinLength      int
	Alphabet       string
	MinBitsPerChar float64
	MinClasses     int
	Placeholder    string
	Harmless       []harmlessSpec
}

// grammar is a compiled names/kind grammar: the whole value must match, within MaxLength.
type grammar struct {
	re        *regexp.Regexp
	maxLength int
}

func mustGrammar(spec grammarSpec) grammar {
	return grammar{re: regexp.MustCompile(`^(?:` + spec.Pattern + `)$`), maxLength: spec.MaxLength}
}

func (g grammar) valid(s string) bool {
	return len(s) > 0 && utf8.RuneCountInString(s) <= g.maxLength && g.re.MatchString(s)
}

var (
	genNames = mustGrammar(genNamesSpec)
	genKinds = compileKinds()
	scrubber = newRuleSet(genRuleSpecs, genEntropySpec)
)

func compileKinds() map[string]grammar {
	out := make(map[string]grammar, len(genKindSpecs))
	for name, spec := range genKindSpecs {
		out[name] = mustGrammar(spec)
	}
	return out
}

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
	keywords    []int // indexes into ruleSet.keywords; empty: always tried
}

// ruleSet applies the generated rules to free text, as the SDK's scrub() does.
type ruleSet struct {
	rules        []rule
	keywords     []string
	byFirstByte  [256][]int // keyword indexes by their first (lowercase) byte
	placeholders map[string]bool
	entropy      entropySpec
	alphabet     [256]bool
	harmless     []*regexp.Regexp
}

func newRuleSet(specs []ruleSpec, entropy entropySpec) *ruleSet {
	rs := &ruleSet{placeholders: map[string]bool{redacted: true, "<user>": true, "<host>": true}, entropy: entropy}
	index := map[string]int{}
	for _, spec := range specs {
		re := regexp.MustCompile(spec.Pattern)
		r := rule{id: spec.ID, re: re, groups: re.NumSubexp(), placeholder: spec.Placeholder, check: spec.Check}
		for _, kw := range spec.Keywords {
			kw = strings.ToLower(kw)
			i, ok := index[kw]
			if !ok {
				i = len(rs.keywords)
				index[kw] = i
				rs.keywords = append(rs.keywords, kw)
				rs.byFirstByte[kw[0]] = append(rs.byFirstByte[kw[0]], i)
			}
			r.keywords = append(r.keywords, i)
		}
		rs.rules = append(rs.rules, r)
		rs.placeholders[spec.Placeholder] = true
	}
	if entropy.Placeholder != "" {
		rs.placeholders[entropy.Placeholder] = true
		class := regexp.MustCompile(`^[` + entropy.Alphabet + `]$`)
		for b := 0; b < utf8.RuneSelf; b++ {
			rs.alphabet[b] = class.MatchString(string(rune(b)))
		}
		for _, h := range entropy.Harmless {
			rs.harmless = append(rs.harmless, regexp.MustCompile(`^(?:`+h.Pattern+`)$`))
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
	found := make([]bool, len(rs.keywords))
	for round := 0; round < maxScrubRounds; round++ {
		next := rs.oneRound(text, found)
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

func (rs *ruleSet) oneRound(text string, found []bool) string {
	rs.findKeywords(text, found)
	for i := range rs.rules {
		r := &rs.rules[i]
		if len(r.keywords) > 0 {
			hit := false
			for _, k := range r.keywords {
				if found[k] {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
		}
		if replaced := rs.apply(r, text); replaced != text {
			text = replaced
			rs.findKeywords(text, found)
		}
	}
	return rs.replaceTokens(text)
}

// findKeywords marks which keywords occur in text, ASCII case-insensitively; linear in
// len(text) times the keywords sharing a first byte.
func (rs *ruleSet) findKeywords(text string, found []bool) {
	clear(found)
	for i := 0; i < len(text); i++ {
		for _, k := range rs.byFirstByte[lowerASCII(text[i])] {
			if !found[k] && hasPrefixFold(text[i:], rs.keywords[k]) {
				found[k] = true
			}
		}
	}
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

func hasPrefixFold(s, lowerPrefix string) bool {
	if len(s) < len(lowerPrefix) {
		return false
	}
	for i := 0; i < len(lowerPrefix); i++ {
		if lowerASCII(s[i]) != lowerPrefix[i] {
			return false
		}
	}
	return true
}

// apply replaces r's matches by the shared convention: group 1 is a prefix kept verbatim,
// group 2 a suffix kept verbatim, the rest becomes the placeholder. A part that already is
// a placeholder, or fails the rule's check (Luhn, IBAN), is left as it is.
func (rs *ruleSet) apply(r *rule, text string) string {
	matches := r.re.FindAllStringSubmatchIndex(text, -1)
	if matches == nil {
		return text
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		start, end := m[0], m[1]
		if r.groups >= 1 && m[3] >= 0 {
			start = m[3]
		}
		if r.groups >= 2 && m[4] >= 0 {
			end = m[4]
		}
		part := text[start:end]
		if rs.isScrubbed(part) || !passesCheck(r.check, part) {
			continue
		}
		b.WriteString(text[last:start])
		b.WriteString(r.placeholder)
		last = end
	}
	if last == 0 {
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

// luhn: the digits of s (other characters ignored) pass the Luhn checksum.
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
	return n > 1 && sum%10 == 0
}

// ibanValid: ISO 13616 mod-97 check over the alphanumerics of s (spaces ignored).
func ibanValid(s string) bool {
	var chars []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z':
			chars = append(chars, c)
		case c >= 'a' && c <= 'z':
			chars = append(chars, c-'a'+'A')
		}
	}
	if len(chars) < 5 {
		return false
	}
	rearranged := append(append([]byte{}, chars[4:]...), chars[:4]...)
	rem := 0
	for _, c := range rearranged {
		if c >= 'A' {
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		} else {
			rem = (rem*10 + int(c-'0')) % 97
		}
	}
	return rem == 1
}

// replaceTokens is the entropy catch-all: a run of alphabet characters at least MinLength
// long, with MinClasses character classes (lower, upper, digit, other) and a Shannon
// entropy of MinBitsPerChar bits per character, becomes the placeholder unless a
// harmless shape (UUID, hex digest, version) matches the whole run.
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
		if j-i >= e.MinLength && rs.tokenLike(text[i:j]) {
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

func (rs *ruleSet) tokenLike(run string) bool {
	var counts [256]int
	classes := [4]bool{}
	for i := 0; i < len(run); i++ {
		c := run[i]
		counts[c]++
		switch {
		case 'a' <= c && c <= 'z':
			classes[0] = true
		case 'A' <= c && c <= 'Z':
			classes[1] = true
		case '0' <= c && c <= '9':
			classes[2] = true
		default:
			classes[3] = true
		}
	}
	n := 0
	for _, c := range classes {
		if c {
			n++
		}
	}
	if n < rs.entropy.MinClasses {
		return false
	}
	bits := 0.0
	total := float64(len(run))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / total
			bits -= p * math.Log2(p)
		}
	}
	if bits < rs.entropy.MinBitsPerChar {
		return false
	}
	for _, h := range rs.harmless {
		if h.MatchString(run) {
			return false
		}
	}
	return true
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
