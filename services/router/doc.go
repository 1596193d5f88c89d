// Package router is the mesh's front door: a bitnet.inference.v1
// InferenceService that forwards each request to one of the inference nodes
// it discovers, chosen for the request.
//
// Nodes register in discovery as ServiceName with service Meta written by
// NodeMeta.Meta: their hardware (package hardware), version, loaded models
// and load (the keys in meta.go, shared with the inference service), kept
// current by PublishMeta. The
// router watches the healthy set (Start) and keeps one pooled gRPC
// connection per node, closed when the node leaves and its last request
// ends.
//
// Scheduling, per request:
//   - hard constraints: every name in `require` (a kernel path or feature
//     flag, hardware.Report.Has) must be offered; when no node qualifies
//     the request fails with FAILED_PRECONDITION naming the unmet
//     constraint and what the nodes offer (UNAVAILABLE when there are no
//     nodes at all);
//   - cost, lowest wins, in units of one request in flight: requests in
//     flight (the router's count or the node's, whichever is higher),
//     queued requests (twice), model not loaded (+4), measured decode
//     speed against the fastest candidate's (1.5 per halving, at most +3;
//     +1.5 for a node that advertises none: ISA names are constraints,
//     never speed), preferred kernel (-6), recent time to first token
//     against the fastest node's (log2 with a 50 ms floor, at most +3; a
//     node passed over forgets a tenth of its excess each time, so it is
//     retried), a recent failure (+1000: used only when nothing else
//     qualifies);
//   - ties (costs within 0.5): the least loaded, then a random choice from
//     a seeded source the router owns (reproducible, and it spreads
//     sequential requests over equal nodes).
//
// Generate retries on another node when the chosen one fails before its
// first message (UNAVAILABLE, RESOURCE_EXHAUSTED, or its connection
// closing), never after a message reached the client; the failed node is
// avoided for a backoff. Deadlines travel with the context, request IDs as
// x-request-id metadata. The first and last messages name the serving node
// (the router overwrites the node's own name with its discovery ID) and
// kernel. ListModels, ModelStatus and UnloadModel aggregate over all
// nodes; ListNodes and NodeInfo answer from the advertisements.
package router
