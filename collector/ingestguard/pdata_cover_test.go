package ingestguard

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	caseLine   = regexp.MustCompile(`^\s*case (\d+):`)
	decodeLine = regexp.MustCompile(`orig\.(\w+)(\[[^\]]*\])?\.UnmarshalProto\(buf\[startPos:pos\]\)`)
)

// TestTableCoversWhatPdataDecodes reads the receiver's decoder (pdata's generated
// UnmarshalProto of every message the walk knows) and checks that every field it decodes
// as an embedded message is one the walk descends into. A field the walk skipped but pdata
// decoded would let a nested value through unchecked (the deprecated field 1000 did).
func TestTableCoversWhatPdataDecodes(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.opentelemetry.io/collector/pdata").Output()
	if err != nil {
		t.Fatalf("locating pdata's sources: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "internal")
	checked := 0
	for typ := msgType(1); typ < msgCount; typ++ {
		src, err := os.ReadFile(filepath.Join(dir, "generated_proto_"+msgNames[typ]+".go"))
		if err != nil {
			t.Errorf("%s: %v", msgNames[typ], err)
			continue
		}
		body := string(src)
		start := strings.Index(body, ") UnmarshalProto(buf []byte) error {")
		if start < 0 {
			t.Errorf("%s: no UnmarshalProto", msgNames[typ])
			continue
		}
		field := -1
		for _, line := range strings.Split(body[start:], "\n") {
			if m := caseLine.FindStringSubmatch(line); m != nil {
				field, _ = strconv.Atoi(m[1])
			}
			m := decodeLine.FindStringSubmatch(line)
			if m == nil || field < 0 {
				continue
			}
			if strings.HasSuffix(m[1], "Id") && m[2] == "" {
				continue // TraceId, SpanId, ParentSpanId: fixed-size ids, no nesting
			}
			child := msgNone
			if field <= maxMessageField {
				child = messageFields[typ][field]
			} else {
				child = deprecatedField(typ, uint64(field))
			}
			if child == msgNone {
				t.Errorf("pdata decodes field %d of %s (%s) as a message; the walk skips it", field, msgNames[typ], m[1])
			}
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("only %d message fields found in pdata's sources: the parser is out of date", checked)
	}
}

func TestDeprecatedScopeListsAreWalked(t *testing.T) {
	// ResourceSpans.field 1000 (instrumentation_library_spans) holding the deep attack's span.
	deep := deepArrayRequest(100)
	// deepArrayRequest is ld(1, ld(2, ld(2, span))): re-wrap its ScopeSpans under field 1000.
	var scopeSpans []byte
	{
		rs, n := uvarint(deep[1:])
		resourceSpans := deep[1+n : 1+n+int(rs)]
		_, m := uvarint(resourceSpans[1:])
		scopeSpans = resourceSpans[1+m:]
	}
	request := ld(1, ld(1000, scopeSpans))
	if err := checkProto(request, msgExportTraceServiceRequest, testLimits); !errors.Is(err, errTooDeep) {
		t.Fatalf("a deep value under the deprecated scope list: want too_deep, got %v", err)
	}
}
