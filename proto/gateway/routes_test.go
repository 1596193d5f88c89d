package gateway_test

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/proto/gateway"
)

// fakeRegistry answers with what it was asked, so routes can be checked.
type fakeRegistry struct {
	registryv1.UnimplementedRegistryServiceServer
}

func (fakeRegistry) GetBlob(_ context.Context, r *registryv1.GetBlobRequest) (*registryv1.GetBlobResponse, error) {
	return &registryv1.GetBlobResponse{Blob: &registryv1.Blob{Sha256: r.GetSha256(), SizeBytes: 10}}, nil
}

func (fakeRegistry) DownloadBlob(r *registryv1.DownloadBlobRequest, s grpc.ServerStreamingServer[registryv1.DownloadBlobResponse]) error {
	data := []byte("0123456789")[r.GetOffset():]
	for len(data) > 0 {
		n := min(len(data), 3)
		if err := s.Send(&registryv1.DownloadBlobResponse{Offset: 10 - uint64(len(data)), Data: data[:n], SizeBytes: 10}); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func (fakeRegistry) ResolveModel(_ context.Context, r *registryv1.ResolveModelRequest) (*registryv1.ResolveModelResponse, error) {
	ref, err := modelv1.ParseRef(r.GetRef())
	if err != nil {
		return nil, err
	}
	return &registryv1.ResolveModelResponse{Ref: ref}, nil
}

func (fakeRegistry) UploadBlob(s grpc.ClientStreamingServer[registryv1.UploadBlobRequest, registryv1.UploadBlobResponse]) error {
	var id string
	var got []byte
	for {
		m, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h := m.GetHeader(); h != nil {
			id = h.GetUploadId()
		}
		got = append(got, m.GetChunk()...)
	}
	return s.SendAndClose(&registryv1.UploadBlobResponse{Upload: &registryv1.Upload{
		UploadId: id + "/" + string(got), Offset: uint64(len(got)), State: registryv1.UploadState_UPLOAD_STATE_COMPLETE,
	}})
}

type fakeQuantizer struct {
	quantizerv1.UnimplementedQuantizerServiceServer
}

func (fakeQuantizer) GetJob(_ context.Context, r *quantizerv1.GetJobRequest) (*quantizerv1.GetJobResponse, error) {
	return &quantizerv1.GetJobResponse{Job: &quantizerv1.Job{JobId: "get-" + r.GetJobId()}}, nil
}

func (fakeQuantizer) WatchJob(r *quantizerv1.WatchJobRequest, s grpc.ServerStreamingServer[quantizerv1.WatchJobResponse]) error {
	for _, st := range []modelv1.JobState{modelv1.JobState_JOB_STATE_RUNNING, modelv1.JobState_JOB_STATE_SUCCEEDED} {
		if err := s.Send(&quantizerv1.WatchJobResponse{Job: &quantizerv1.Job{JobId: "watch-" + r.GetJobId(), State: st}}); err != nil {
			return err
		}
	}
	return nil
}

// newMeshGateway serves the registry and quantizer fakes behind one gateway
// mux, as `bitnet up` does.
func newMeshGateway(t *testing.T) *httptest.Server {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	registryv1.RegisterRegistryServiceServer(srv, fakeRegistry{})
	quantizerv1.RegisterQuantizerServiceServer(srv, fakeQuantizer{})
	go srv.Serve(lis) // stopped by the cleanup below
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	mux := gateway.NewServeMux()
	ctx := context.Background()
	if err := registryv1.RegisterRegistryServiceHandler(ctx, mux, conn); err != nil {
		t.Fatal(err)
	}
	if err := quantizerv1.RegisterQuantizerServiceHandler(ctx, mux, conn); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

// TestRoutes checks routes that differ only by a custom verb (`:download`,
// `:watch`, `:stream`), query parameters holding `:`, and client streaming.
func TestRoutes(t *testing.T) {
	hs := newMeshGateway(t)
	chunk := base64.StdEncoding.EncodeToString([]byte("abc"))
	tests := []struct {
		method, path, body string
		wantStatus         int
		want               []string // substrings of the response, in order
	}{
		{"GET", "/v1/registry/blobs/ab12", "", 200, []string{`"sha256":"ab12"`}},
		{"GET", "/v1/registry/blobs/ab12:download?offset=4", "", 200, []string{
			`{"offset":"4","data":"` + base64.StdEncoding.EncodeToString([]byte("456")) + `","size_bytes":"10"}` + "\n",
			`{"offset":"7",`, `"data":"` + base64.StdEncoding.EncodeToString([]byte("789")) + `"`}},
		{"GET", "/v1/registry/resolve?ref=tiny:prod", "", 200, []string{`"ref":{"name":"tiny","alias":"prod"}`}},
		{"GET", "/v1/registry/resolve?ref=Tiny", "", 500, []string{`Tiny`}}, // the fake returns a plain error
		{"POST", "/v1/registry/uploads:stream", `{"header": {"upload_id": "u1"}}` + "\n" + `{"chunk": "` + chunk + `"}` + "\n", 200,
			[]string{`"upload_id":"u1/abc"`, `"state":"UPLOAD_STATE_COMPLETE"`}},
		{"GET", "/v1/quantizer/jobs/j1", "", 200, []string{`"job_id":"get-j1"`}},
		{"GET", "/v1/quantizer/jobs/j1:watch", "", 200, []string{
			`{"job":{"job_id":"watch-j1","state":"JOB_STATE_RUNNING"}}` + "\n",
			`{"job":{"job_id":"watch-j1","state":"JOB_STATE_SUCCEEDED"}}` + "\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, hs.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(string(b), " ", "") // protojson's output spacing is unstable by design
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d, want %d: %s", resp.StatusCode, tt.wantStatus, got)
			}
			rest := got
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, " ", "")
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("got %s, want it to contain %s (in order)", got, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
