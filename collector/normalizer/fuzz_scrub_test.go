package normalizer

import (
	"testing"
	"unicode/utf8"
)

// FuzzScrubText: for any text, the scrubber settles (scrub is idempotent, as the shared
// contract says), keeps valid UTF-8 valid and stays within the scan length.
func FuzzScrubText(f *testing.F) {
	for _, s := range []string{
		"password=hunter2", "key AKIAIOSFODNN7EXAMPLE used", "https://u:p@example.com/x",
		"card 4111 1111 1111 1111", "x7Gq2LpV9sKd4TzW1mNc8RbY", "deploy to eu-west-1", "<redacted>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		once := scrubber.scrub(text)
		if utf8.ValidString(text) && !utf8.ValidString(once) {
			t.Fatalf("scrub(%q) = %q is not valid UTF-8", text, once)
		}
		if utf8.RuneCountInString(once) > maxScrubLength {
			t.Fatalf("scrub output of %d characters", utf8.RuneCountInString(once))
		}
		if twice := scrubber.scrub(once); twice != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", text, once, twice)
		}
	})
}
