package quantizer

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
)

// serve runs the gRPC service of q on a loopback port and returns a client.
func serve(t *testing.T, q *Quantizer) quantizerv1.QuantizerServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	NewServer(q).Register(g)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	t.Cleanup(func() {
		g.Stop()
		<-done
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return quantizerv1.NewQuantizerServiceClient(conn)
}

func modelSource(ref string) *quantizerv1.Source {
	return &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: ref}}
}

func wantCode(t *testing.T, what string, err error, c codes.Code) {
	t.Helper()
	if status.Code(err) != c {
		t.Errorf("%s: got %v, want code %v", what, err, c)
	}
}

func TestServer(t *testing.T) {
	e, _ := pushed(t, WithQueueSize(1))
	c := serve(t, e.q)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	resp, err := c.CreateJob(ctx, &quantizerv1.CreateJobRequest{
		Source: modelSource("tiny"), Target: modelv1.QuantType_QUANT_TYPE_TQ1_0,
		Output:      &quantizerv1.Output{Name: "tiny-tq1"},
		Calibration: &quantizerv1.Calibration{TextSource: &quantizerv1.Calibration_Text{Text: "By the Rays of Light I understand its least Parts."}, ContextLength: 16},
	})
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	id := resp.GetJob().GetJobId()
	if got := resp.GetJob().GetRequest().GetSource().GetModel(); got != "tiny@1" {
		t.Errorf("request source %q, want pinned tiny@1", got)
	}
	stream, err := c.WatchJob(ctx, &quantizerv1.WatchJobRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*quantizerv1.Job
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("WatchJob: %v", err)
		}
		msgs = append(msgs, m.GetJob())
	}
	if len(msgs) < 2 {
		t.Fatalf("%d watch messages, want at least the first and the last", len(msgs))
	}
	for _, m := range msgs[:len(msgs)-1] {
		if len(m.GetReport().GetLinears()) != 0 || m.GetState() == modelv1.JobState_JOB_STATE_SUCCEEDED {
			t.Errorf("intermediate message in state %v with %d linears, want non-terminal without linears", m.GetState(), len(m.GetReport().GetLinears()))
		}
	}
	end := msgs[len(msgs)-1]
	rep := end.GetReport()
	if end.GetState() != modelv1.JobState_JOB_STATE_SUCCEEDED || end.GetResult().GetName() != "tiny-tq1" || end.GetResult().GetVersion() != 1 ||
		len(rep.GetLinears()) != 14 || rep.GetCalibrationTokens() == 0 || rep.GetPerplexityAfter() <= 1 || end.GetEndTime() == nil {
		t.Fatalf("last message: state %v result %v report tokens %d ppl %g linears %d error %v, want succeeded tiny-tq1@1 with a full report",
			end.GetState(), end.GetResult(), rep.GetCalibrationTokens(), rep.GetPerplexityAfter(), len(rep.GetLinears()), end.GetError())
	}
	if v, err := e.store.Resolve(ctx, "tiny-tq1@1"); err != nil || v.Metadata.QuantType != "TQ1_0" {
		t.Errorf("stored version: %+v, %v; want TQ1_0", v.Metadata, err)
	}

	got, err := c.GetJob(ctx, &quantizerv1.GetJobRequest{JobId: id})
	if err != nil || len(got.GetJob().GetReport().GetLinears()) != 14 {
		t.Errorf("GetJob: %v, want the job with its report", err)
	}
	var log []string
	for _, l := range got.GetJob().GetLog() {
		if l.GetTime() == nil {
			t.Errorf("log line %q has no time", l.GetMessage())
		}
		log = append(log, l.GetMessage())
	}
	wantLog := []string{"started: tiny@1 to TQ1_0", "fetched ", "loaded ", "quantized 14 linear weights to TQ1_0", "evaluated on ", "succeeded: stored as tiny-tq1@1"}
	if len(log) != len(wantLog) {
		t.Errorf("log: got %q, want lines starting %q", log, wantLog)
	} else {
		for i, w := range wantLog {
			if !strings.HasPrefix(log[i], w) {
				t.Errorf("log line %d: got %q, want it to start %q", i, log[i], w)
			}
		}
	}
	if n := len(end.GetLog()); n != len(log) {
		t.Errorf("last watch message: got %d log lines, want %d", n, len(log))
	}
	list, err := c.ListJobs(ctx, &quantizerv1.ListJobsRequest{State: modelv1.JobState_JOB_STATE_SUCCEEDED})
	if err != nil || len(list.GetJobs()) != 1 || list.GetJobs()[0].GetJobId() != id || len(list.GetJobs()[0].GetReport().GetLinears()) != 0 ||
		len(list.GetJobs()[0].GetLog()) != 0 {
		t.Errorf("ListJobs: %v, %v; want the job without linears and log", list, err)
	}
	cr, err := c.CancelJob(ctx, &quantizerv1.CancelJobRequest{JobId: id})
	if err != nil || cr.GetJob().GetState() != modelv1.JobState_JOB_STATE_SUCCEEDED {
		t.Errorf("CancelJob of a finished job: %v, want it unchanged", err)
	}

	// Errors.
	_, err = c.GetJob(ctx, &quantizerv1.GetJobRequest{JobId: "qj-nope"})
	wantCode(t, "GetJob unknown", err, codes.NotFound)
	_, err = c.CancelJob(ctx, &quantizerv1.CancelJobRequest{JobId: "qj-nope"})
	wantCode(t, "CancelJob unknown", err, codes.NotFound)
	ws, err := c.WatchJob(ctx, &quantizerv1.WatchJobRequest{JobId: "qj-nope"})
	if err == nil {
		_, err = ws.Recv()
	}
	wantCode(t, "WatchJob unknown", err, codes.NotFound)
	_, err = c.CreateJob(ctx, &quantizerv1.CreateJobRequest{Source: modelSource("tiny"), Target: modelv1.QuantType_QUANT_TYPE_F16})
	wantCode(t, "CreateJob F16 target", err, codes.InvalidArgument)
	_, err = c.CreateJob(ctx, &quantizerv1.CreateJobRequest{})
	wantCode(t, "CreateJob without source", err, codes.InvalidArgument)
	_, err = c.CreateJob(ctx, &quantizerv1.CreateJobRequest{Source: modelSource("nope")})
	wantCode(t, "CreateJob unknown model", err, codes.NotFound)
	_, err = c.CreateJob(ctx, &quantizerv1.CreateJobRequest{Source: &quantizerv1.Source{Source: &quantizerv1.Source_Files{Files: &quantizerv1.SourceFiles{
		Files: []*quantizerv1.SourceFile{{Path: "model.safetensors", Sha256: "00"}},
	}}}})
	wantCode(t, "CreateJob bad digest", err, codes.InvalidArgument)

	// A full queue, and cancelling a running job over the API.
	e.src.close()
	run, err := c.CreateJob(ctx, &quantizerv1.CreateJobRequest{Source: modelSource("tiny")})
	if err != nil {
		t.Fatal(err)
	}
	<-e.src.hits
	if _, err := c.CreateJob(ctx, &quantizerv1.CreateJobRequest{Source: modelSource("tiny")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateJob(ctx, &quantizerv1.CreateJobRequest{Source: modelSource("tiny")})
	wantCode(t, "CreateJob on a full queue", err, codes.ResourceExhausted)
	if _, err := c.CancelJob(ctx, &quantizerv1.CancelJobRequest{JobId: run.GetJob().GetJobId()}); err != nil {
		t.Fatal(err)
	}
	j := wait(t, e.q, run.GetJob().GetJobId())
	pj := jobToPB(j, true, true)
	if pj.GetState() != modelv1.JobState_JOB_STATE_CANCELLED || codes.Code(pj.GetError().GetCode()) != codes.Canceled {
		t.Errorf("cancelled job: state %v error %v, want CANCELLED with code Canceled", pj.GetState(), pj.GetError())
	}
	e.src.open()
}
