// Package jobs is the bookkeeping the mesh's job services (quantizer,
// trainer) share: a table of jobs by ID, by client request ID and in
// creation order with a FIFO of queued ones, paging over it, eviction of
// old finished jobs, a pool of workers woken when a job is queued, job
// IDs, and a bounded log per job.
//
// What a job is and how it runs stays with each service: the Table stores
// the service's own job records (anything with the Entry methods) and is
// guarded by the service's mutex, so the service can change a job and the
// table in one critical section.
package jobs
