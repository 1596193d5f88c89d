// Package trainer runs quantization-aware training jobs (package
// shared/train) as a service: from scratch (a Hugging Face BitNet
// config.json) or as a fine-tune of a registry model, on text or JSONL data
// stored as registry blobs (or inline text for in-process callers), with the
// result stored in the registry as a new version with its lineage.
//
// A Trainer owns a bounded queue and its worker goroutines (stopped by
// Close). A job moves QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED
// (RUNNING -> CANCELLING -> CANCELLED when cancelled while running). The
// Trainer fetches a job's inputs into the job's work directory
// (WORKDIR/jobs/ID: data, tokenizer.json, the parent's files), hands it to a
// Runner that tokenises and trains there (LocalRunner: in process; a
// Kubernetes runner would run the same RunSpec in a pod over a shared
// volume), and uploads the exported Hugging Face directory (config.json,
// model.safetensors with F32 master weights, tokenizer.json) with lineage
// (job, parent, sha256 of the data files, model config and options, final
// train loss, validation loss and perplexity); on request also a GGUF
// (TQ2_0/TQ1_0) as a second version whose parent is the first. Periodic
// checkpoints (master weights and optimiser state) stay in the work
// directory for resuming and are copied to registry blobs (Job.Checkpoints).
//
// Validation: a held-out tail of the data, or a separate validation file
// appended after the training tokens with the split placed after the last
// whole training sequence, so no validation token is trained on.
//
// Every change of a job is persisted in WORKDIR/jobs.db (a jobs.Store: one
// durable bbolt transaction per change, so a SIGKILL loses nothing saved;
// job.json files of earlier versions are taken in once). WithRetention
// forgets finished jobs, records and directories, past an age. A Trainer
// opened on a work directory takes back its jobs:
// finished ones for Get and List, unfinished ones (interrupted by Close or a
// crash) queued again; they resume from the last checkpoint in their work
// directory, and since shared/train resumes bit for bit, the result is the
// one of an uninterrupted run. Close therefore leaves unfinished jobs
// queued (on disk) rather than cancelling them.
//
// Cancel stops a running job before its next optimiser step (the training
// loop checks its context per micro-batch); its checkpoint is kept.
//
// Source and Sink (package artifact) are the trainer's view of the
// registry; registry.NewBackend adapts an in-process *registry.Store and
// registry.NewClient its gRPC API. The job states, the shared error kinds
// and the job table are package jobs'. Server adapts a Trainer to the
// bitnet.trainer.v1 gRPC API.
package trainer
