package ingestguard

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

type guard struct {
	component.StartFunc
	component.ShutdownFunc
	limits   Limits
	logger   *zap.Logger
	refusals metric.Int64Counter
}

var (
	_ extensionmiddleware.HTTPServer = (*guard)(nil)
	_ extensionmiddleware.GRPCServer = (*guard)(nil)
)

func newGuard(set extension.Settings, cfg *Config) (*guard, error) {
	counter, err := set.MeterProvider.Meter("github.com/otel-cli-telemetry/ingestguard").Int64Counter(
		"otelcol_ingestguard_refused_requests",
		metric.WithDescription("OTLP requests refused before decoding, by reason and protocol"),
		metric.WithUnit("{request}"),
	)
	if err != nil {
		return nil, err
	}
	return &guard{limits: cfg.limits(), logger: set.Logger, refusals: counter}, nil
}

func (g *guard) refuse(ctx context.Context, protocol string, err error) {
	reason := errMalformed
	for _, r := range []error{errTooDeep, errTooManyObjects} {
		if errors.Is(err, r) {
			reason = r
		}
	}
	g.refusals.Add(ctx, 1, metric.WithAttributes(
		attribute.String("reason", reason.Error()), attribute.String("protocol", protocol)))
	g.logger.Debug("refused an OTLP request before decoding", zap.String("protocol", protocol), zap.Error(err))
}

// rootForPath maps the receiver's URL paths (/v1/traces, /v1/metrics, /v1/logs, or custom
// ones ending the same way) to the request message they carry.
func rootForPath(path string) msgType {
	switch {
	case strings.HasSuffix(path, "traces"):
		return msgExportTraceServiceRequest
	case strings.HasSuffix(path, "metrics"):
		return msgExportMetricsServiceRequest
	case strings.HasSuffix(path, "logs"):
		return msgExportLogsServiceRequest
	}
	return msgNone
}

// GetHTTPHandler wraps the receiver's handler: the body (already decompressed and capped
// by max_request_body_size) is read, checked and handed on unchanged, or refused with 400.
func (g *guard) GetHTTPHandler(context.Context) (extensionmiddleware.WrapHTTPHandlerFunc, error) {
	return func(_ context.Context, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			root := rootForPath(r.URL.Path)
			mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			isJSON := mediaType == "application/json"
			if r.Method != http.MethodPost || root == msgNone ||
				(!isJSON && mediaType != "application/x-protobuf") {
				next.ServeHTTP(w, r) // the receiver answers 404/405/415 itself
				return
			}
			body, err := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if err != nil {
				// Over max_request_body_size (raw or decompressed), or a broken stream.
				status := http.StatusBadRequest
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					status = http.StatusRequestEntityTooLarge
				}
				http.Error(w, "cannot read the request body", status)
				return
			}
			if isJSON {
				err = checkJSON(body, g.limits)
			} else {
				err = checkProto(body, root, g.limits)
			}
			if err != nil {
				protocol := "http/protobuf"
				if isJSON {
					protocol = "http/json"
				}
				g.refuse(r.Context(), protocol, err)
				writeStatus(w, isJSON, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			next.ServeHTTP(w, r)
		}), nil
	}, nil
}

// writeStatus answers 400 with a google.rpc.Status body, as the OTLP/HTTP spec asks.
func writeStatus(w http.ResponseWriter, isJSON bool, err error) {
	msg := "request refused before decoding: " + err.Error()
	if isJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"code":3,"message":` + jsonQuote(msg) + `}`))
		return
	}
	// google.rpc.Status{code: 3 (INVALID_ARGUMENT), message: msg}, encoded by hand.
	out := []byte{0x08, 0x03, 0x12}
	out = appendUvarint(out, uint64(len(msg)))
	out = append(out, msg...)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(out)
}

func jsonQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20:
			b.WriteString(" ")
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func appendUvarint(out []byte, v uint64) []byte {
	for v >= 0x80 {
		out = append(out, byte(v)|0x80)
		v >>= 7
	}
	return append(out, byte(v))
}

// GetGRPCServerOptions installs a codec that checks each request's bytes before the
// registered "proto" codec (pdata's) decodes them. gRPC has already applied
// max_recv_msg_size_mib (after decompression) when the codec runs.
func (g *guard) GetGRPCServerOptions(context.Context) ([]grpc.ServerOption, error) {
	inner := encoding.GetCodecV2("proto")
	if inner == nil {
		return nil, errors.New("ingestguard: no gRPC proto codec registered")
	}
	return []grpc.ServerOption{grpc.ForceServerCodecV2(&guardCodec{inner: inner, guard: g})}, nil
}

type guardCodec struct {
	inner encoding.CodecV2
	guard *guard
}

// rootForType maps the request types of pdata's gRPC services to their messages.
func rootForType(v any) msgType {
	t := reflect.TypeOf(v)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return msgNone
	}
	switch t.Name() {
	case "ExportTraceServiceRequest":
		return msgExportTraceServiceRequest
	case "ExportMetricsServiceRequest":
		return msgExportMetricsServiceRequest
	case "ExportLogsServiceRequest":
		return msgExportLogsServiceRequest
	}
	return msgNone
}

func (c *guardCodec) Marshal(v any) (mem.BufferSlice, error) { return c.inner.Marshal(v) }

func (c *guardCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if root := rootForType(v); root != msgNone {
		var buf []byte
		if len(data) == 1 {
			buf = data[0].ReadOnlyData()
		} else {
			buf = data.Materialize()
		}
		if err := checkProto(buf, root, c.guard.limits); err != nil {
			c.guard.refuse(context.Background(), "grpc", err)
			return status.Error(codes.InvalidArgument, "request refused before decoding: "+err.Error())
		}
	}
	return c.inner.Unmarshal(data, v)
}

func (c *guardCodec) Name() string { return c.inner.Name() }
