package quantizer

import (
	"context"

	"google.golang.org/grpc"

	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
)

// Server is the bitnet.quantizer.v1.QuantizerService over a Quantizer: it
// converts messages and maps errors to status codes (unknown job NOT_FOUND,
// bad request INVALID_ARGUMENT, full queue RESOURCE_EXHAUSTED).
type Server struct {
	quantizerv1.UnimplementedQuantizerServiceServer
	q *Quantizer
}

// NewServer returns the gRPC service for q; the caller owns q.
func NewServer(q *Quantizer) *Server { return &Server{q: q} }

// Register registers the service on g.
func (s *Server) Register(g grpc.ServiceRegistrar) { quantizerv1.RegisterQuantizerServiceServer(g, s) }

// CreateJob implements QuantizerService.
func (s *Server) CreateJob(ctx context.Context, req *quantizerv1.CreateJobRequest) (*quantizerv1.CreateJobResponse, error) {
	r, err := requestFromPB(req)
	if err != nil {
		return nil, toStatus(err)
	}
	j, err := s.q.Create(ctx, r)
	if err != nil {
		return nil, toStatus(err)
	}
	return &quantizerv1.CreateJobResponse{Job: jobToPB(j, true, true)}, nil
}

// GetJob implements QuantizerService.
func (s *Server) GetJob(ctx context.Context, req *quantizerv1.GetJobRequest) (*quantizerv1.GetJobResponse, error) {
	j, err := s.q.Get(ctx, req.GetJobId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &quantizerv1.GetJobResponse{Job: jobToPB(j, true, true)}, nil
}

// ListJobs implements QuantizerService.
func (s *Server) ListJobs(ctx context.Context, req *quantizerv1.ListJobsRequest) (*quantizerv1.ListJobsResponse, error) {
	st, err := jobs.StateFromPB(req.GetState())
	if err != nil {
		return nil, toStatus(err)
	}
	page, next, err := s.q.List(ctx, ListOptions{PageSize: int(min(req.GetPageSize(), maxListPageSize)), PageToken: req.GetPageToken(), State: st})
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &quantizerv1.ListJobsResponse{NextPageToken: next}
	for _, j := range page {
		resp.Jobs = append(resp.Jobs, jobToPB(j, false, false))
	}
	return resp, nil
}

// CancelJob implements QuantizerService.
func (s *Server) CancelJob(ctx context.Context, req *quantizerv1.CancelJobRequest) (*quantizerv1.CancelJobResponse, error) {
	j, err := s.q.Cancel(ctx, req.GetJobId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &quantizerv1.CancelJobResponse{Job: jobToPB(j, true, true)}, nil
}

// WatchJob implements QuantizerService: the current state at once, then one
// message per change until a terminal state. Only the last message carries
// the per-linear report entries.
func (s *Server) WatchJob(req *quantizerv1.WatchJobRequest, stream quantizerv1.QuantizerService_WatchJobServer) error {
	err := s.q.Watch(stream.Context(), req.GetJobId(), func(j Job) error {
		return stream.Send(&quantizerv1.WatchJobResponse{Job: jobToPB(j, j.State.Terminal(), true)})
	})
	return toStatus(err)
}
