package normalizer

import (
	"encoding/json"
	"os"
	"testing"
)

// The SDK's scrub() and the collector's give the same output for every vector (inputs and
// the SDK's outputs, written by generate.py from the same rule data file).
func TestScrubMatchesSDK(t *testing.T) {
	raw, err := os.ReadFile("testdata/scrub_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		RulesDigest string `json:"rules_digest"`
		Vectors     []struct {
			Input  string `json:"input"`
			Output string `json:"output"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.RulesDigest != genRulesDigest {
		t.Fatalf("vectors are for rules %s, rules_gen.go for %s: run generate.py", doc.RulesDigest, genRulesDigest)
	}
	if len(doc.Vectors) < 50 {
		t.Fatalf("only %d vectors", len(doc.Vectors))
	}
	changed := 0
	for _, v := range doc.Vectors {
		if got := scrubber.scrub(v.Input); got != v.Output {
			t.Errorf("scrub(%q)\n  go:  %q\n  sdk: %q", v.Input, got, v.Output)
		}
		if v.Input != v.Output {
			changed++
		}
	}
	if changed < 10 {
		t.Fatalf("only %d vectors exercise a rule", changed)
	}
}

func TestScrubIsIdempotent(t *testing.T) {
	for _, s := range []string{"key AKIAIOSFODNN7EXAMPLE", "password=hunter2 and token: x", "https://u:p@example.com"} {
		once := scrubber.scrub(s)
		if twice := scrubber.scrub(once); twice != once {
			t.Errorf("scrub(scrub(%q)) = %q, scrub = %q", s, twice, once)
		}
	}
}

func TestLuhnAndIBAN(t *testing.T) {
	if !luhn("4111 1111 1111 1111") || luhn("4111 1111 1111 1112") {
		t.Fatal("luhn")
	}
	if !ibanValid("GB82 WEST 1234 5698 7654 32") || ibanValid("GB82 WEST 1234 5698 7654 33") {
		t.Fatal("iban")
	}
}
