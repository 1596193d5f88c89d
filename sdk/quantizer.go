package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/requestid"
)

// QuantizerClient calls bitnet.quantizer.v1.
type QuantizerClient struct {
	rpc   quantizerv1.QuantizerServiceClient
	retry RetryPolicy
}

// RPC returns the generated client, for calls this type does not wrap.
func (c *QuantizerClient) RPC() quantizerv1.QuantizerServiceClient { return c.rpc }

// CreateJob queues a quantization job. Give req a RequestId to make
// retries safe (the server returns the first job for a repeated ID); the
// SDK sets a random one when it is empty.
func (c *QuantizerClient) CreateJob(ctx context.Context, req *quantizerv1.CreateJobRequest) (*quantizerv1.Job, error) {
	if req.GetRequestId() == "" {
		req.RequestId = requestid.New()
	}
	resp, err := c.rpc.CreateJob(ctx, req)
	if err != nil {
		return nil, wrap("create quantizer job", err)
	}
	return resp.GetJob(), nil
}

// Get returns a job with its progress and report.
func (c *QuantizerClient) Get(ctx context.Context, jobID string) (*quantizerv1.Job, error) {
	resp, err := c.rpc.GetJob(ctx, &quantizerv1.GetJobRequest{JobId: jobID})
	if err != nil {
		return nil, wrap(fmt.Sprintf("get job %s", jobID), err)
	}
	return resp.GetJob(), nil
}

// Cancel asks a job to stop.
func (c *QuantizerClient) Cancel(ctx context.Context, jobID string) (*quantizerv1.Job, error) {
	resp, err := c.rpc.CancelJob(ctx, &quantizerv1.CancelJobRequest{JobId: jobID})
	if err != nil {
		return nil, wrap(fmt.Sprintf("cancel job %s", jobID), err)
	}
	return resp.GetJob(), nil
}

// Terminal reports whether a job state is final.
func Terminal(s modelv1.JobState) bool {
	switch s {
	case modelv1.JobState_JOB_STATE_SUCCEEDED, modelv1.JobState_JOB_STATE_FAILED, modelv1.JobState_JOB_STATE_CANCELLED:
		return true
	}
	return false
}

// Watch follows a job until it reaches a terminal state, calling onUpdate
// (when not nil) with every snapshot, and returns the last one. A FAILED or
// CANCELLED job is an error carrying the job's status. When the watch
// stream breaks before the end it is reopened (the server sends the
// current snapshot first).
func (c *QuantizerClient) Watch(ctx context.Context, jobID string, onUpdate func(*quantizerv1.Job)) (*quantizerv1.Job, error) {
	op := fmt.Sprintf("watch job %s", jobID)
	var last *quantizerv1.Job
	err := c.retry.retryLoop(ctx, func(err error) bool { return status.Code(err) == codes.Unavailable }, func() error {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.rpc.WatchJob(sctx, &quantizerv1.WatchJobRequest{JobId: jobID})
		if err != nil {
			return err
		}
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				if last != nil && Terminal(last.GetState()) {
					return nil
				}
				return status.Error(codes.Unavailable, "watch stream ended before the job finished")
			}
			if err != nil {
				return err
			}
			last = msg.GetJob()
			if onUpdate != nil {
				onUpdate(last)
			}
			if Terminal(last.GetState()) {
				return nil
			}
		}
	})
	if err != nil {
		return last, wrap(op, err)
	}
	return last, JobError(last)
}

// JobError returns nil for a job that has not failed or been cancelled,
// else an *Error with the job's status.
func JobError(j *quantizerv1.Job) error {
	switch j.GetState() {
	case modelv1.JobState_JOB_STATE_FAILED, modelv1.JobState_JOB_STATE_CANCELLED:
		st := status.FromProto(j.GetError())
		if j.GetError() == nil {
			code := codes.Unknown
			if j.GetState() == modelv1.JobState_JOB_STATE_CANCELLED {
				code = codes.Canceled
			}
			st = status.New(code, "job "+j.GetState().String())
		}
		return &Error{Op: fmt.Sprintf("job %s", j.GetJobId()), Status: st}
	}
	return nil
}
