package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, url, contentType string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
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

// wantShape checks the one REST error shape: the JSON of google.rpc.Status.
func wantShape(t *testing.T, body string, code codes.Code) {
	t.Helper()
	var st struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Code == nil || *st.Code != int(code) || st.Message == "" {
		t.Errorf("error body %s: want {\"code\": %d, \"message\": ...}", body, code)
	}
}

// echoBody is a JSON echo request whose payload is n bytes.
func echoBody(n int) string {
	return `{"payload":{"body":"` + base64.StdEncoding.EncodeToString(make([]byte, n)) + `"}}`
}

// rawRequest writes a request with a Content-Length on a fresh connection,
// then its body in pieces, one every gap, and returns the status line and
// when it came (or the connection's end).
func rawRequest(t *testing.T, addr, path string, body []byte, piece int, gap time.Duration) (string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, len(body))
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(c).ReadString('\n')
		lines <- strings.TrimSpace(l)
	}()
	for off := 0; off < len(body); off += piece {
		if _, err := c.Write(body[off:min(off+piece, len(body))]); err != nil {
			break
		}
		select {
		case l := <-lines:
			return l, time.Since(start)
		case <-time.After(gap):
		}
	}
	select {
	case l := <-lines:
		return l, time.Since(start)
	case <-time.After(10 * time.Second):
		return "no answer", time.Since(start)
	}
}

// TestBodyLimits is defect 4: bodies are bounded in size (413: at once by
// Content-Length, or once a chunked body passes the limit) and in time (a
// trickling body is cut with 408), while an upload route takes a larger
// body and a slow but steady one, and a long streamed response outlives
// the body read timeout.
func TestBodyLimits(t *testing.T) {
	lim := Limits{MaxBodyBytes: 64 << 10, MaxUploadBodyBytes: 1 << 20, MaxLineBytes: 512 << 10,
		BodyReadTimeout: 300 * time.Millisecond, MinBodyRate: 1 << 10}
	r := startServer(t, WithGateway(echoGateway), WithLimits(lim), WithUploadRoute("/v1/stream"))
	base := "http://" + r.HTTPAddr().String()

	t.Run("content-length over the limit", func(t *testing.T) {
		resp, body := do(t, "POST", base+"/v1/echo", "application/json", strings.NewReader(echoBody(100<<10)), nil)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d %s, want 413", resp.StatusCode, body)
		}
		wantShape(t, body, codes.ResourceExhausted)
	})
	t.Run("chunked body over the limit", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			pw.Write([]byte(echoBody(100 << 10)))
			pw.Close()
		}()
		resp, body := do(t, "POST", base+"/v1/echo", "application/json", pr, nil) // no Content-Length
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d %s, want 413", resp.StatusCode, body)
		}
		wantShape(t, body, codes.ResourceExhausted)
	})
	t.Run("upload route takes more", func(t *testing.T) {
		b := `{"payload":{"body":"` + base64.StdEncoding.EncodeToString(make([]byte, 200<<10)) + `"},"response_parameters":[{"size":1}]}`
		resp, body := do(t, "POST", base+"/v1/stream", "application/x-ndjson", strings.NewReader(b), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %s, want 200", resp.StatusCode, body)
		}
	})
	t.Run("upload route line limit", func(t *testing.T) {
		b := `{"payload":{"body":"` + base64.StdEncoding.EncodeToString(make([]byte, 600<<10)) + `"}}`
		resp, body := do(t, "POST", base+"/v1/stream", "application/x-ndjson", strings.NewReader(b), nil)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d %s, want 413", resp.StatusCode, body)
		}
	})
	t.Run("trickling body", func(t *testing.T) {
		line, took := rawRequest(t, r.HTTPAddr().String(), "/v1/echo", []byte(echoBody(100)), 1, 150*time.Millisecond)
		if !strings.Contains(line, " 408 ") || took > 3*time.Second {
			t.Fatalf("got %q after %v, want 408 within 3 s", line, took)
		}
	})
	t.Run("stalled body", func(t *testing.T) {
		line, took := rawRequest(t, r.HTTPAddr().String(), "/v1/echo", []byte(echoBody(100)), 10, 5*time.Second)
		if !strings.Contains(line, " 408 ") || took > 3*time.Second {
			t.Fatalf("got %q after %v, want 408 within 3 s", line, took)
		}
	})
	t.Run("slow but steady body", func(t *testing.T) {
		body := []byte(echoBody(30 << 10)) // 40 KB at 20 KB/s: 2 s, past the read timeout
		line, _ := rawRequest(t, r.HTTPAddr().String(), "/v1/echo", body, 2<<10, 100*time.Millisecond)
		if !strings.Contains(line, " 200 ") {
			t.Fatalf("got %q, want 200", line)
		}
	})
	t.Run("long stream outlives the body timeout", func(t *testing.T) {
		resp, body := do(t, "POST", base+"/v1/stream", "application/json",
			strings.NewReader(`{"response_parameters":[{"size":1},{"size":1,"interval_us":800000},{"size":1,"interval_us":400000}]}`), nil)
		if resp.StatusCode != http.StatusOK || strings.Count(body, "payload") != 3 {
			t.Fatalf("got %d %s, want 200 and three messages", resp.StatusCode, body)
		}
	})
}

// TestContentType is defect 5: a REST mutation whose body is not JSON is
// refused with 415 before any handler runs (a cross-site page can POST
// text/plain or a form without a preflight), and a form POST is never
// taken for a GET.
func TestContentType(t *testing.T) {
	r := startServer(t, WithGateway(echoGateway))
	base := "http://" + r.HTTPAddr().String()
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/x-ndjson"} {
		resp, body := do(t, "POST", base+"/v1/echo", ct, strings.NewReader(`{"payload":{"body":"aGk="}}`), nil)
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: got %d %s, want 415", ct, resp.StatusCode, body)
		}
		wantShape(t, body, codes.InvalidArgument)
	}
	if got := r.svc.lastID(); got != "" {
		t.Errorf("a handler ran for a refused request (request %q)", got)
	}
	resp, body := do(t, "POST", base+"/v1/echo", "application/json; charset=utf-8", strings.NewReader(`{"payload":{"body":"aGk="}}`), nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("application/json; charset=utf-8: got %d %s, want 200", resp.StatusCode, body)
	}
}

// TestRoutingErrors: a wrong method gets 405 with Allow (not 501), an
// unknown path 404, both in the one error shape.
func TestRoutingErrors(t *testing.T) {
	r := startServer(t, WithGateway(echoGateway))
	base := "http://" + r.HTTPAddr().String()
	for _, method := range []string{"GET", "PUT", "DELETE", "PATCH"} {
		resp, body := do(t, method, base+"/v1/echo", "application/json", nil, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s /v1/echo: got %d, Allow %q, %s; want 405, Allow POST", method, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
		wantShape(t, body, codes.Unimplemented)
	}
	resp, body := do(t, "GET", base+"/v1/nothing", "", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/nothing: got %d %s, want 404", resp.StatusCode, body)
	}
	wantShape(t, body, codes.NotFound)
}

// TestRetryAfter: every 429 carries Retry-After, from the error's
// RetryInfo (rounded up to whole seconds) or the default.
func TestRetryAfter(t *testing.T) {
	r := startServer(t, WithGateway(echoGateway))
	base := "http://" + r.HTTPAddr().String()
	for _, tc := range []struct{ payload, want string }{{"busy", "3"}, {"full", "1"}} {
		resp, body := do(t, "POST", base+"/v1/echo", "application/json",
			strings.NewReader(`{"payload":{"body":"`+base64.StdEncoding.EncodeToString([]byte(tc.payload))+`"}}`), nil)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != tc.want {
			t.Errorf("%s: got %d, Retry-After %q (%s); want 429 with %s", tc.payload, resp.StatusCode, resp.Header.Get("Retry-After"), body, tc.want)
		}
		wantShape(t, body, codes.ResourceExhausted)
	}
}

// TestCORS: without origins no CORS header is ever sent and a preflight
// is not answered; with origins a preflight from one of them gets 204 and
// the allowed methods and headers, others get 403.
func TestCORS(t *testing.T) {
	preflight := map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization"}
	off := startServer(t, WithGateway(echoGateway))
	resp, _ := do(t, "OPTIONS", "http://"+off.HTTPAddr().String()+"/v1/echo", "", nil, preflight)
	if resp.StatusCode == http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off, preflight: got %d with Access-Control-Allow-Origin %q, want neither", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	on := startServer(t, WithGateway(echoGateway), WithCORS("https://app.example"))
	base := "http://" + on.HTTPAddr().String()
	resp, body := do(t, "OPTIONS", base+"/v1/echo", "", nil, preflight)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("allowed preflight: got %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, _ = do(t, "POST", base+"/v1/echo", "application/json", strings.NewReader(`{"payload":{"body":"aGk="}}`), map[string]string{"Origin": "https://app.example"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("allowed request: got %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	preflight["Origin"] = "https://evil.example"
	resp, body = do(t, "OPTIONS", base+"/v1/echo", "", nil, preflight)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin's preflight: got %d %s, want 403 without CORS headers", resp.StatusCode, body)
	}
	wantShape(t, body, codes.PermissionDenied)
}

// TestGRPCLimits: a message over the receive limit is RESOURCE_EXHAUSTED.
func TestGRPCLimits(t *testing.T) {
	r := startServer(t, WithLimits(Limits{GRPCMaxRecvBytes: 1 << 10}))
	client := testpb.NewTestServiceClient(dial(t, r.Addr()))
	_, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, 2<<10)}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("2 KiB message over a 1 KiB limit: got %v, want ResourceExhausted", err)
	}
	if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, 512)}}); err != nil {
		t.Errorf("512-byte message: %v", err)
	}
	if _, err := New(WithGRPCAddr("127.0.0.1:0"), WithHTTPAddr(""), WithLimits(Limits{MaxBodyBytes: -1})); err == nil {
		t.Error("negative limit: got a server, want an error")
	}
}

// TestGRPCConnectionLimits: the per-connection limits of the gRPC port,
// seen on the wire by a raw HTTP/2 client: the server's SETTINGS carry
// MAX_CONCURRENT_STREAMS, and a client pinging more often than the
// keepalive policy allows is sent GOAWAY ENHANCE_YOUR_CALM (too_many_pings)
// and disconnected.
func TestGRPCConnectionLimits(t *testing.T) {
	r := startServer(t, WithLimits(Limits{MaxConcurrentStreams: 3, GRPCKeepaliveMinTime: time.Hour}))
	conn, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var streams uint32
	for streams == 0 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's SETTINGS: %v", err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			v, ok := s.Value(http2.SettingMaxConcurrentStreams)
			if !ok {
				t.Fatal("server SETTINGS without MAX_CONCURRENT_STREAMS")
			}
			streams = v
			if err := fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if streams != 3 {
		t.Errorf("MAX_CONCURRENT_STREAMS: got %d, want 3", streams)
	}
	for i := range 10 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server may hang up first
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("10 pings within a second (minimum interval 1h): connection ended (%v) without GOAWAY", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeEnhanceYourCalm || !strings.Contains(string(g.DebugData()), "too_many_pings") {
				t.Errorf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", g.ErrCode, g.DebugData())
			}
			return
		}
	}
}

// TestIdleTimeout: a keep-alive REST connection left idle past the idle
// timeout is closed by the server; one in use is not.
func TestIdleTimeout(t *testing.T) {
	r := startServer(t, WithLimits(Limits{IdleTimeout: time.Second}))
	conn, err := net.Dial("tcp", r.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func() error {
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	for range 3 { // in use: kept open across requests closer than the timeout
		if err := get(); err != nil {
			t.Fatalf("request on a busy keep-alive connection: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: got %v, want EOF (closed by the server)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idle connection closed after %v, want about 1s", d)
	}
}
