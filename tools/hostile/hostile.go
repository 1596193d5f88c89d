// Package hostile is a hostile client of a bitnet mesh: malformed model
// files (the Corpus), oversized and slow bodies, cross-site requests,
// malformed requests and cancel storms, each a Case whose Run says whether
// the mesh refused it cleanly (a 4xx, or the gRPC equivalent). The mesh
// tests run every case against a real mesh in CI (services/mesh
// TestHostileClients) and the load benchmark mixes them into legitimate
// traffic (BenchmarkHostile); SmallGGUF serves other packages' tests.
//
// Add a case to the list Cases returns: a name, a kind and a Run that sends
// the request and returns an error unless the mesh answered as it must.
// UnauthorizedCases are the cases of a mesh with API keys (--auth): no,
// malformed, forged, revoked and wrongly scoped keys, a key over its rate.
package hostile

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
)

// Target is the mesh under test.
type Target struct {
	REST  string // base URL, http://host:port
	GRPC  string // host:port
	Model string // a servable model the cancel storm generates with
	// Header is added to every REST request (e.g. an API key once auth is
	// on); nil adds nothing.
	Header http.Header
	// Conn dials GRPC when nil (set it to share a connection).
	Conn *grpc.ClientConn

	once   sync.Once
	client *http.Client
}

// Case is one hostile request (or burst of them).
type Case struct {
	Name string
	// Kind groups cases: malformed, oversized, slow, cross-site,
	// bad-request, cancel, unauthorized (UnauthorizedCases).
	Kind string
	// Run sends it and returns what came back, with an error unless the
	// mesh refused it as it must.
	Run func(ctx context.Context, t *Target) (got string, err error)
}

func (t *Target) http() *http.Client {
	t.once.Do(func() {
		// No pooling across cases: a connection a case leaves broken must
		// not fail the next one.
		t.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	})
	return t.client
}

// do sends a REST request and returns the status and body (at most 1 MiB).
func (t *Target) do(ctx context.Context, method, path, contentType string, body io.Reader, hdr map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, t.REST+path, body)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range t.Header {
		req.Header[k] = vs
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := t.http().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, nil
}

// want checks a REST answer's status (any 4xx when want is 0).
func want(status int, body []byte, err error, want int) (string, error) {
	got := fmt.Sprint(status)
	switch {
	case err != nil:
		return "error", err
	case want == 0 && (status < 400 || status > 499):
		return got, fmt.Errorf("got %d %.200s, want a 4xx", status, body)
	case want != 0 && status != want:
		return got, fmt.Errorf("got %d %.200s, want %d", status, body, want)
	}
	return got, nil
}

// restCase is a Case sending one REST request.
func restCase(name, kind, method, path, contentType, body string, hdr map[string]string, status int) Case {
	return Case{Name: name, Kind: kind, Run: func(ctx context.Context, t *Target) (string, error) {
		st, b, err := t.do(ctx, method, path, contentType, strings.NewReader(body), hdr)
		return want(st, b, err, status)
	}}
}

// Cases returns the built-in cases: one per corpus model (pushed through
// the REST upload and version routes: refused at push, or, for AtLoad, at
// the first generate) and the request cases.
func Cases(corpus []Model) []Case {
	var cs []Case
	for _, m := range corpus {
		cs = append(cs, Case{Name: "model/" + m.Name, Kind: "malformed", Run: func(ctx context.Context, t *Target) (string, error) {
			return t.pushModel(ctx, m)
		}})
	}
	huge := `{"architectures":["BitNetForCausalLM"],"vocab_size":16777216,"hidden_size":16777216,"intermediate_size":16777216,"num_hidden_layers":2,"num_attention_heads":4}`
	trainerJob, _ := json.Marshal(map[string]any{
		"model":   map[string]any{"config_json": huge, "tokenizer_sha256": strings.Repeat("0", 64)},
		"dataset": map[string]any{"sha256": []string{strings.Repeat("1", 64)}}, "hyperparameters": map[string]any{"steps": 1},
	})
	cs = append(cs,
		restCase("text/plain cross-site POST", "cross-site", "POST", "/v1/registry/models", "text/plain", `{"name": "planted"}`,
			map[string]string{"Origin": "https://evil.example"}, http.StatusUnsupportedMediaType),
		restCase("form POST", "cross-site", "POST", "/v1/generate", "application/x-www-form-urlencoded", "model=x&prompt=y", nil, http.StatusUnsupportedMediaType),
		restCase("wrong method", "bad-request", "PUT", "/v1/generate", "application/json", `{}`, nil, http.StatusMethodNotAllowed),
		restCase("unknown route", "bad-request", "GET", "/v1/nothing-here", "", "", nil, http.StatusNotFound),
		restCase("garbage page token", "bad-request", "GET", "/v1/registry/models?page_token=garbage", "", "", nil, http.StatusBadRequest),
		restCase("truncated JSON", "bad-request", "POST", "/v1/generate", "application/json", `{"model": `, nil, http.StatusBadRequest),
		restCase("unknown field", "bad-request", "POST", "/v1/generate", "application/json", `{"modle": "x"}`, nil, http.StatusBadRequest),
		restCase("unknown model", "bad-request", "POST", "/v1/generate", "application/json", `{"model": "nosuch@1", "prompt": "x"}`, nil, http.StatusNotFound),
		restCase("huge trainer config", "malformed", "POST", "/v1/trainer/jobs", "application/json", string(trainerJob), nil, http.StatusBadRequest),
		restCase("bad upload digest", "bad-request", "POST", "/v1/registry/uploads", "application/json", `{"sha256": "zz", "size_bytes": 1}`, nil, http.StatusBadRequest),
		restCase("upload past the blob limit", "oversized", "POST", "/v1/registry/uploads", "application/json",
			`{"sha256": "`+strings.Repeat("ab", 32)+`", "size_bytes": "9223372036854775807"}`, nil, 0),
		Case{Name: "upload of wrong bytes", Kind: "malformed", Run: func(ctx context.Context, t *Target) (string, error) {
			id, _, err := t.createUpload(ctx, sha([]byte("the announced bytes")), 19)
			if err != nil {
				return "error", err
			}
			st, b, err := t.streamUpload(ctx, id, 0, []byte("not the same bytes!"))
			return want(st, b, err, http.StatusBadRequest)
		}},
		Case{Name: "200 MB body announced", Kind: "oversized", Run: func(ctx context.Context, t *Target) (string, error) {
			return t.raw(ctx, "/v1/generate", 200<<20, []byte(`{"model": "`), 0, 0, http.StatusRequestEntityTooLarge)
		}},
		Case{Name: "8 MB chunked body", Kind: "oversized", Run: func(ctx context.Context, t *Target) (string, error) {
			pr, pw := io.Pipe()
			go func() {
				pw.Write([]byte(`{"model": "x", "prompt": "`))
				chunk := bytes.Repeat([]byte("a"), 64<<10)
				for range 128 {
					if _, err := pw.Write(chunk); err != nil {
						return
					}
				}
				pw.Write([]byte(`"}`))
				pw.Close()
			}()
			defer pr.Close()
			st, b, err := t.do(ctx, "POST", "/v1/generate", "application/json", pr, nil)
			return want(st, b, err, http.StatusRequestEntityTooLarge)
		}},
		Case{Name: "trickling body", Kind: "slow", Run: func(ctx context.Context, t *Target) (string, error) {
			return t.raw(ctx, "/v1/generate", 100, bytes.Repeat([]byte(" "), 100), 1, 150*time.Millisecond, http.StatusRequestTimeout)
		}},
		Case{Name: "stalled body", Kind: "slow", Run: func(ctx context.Context, t *Target) (string, error) {
			return t.raw(ctx, "/v1/generate", 100, []byte(`{"model": `), 10, 10*time.Second, http.StatusRequestTimeout)
		}},
		Case{Name: "stalled headers", Kind: "slow", Run: func(ctx context.Context, t *Target) (string, error) {
			return t.stalledHeaders(ctx)
		}},
		Case{Name: "gRPC message over the limit", Kind: "oversized", Run: func(ctx context.Context, t *Target) (string, error) {
			conn, err := t.grpc()
			if err != nil {
				return "error", err
			}
			_, err = inferencev1.NewInferenceServiceClient(conn).Tokenize(ctx, &inferencev1.TokenizeRequest{Model: t.Model, Text: strings.Repeat("a", 9<<20)})
			if status.Code(err) != codes.ResourceExhausted {
				return status.Code(err).String(), fmt.Errorf("got %v, want ResourceExhausted", err)
			}
			return codes.ResourceExhausted.String(), nil
		}},
		Case{Name: "cancel storm", Kind: "cancel", Run: func(ctx context.Context, t *Target) (string, error) {
			return t.cancelStorm(ctx, 64)
		}},
	)
	return cs
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// grpc returns the shared connection, dialling it once.
func (t *Target) grpc() (*grpc.ClientConn, error) {
	if t.Conn != nil {
		return t.Conn, nil
	}
	c, err := grpc.NewClient(t.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	t.Conn = c
	return c, nil
}

// createUpload starts an upload over REST and returns its ID ("" when the
// blob is stored) and offset.
func (t *Target) createUpload(ctx context.Context, digest string, size int) (string, int64, error) {
	st, b, err := t.do(ctx, "POST", "/v1/registry/uploads", "application/json",
		strings.NewReader(fmt.Sprintf(`{"sha256": %q, "size_bytes": %d}`, digest, size)), nil)
	if err != nil {
		return "", 0, err
	}
	if st != http.StatusOK {
		return "", 0, fmt.Errorf("create upload: %d %.200s", st, b)
	}
	var r struct {
		Upload struct {
			ID     string      `json:"upload_id"`
			Offset json.Number `json:"offset"`
			State  string      `json:"state"`
		} `json:"upload"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", 0, err
	}
	if r.Upload.State == "UPLOAD_STATE_COMPLETE" {
		return "", 0, nil
	}
	off, _ := r.Upload.Offset.Int64()
	return r.Upload.ID, off, nil
}

// streamUpload sends data[off:] to an upload through the NDJSON route.
func (t *Target) streamUpload(ctx context.Context, id string, off int64, data []byte) (int, []byte, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, `{"header": {"upload_id": %q, "offset": %d}}`+"\n", id, off)
	for p := data[off:]; len(p) > 0; {
		n := min(len(p), 1<<20)
		fmt.Fprintf(&body, `{"chunk": %q}`+"\n", base64.StdEncoding.EncodeToString(p[:n]))
		p = p[n:]
	}
	return t.do(ctx, "POST", "/v1/registry/uploads:stream", "application/x-ndjson", &body, nil)
}

// upload stores data as a blob, resuming like a real client when another
// push of the same blob moved the upload on (FAILED_PRECONDITION with
// the offset to send from).
func (t *Target) upload(ctx context.Context, digest string, data []byte) error {
	var last error
	for range 5 {
		id, off, err := t.createUpload(ctx, digest, len(data))
		if err != nil || id == "" {
			return err
		}
		st, b, err := t.streamUpload(ctx, id, off, data)
		switch {
		case err != nil:
			return err
		case st == http.StatusOK:
			return nil
		}
		last = fmt.Errorf("%d %.200s", st, b)
	}
	return last
}

// pushModel uploads a model's files and creates a version of them: the
// registry must refuse the version (400), or, for a model refused only at
// load, the first generate must get a 4xx.
func (t *Target) pushModel(ctx context.Context, m Model) (string, error) {
	type file struct {
		Path   string `json:"path"`
		SHA256 string `json:"sha256"`
	}
	var files []file
	for path, data := range m.Files {
		d := sha(data)
		if err := t.upload(ctx, d, data); err != nil {
			return "error", fmt.Errorf("upload %s: %w", path, err)
		}
		files = append(files, file{path, d})
	}
	name := m.Name
	body, _ := json.Marshal(map[string]any{"format": m.Format, "files": files, "create_model": true})
	st, b, err := t.do(ctx, "POST", "/v1/registry/models/"+url.PathEscape(name)+"/versions", "application/json", bytes.NewReader(body), nil)
	if !m.AtLoad {
		return want(st, b, err, http.StatusBadRequest)
	}
	if err != nil || st != http.StatusOK {
		return fmt.Sprint(st), fmt.Errorf("push of %s (refused only at load): got %d %.200s %v, want 200", name, st, b, err)
	}
	gen, _ := json.Marshal(map[string]any{"model": name, "prompt": "x", "max_tokens": 1})
	st, b, err = t.do(ctx, "POST", "/v1/generate", "application/json", bytes.NewReader(gen), nil)
	return want(st, b, err, http.StatusBadRequest)
}

// raw sends a POST with a Content-Length of length on its own connection,
// then body in pieces of piece bytes (all at once when 0) every gap, and
// checks the status line of the answer.
func (t *Target) raw(ctx context.Context, path string, length int, body []byte, piece int, gap time.Duration, status int) (string, error) {
	c, err := t.dialREST(ctx)
	if err != nil {
		return "error", err
	}
	defer c.Close()
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "POST %s HTTP/1.1\r\nHost: mesh\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, length)
	for k, vs := range t.Header {
		for _, v := range vs {
			fmt.Fprintf(&hdr, "%s: %s\r\n", k, v)
		}
	}
	hdr.WriteString("\r\n")
	if _, err := io.WriteString(c, hdr.String()); err != nil {
		return "error", err
	}
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(c).ReadString('\n')
		lines <- strings.TrimSpace(l)
	}()
	if piece == 0 {
		piece = len(body)
	}
	var line string
	sent := false
	for off := 0; off < len(body) && !sent; off += piece {
		_, _ = c.Write(body[off:min(off+piece, len(body))])
		select {
		case line = <-lines:
			sent = true
		case <-time.After(gap):
		case <-ctx.Done():
			return "no answer", ctx.Err()
		}
	}
	if !sent {
		select {
		case line = <-lines:
		case <-ctx.Done():
			return "no answer", ctx.Err()
		}
	}
	if !strings.HasPrefix(line, fmt.Sprintf("HTTP/1.1 %d ", status)) {
		return line, fmt.Errorf("got %q, want %d", line, status)
	}
	return fmt.Sprint(status), nil
}

func (t *Target) dialREST(ctx context.Context) (net.Conn, error) {
	u, err := url.Parse(t.REST)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", u.Host)
}

// stalledHeaders starts a request and never finishes its headers: the
// server must close the connection (net/http gives up on a header read
// without an answer).
func (t *Target) stalledHeaders(ctx context.Context) (string, error) {
	c, err := t.dialREST(ctx)
	if err != nil {
		return "error", err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /v1/generate HTTP/1.1\r\nHost: mesh\r\n"); err != nil {
		return "error", err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetReadDeadline(dl)
	}
	n, err := c.Read(make([]byte, 512))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "open", errors.New("the connection is still open: header timeout not enforced")
	case err != nil: // EOF or reset: closed
		return "closed", nil
	}
	return "answered", fmt.Errorf("got %d bytes, want the connection closed", n)
}

// cancelStorm starts n generations and cancels each shortly after it
// starts: every call must end at once (no stuck stream), and a
// generation right after must succeed.
func (t *Target) cancelStorm(ctx context.Context, n int) (string, error) {
	conn, err := t.grpc()
	if err != nil {
		return "error", err
	}
	client := inferencev1.NewInferenceServiceClient(conn)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(time.Duration(i%8)*5*time.Millisecond, cancel)
			defer cancel()
			st, err := client.Generate(cctx, &inferencev1.GenerateRequest{Model: t.Model, Prompt: "cancel me", MaxTokens: 64})
			if err != nil {
				return
			}
			for {
				if _, err := st.Recv(); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return "stuck", errors.New("cancelled generations did not all end in time")
	}
	st, err := client.Generate(ctx, &inferencev1.GenerateRequest{Model: t.Model, Prompt: "still up", MaxTokens: 1})
	if err == nil {
		for {
			if _, err = st.Recv(); err != nil {
				break
			}
		}
	}
	if !errors.Is(err, io.EOF) {
		return "failed", fmt.Errorf("generation after the storm: %v", err)
	}
	return fmt.Sprintf("%d cancelled", n), nil
}
