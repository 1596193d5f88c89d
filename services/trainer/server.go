package trainer

import (
	"context"

	"google.golang.org/grpc"

	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
)

// Server is the bitnet.trainer.v1.TrainerService over a Trainer: it converts
// messages and maps errors to status codes (unknown job or blob NOT_FOUND,
// bad request INVALID_ARGUMENT, full queue RESOURCE_EXHAUSTED, parent that
// cannot be fine-tuned FAILED_PRECONDITION).
type Server struct {
	trainerv1.UnimplementedTrainerServiceServer
	t *Trainer
}

// NewServer returns the gRPC service for t; the caller owns t.
func NewServer(t *Trainer) *Server { return &Server{t: t} }

// Register registers the service on g.
func (s *Server) Register(g grpc.ServiceRegistrar) { trainerv1.RegisterTrainerServiceServer(g, s) }

// CreateJob implements TrainerService.
func (s *Server) CreateJob(ctx context.Context, req *trainerv1.CreateJobRequest) (*trainerv1.CreateJobResponse, error) {
	r, err := requestFromPB(req)
	if err != nil {
		return nil, toStatus(err)
	}
	j, err := s.t.Create(ctx, r)
	if err != nil {
		return nil, toStatus(err)
	}
	return &trainerv1.CreateJobResponse{Job: jobToPB(j)}, nil
}

// GetJob implements TrainerService.
func (s *Server) GetJob(ctx context.Context, req *trainerv1.GetJobRequest) (*trainerv1.GetJobResponse, error) {
	j, err := s.t.Get(ctx, req.GetJobId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &trainerv1.GetJobResponse{Job: jobToPB(j)}, nil
}

// ListJobs implements TrainerService.
func (s *Server) ListJobs(ctx context.Context, req *trainerv1.ListJobsRequest) (*trainerv1.ListJobsResponse, error) {
	st, err := jobs.StateFromPB(req.GetState())
	if err != nil {
		return nil, toStatus(err)
	}
	page, next, err := s.t.List(ctx, ListOptions{PageSize: int(min(req.GetPageSize(), maxListPageSize)), PageToken: req.GetPageToken(), State: st})
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &trainerv1.ListJobsResponse{NextPageToken: next}
	for _, j := range page {
		j.LossCurve, j.Log = nil, nil // GetJob has them
		resp.Jobs = append(resp.Jobs, jobToPB(j))
	}
	return resp, nil
}

// CancelJob implements TrainerService.
func (s *Server) CancelJob(ctx context.Context, req *trainerv1.CancelJobRequest) (*trainerv1.CancelJobResponse, error) {
	j, err := s.t.Cancel(ctx, req.GetJobId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &trainerv1.CancelJobResponse{Job: jobToPB(j)}, nil
}

// WatchJob implements TrainerService: the current state at once, then one
// message per change (steps, validations, state) until a terminal state.
func (s *Server) WatchJob(req *trainerv1.WatchJobRequest, stream trainerv1.TrainerService_WatchJobServer) error {
	err := s.t.Watch(stream.Context(), req.GetJobId(), func(j Job) error {
		return stream.Send(&trainerv1.WatchJobResponse{Job: jobToPB(j)})
	})
	return toStatus(err)
}
