// Package jobs is the machinery the mesh's job services (quantizer,
// trainer) share: the job states and their API mapping (State, StateToPB,
// StateFromPB), the shared error kinds (ErrNotFound, ErrInvalid,
// ErrQueueFull, ErrClosed, ErrInternal) and their gRPC codes, the common
// settings (Config), a table of jobs by ID, by client request ID and in
// creation order with a FIFO of queued ones, paging over it, eviction and
// expiry of old finished jobs, a pool of workers woken when a job is
// queued, job IDs, a bounded log per job, and a durable store of job
// records (Store, bbolt as the registry uses) with errors that keep their
// kind across a restart (SavedError).
//
// What a job is and how it runs stays with each service: the Table stores
// the service's own job records (anything with the Entry methods) and is
// guarded by the service's mutex, so the service can change a job and the
// table in one critical section; the Store keeps the service's own record
// type as JSON.
package jobs
