package ingestguard

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/extension/extensiontest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

func testGuard(t *testing.T) *guard {
	t.Helper()
	cfg := createDefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := newGuard(extensiontest.NewNopSettings(componentType), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// handler returns the guard-wrapped handler and a pointer to the body the receiver got.
func handler(t *testing.T, limit int64) (http.Handler, *[]byte) {
	t.Helper()
	wrap, err := testGuard(t).GetHTTPHandler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	received := new([]byte)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		*received = append([]byte{}, body...)
		w.WriteHeader(http.StatusOK)
	})
	h, err := wrap(context.Background(), inner)
	if err != nil {
		t.Fatal(err)
	}
	// as confighttp does: the size limit outside the middleware
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h.ServeHTTP(w, r)
	})
	return limited, received
}

func post(h http.Handler, path, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHTTPPassesCleanRequestsUnchanged(t *testing.T) {
	h, received := handler(t, 4<<20)
	body := marshalTraces(t, cliTraces(100))
	if rec := post(h, "/v1/traces", "application/x-protobuf", body); rec.Code != http.StatusOK {
		t.Fatalf("clean request: %d %s", rec.Code, rec.Body)
	}
	if !bytes.Equal(*received, body) {
		t.Fatal("the receiver did not get the body as sent")
	}
}

func TestHTTPRefusesBeforeTheReceiver(t *testing.T) {
	h, received := handler(t, 4<<20)
	for name, c := range map[string]struct {
		contentType string
		body        []byte
		want        string
	}{
		"deep protobuf":  {"application/x-protobuf", deepArrayRequest(10_000), "too_deep"},
		"deep json":      {"application/json; charset=utf-8", []byte(deepJSON(10_000)), "too_deep"},
		"empty messages": {"application/x-protobuf", ld(1, ld(2, bytes.Repeat([]byte{2<<3 | 2, 0}, 300_000))), "too_many_messages"},
		"malformed":      {"application/x-protobuf", []byte{1<<3 | 3}, "malformed"},
	} {
		*received = nil
		rec := post(h, "/v1/traces", c.contentType, c.body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("%s: got %d %q", name, rec.Code, rec.Body)
		}
		if *received != nil {
			t.Errorf("%s: reached the receiver", name)
		}
	}
}

func TestHTTPOversizedIs413(t *testing.T) {
	h, received := handler(t, 1024)
	rec := post(h, "/v1/metrics", "application/x-protobuf", make([]byte, 4096))
	if rec.Code != http.StatusRequestEntityTooLarge || *received != nil {
		t.Fatalf("got %d", rec.Code)
	}
}

func TestHTTPLeavesOtherRequestsToTheReceiver(t *testing.T) {
	h, received := handler(t, 4<<20)
	deep := deepArrayRequest(10_000)
	for _, c := range []struct{ path, contentType string }{
		{"/v1/traces", "text/xml"},              // the receiver answers 415
		{"/v1/other", "application/x-protobuf"}, // not an OTLP path: 404
	} {
		*received = nil
		if rec := post(h, c.path, c.contentType, deep); rec.Code != http.StatusOK || *received == nil {
			t.Errorf("%v: not passed on (%d)", c, rec.Code)
		}
	}
}

func deepJSON(levels int) string {
	return `{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":` +
		strings.Repeat(`{"arrayValue":{"values":[`, levels) + `{"stringValue":"x"}` +
		strings.Repeat(`]}}`, levels) + `}]}]}]}]}`
}

// ExportTraceServiceRequest stands in for pdata's internal request type: the codec picks
// the schema by the type's name.
type ExportTraceServiceRequest struct{}

type recordingCodec struct{ calls int }

func (c *recordingCodec) Marshal(any) (mem.BufferSlice, error) { return nil, nil }
func (c *recordingCodec) Unmarshal(mem.BufferSlice, any) error { c.calls++; return nil }
func (c *recordingCodec) Name() string                         { return "proto" }

func TestGRPCCodecChecksBeforeDecoding(t *testing.T) {
	inner := &recordingCodec{}
	codec := &guardCodec{inner: inner, guard: testGuard(t)}
	split := func(b []byte) mem.BufferSlice { // as gRPC hands over a message in frames
		half := len(b) / 2
		return mem.BufferSlice{mem.SliceBuffer(b[:half]), mem.SliceBuffer(b[half:])}
	}
	err := codec.Unmarshal(split(deepArrayRequest(10_000)), &ExportTraceServiceRequest{})
	if status.Code(err) != codes.InvalidArgument || inner.calls != 0 {
		t.Fatalf("deep request: %v, decoder called %d times", err, inner.calls)
	}
	if err := codec.Unmarshal(split(marshalTraces(t, cliTraces(10))), &ExportTraceServiceRequest{}); err != nil || inner.calls != 1 {
		t.Fatalf("clean request: %v, decoder called %d times", err, inner.calls)
	}
	// other message types (none on this server today) go straight to the decoder
	if err := codec.Unmarshal(split(deepArrayRequest(10_000)), &struct{}{}); err != nil || inner.calls != 2 {
		t.Fatalf("other type: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, bad := range []Config{{MaxValueDepth: 0, MaxMessages: 1}, {MaxValueDepth: 65, MaxMessages: 1}, {MaxValueDepth: 8}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
