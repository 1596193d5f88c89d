package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestUnaryRequestIDAndRecovery(t *testing.T) {
	r := startServer(t)
	client := testpb.NewTestServiceClient(dial(t, r.Addr()))
	ctx := context.Background()

	tests := []struct {
		name     string
		sentID   string
		body     string
		wantCode codes.Code
		wantID   func(string) bool
	}{
		{"client id", "req-42", "hi", codes.OK, func(id string) bool { return id == "req-42" }},
		{"generated id", "", "hi", codes.OK, hexID.MatchString},
		{"invalid id replaced", "bad id", "hi", codes.OK, hexID.MatchString},
		{"panic", "req-p", "panic", codes.Internal, func(id string) bool { return id == "req-p" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cctx := ctx
			if tt.sentID != "" {
				cctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", tt.sentID)
			}
			var hdr metadata.MD
			_, err := client.UnaryCall(cctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(tt.body)}}, grpc.Header(&hdr))
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("got code %v (%v), want %v", got, err, tt.wantCode)
			}
			if tt.wantCode == codes.Internal && strings.Contains(err.Error(), "test panic") {
				t.Errorf("got error %q, want the panic value kept out of it", err)
			}
			ids := hdr.Get("x-request-id")
			if len(ids) != 1 || !tt.wantID(ids[0]) {
				t.Fatalf("got header x-request-id %q, want one matching", ids)
			}
			if got := r.svc.lastID(); got != ids[0] {
				t.Errorf("got handler request ID %q, want %q", got, ids[0])
			}
		})
	}
}

func TestStreamPanicAndHealthAndReflection(t *testing.T) {
	r := startServer(t)
	conn := dial(t, r.Addr())
	ctx := context.Background()

	st, err := testpb.NewTestServiceClient(conn).StreamingOutputCall(ctx,
		&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("panic")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); status.Code(err) != codes.Internal {
		t.Errorf("stream panic: got %v, want Internal", err)
	}

	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: got %v, %v, want SERVING", hr.GetStatus(), err)
	}

	rs, err := reflectpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"grpc.testing.TestService", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, ","), want) {
			t.Errorf("reflection: got services %v, want %s among them", names, want)
		}
	}
	_ = rs.CloseSend()
}

func httpGet(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	notReady := true
	r := startServer(t,
		WithHTTPHandler("GET /openapi/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"swagger":"2.0"}`))
		})),
		WithReadiness(func(context.Context) error {
			if notReady {
				return io.ErrUnexpectedEOF
			}
			return nil
		}))
	base := "http://" + r.HTTPAddr().String()
	_, _ = testpb.NewTestServiceClient(dial(t, r.Addr())).UnaryCall(context.Background(), &testpb.SimpleRequest{})

	resp, body := httpGet(t, base+"/healthz", nil)
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz: got %d %q, want 200 ok", resp.StatusCode, body)
	}
	if resp, _ := httpGet(t, base+"/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with failing check: got %d, want 503", resp.StatusCode)
	}
	notReady = false
	if resp, _ := httpGet(t, base+"/readyz", map[string]string{"X-Request-Id": "r-1"}); resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "r-1" {
		t.Errorf("/readyz: got %d id %q, want 200 r-1", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	if resp, body := httpGet(t, base+"/openapi/x.json", nil); resp.StatusCode != 200 || !strings.Contains(body, "swagger") {
		t.Errorf("/openapi: got %d %q, want 200 swagger", resp.StatusCode, body)
	}
	_, body = httpGet(t, base+"/metrics", nil)
	for _, want := range []string{
		`bitnet_grpc_server_handled_total{grpc_method="/grpc.testing.TestService/UnaryCall",grpc_code="OK"} 1`,
		`bitnet_grpc_server_handling_seconds_count{grpc_method="/grpc.testing.TestService/UnaryCall"} 1`,
		`bitnet_http_server_requests_total{method="GET",code="200"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics: got\n%s\nwant a line with %s", body, want)
		}
	}
	if resp, _ := httpGet(t, base+"/nope", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: got %d, want 404", resp.StatusCode)
	}
}

// echoGateway stands in for generated gateway code: POST /v1/echo (unary)
// and POST /v1/stream (server stream as NDJSON) forwarded over conn.
func echoGateway(_ context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
	client := testpb.NewTestServiceClient(conn)
	decode := func(w http.ResponseWriter, r *http.Request, m runtime.Marshaler, msg any) (context.Context, bool) {
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, "/grpc.testing.TestService/X")
		if err == nil {
			if err = m.NewDecoder(r.Body).Decode(msg); err != nil {
				err = status.Errorf(codes.InvalidArgument, "%v", err)
			}
		}
		if err != nil {
			runtime.HTTPError(r.Context(), mux, m, w, r, err)
			return nil, false
		}
		return ctx, true
	}
	if err := mux.HandlePath("POST", "/v1/echo", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, m := runtime.MarshalerForRequest(mux, r)
		var req testpb.SimpleRequest
		ctx, ok := decode(w, r, m, &req)
		if !ok {
			return
		}
		var md runtime.ServerMetadata
		resp, err := client.UnaryCall(ctx, &req, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		ctx = runtime.NewServerMetadataContext(ctx, md)
		if err != nil {
			runtime.HTTPError(ctx, mux, m, w, r, err)
			return
		}
		runtime.ForwardResponseMessage(ctx, mux, m, w, r, resp)
	}); err != nil {
		return err
	}
	return mux.HandlePath("POST", "/v1/stream", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, m := runtime.MarshalerForRequest(mux, r)
		var req testpb.StreamingOutputCallRequest
		ctx, ok := decode(w, r, m, &req)
		if !ok {
			return
		}
		st, err := client.StreamingOutputCall(ctx, &req)
		if err != nil {
			runtime.HTTPError(ctx, mux, m, w, r, err)
			return
		}
		hdr, err := st.Header()
		if err != nil {
			runtime.HTTPError(ctx, mux, m, w, r, err)
			return
		}
		ctx = runtime.NewServerMetadataContext(ctx, runtime.ServerMetadata{HeaderMD: hdr})
		runtime.ForwardResponseStream(ctx, mux, m, w, r, func() (proto.Message, error) { return st.Recv() })
	})
}

func post(t *testing.T, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	return do(t, http.MethodPost, url, "application/json", strings.NewReader(body), hdr)
}

func TestGateway(t *testing.T) {
	r := startServer(t, WithGateway(echoGateway))
	base := "http://" + r.HTTPAddr().String()

	t.Run("unary proto names", func(t *testing.T) {
		resp, body := post(t, base+"/v1/echo", `{"payload":{"body":"aGk="}, "fill_server_id": true}`, map[string]string{"X-Request-Id": "gw-1"})
		if resp.StatusCode != 200 {
			t.Fatalf("got %d %s, want 200", resp.StatusCode, body)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("got body %q: %v", body, err)
		}
		if got["server_id"] != "srv-1" {
			t.Errorf("got %s, want field server_id (proto name) = srv-1", body)
		}
		if id := resp.Header.Get("X-Request-Id"); id != "gw-1" || len(resp.Header.Values("X-Request-Id")) != 1 {
			t.Errorf("got X-Request-Id %q, want one gw-1", resp.Header.Values("X-Request-Id"))
		}
		if got := r.svc.lastID(); got != "gw-1" {
			t.Errorf("got gRPC-side request ID %q, want gw-1 forwarded by the gateway", got)
		}
	})
	t.Run("malformed json", func(t *testing.T) {
		for _, body := range []string{`{"payload":`, `{"no_such_field":1}`} {
			resp, b := post(t, base+"/v1/echo", body, nil)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, `"code":3`) {
				t.Errorf("body %q: got %d %s, want 400 with code 3", body, resp.StatusCode, b)
			}
		}
	})
	t.Run("grpc error status", func(t *testing.T) {
		resp, b := post(t, base+"/v1/echo", `{"payload":{"body":"cGFuaWM="}}`, nil) // "panic"
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("got %d %s, want 500", resp.StatusCode, b)
		}
	})
	t.Run("ndjson error midway", func(t *testing.T) {
		resp, body := post(t, base+"/v1/stream", `{"response_parameters":[{"size":1},{"size":-1}]}`, nil)
		lines := strings.Split(strings.TrimSpace(body), "\n")
		if resp.StatusCode != 200 || len(lines) != 2 || lines[0] != `{"payload":{"body":"YQ=="}}` ||
			!strings.HasPrefix(lines[1], `{"error":{"code":10,`) {
			t.Errorf("got %d\n%s\nwant 200, one message, then an error line with code 10", resp.StatusCode, body)
		}
	})
	t.Run("stream error before first message", func(t *testing.T) {
		resp, body := post(t, base+"/v1/stream", `{"response_parameters":[{"size":-1}]}`, nil)
		if resp.StatusCode != http.StatusConflict { // Aborted
			t.Errorf("got %d %s, want 409", resp.StatusCode, body)
		}
	})
	t.Run("ndjson stream", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/stream",
			strings.NewReader(`{"response_parameters":[{"size":1},{"size":2,"interval_us":20000},{"size":3}]}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != gateway.NDJSONContentType {
			t.Errorf("got Content-Type %q, want %q", ct, gateway.NDJSONContentType)
		}
		if !hexID.MatchString(resp.Header.Get("X-Request-Id")) {
			t.Errorf("got X-Request-Id %q, want a generated one", resp.Header.Get("X-Request-Id"))
		}
		sc := bufio.NewScanner(resp.Body)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		want := []string{`{"payload":{"body":"YQ=="}}`, `{"payload":{"body":"YmI="}}`, `{"payload":{"body":"Y2Nj"}}`}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("got lines\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
	}{
		{"bad grpc addr", []Option{WithGRPCAddr("nope:-1"), WithHTTPAddr("")}},
		{"bad http addr", []Option{WithGRPCAddr("127.0.0.1:0"), WithHTTPAddr("nope:-1")}},
		{"negative drain", []Option{WithGRPCAddr("127.0.0.1:0"), WithHTTPAddr(""), WithDrainTimeout(-time.Second)}},
		{"gateway fails", []Option{WithGRPCAddr("127.0.0.1:0"), WithHTTPAddr("127.0.0.1:0"),
			WithGateway(func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error { return io.EOF })}},
	}
	for _, tt := range tests {
		if s, err := New(tt.opts...); err == nil {
			t.Errorf("%s: got server %v, want error", tt.name, s.Addr())
		}
	}
	s, err := New(WithGRPCAddr("127.0.0.1:0"), WithHTTPAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTPAddr() != nil || s.Gateway() != nil {
		t.Errorf("got HTTP %v, want none", s.HTTPAddr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Serve(ctx); err != nil {
		t.Errorf("Serve with done ctx: got %v, want nil", err)
	}
	if err := s.Serve(ctx); err == nil {
		t.Error("second Serve: got nil, want error")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Serve: got %v, want nil", err)
	}

	s, err = New(WithGRPCAddr("127.0.0.1:0"), WithHTTPAddr("127.0.0.1:0"), WithGateway(echoGateway))
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if l, err := net.Listen("tcp", addr); err != nil {
		t.Errorf("listen on %s after Close: %v, want the port released", addr, err)
	} else {
		_ = l.Close()
	}
	if err := s.Serve(ctx); err == nil {
		t.Error("Serve after Close: got nil, want error")
	}
}
