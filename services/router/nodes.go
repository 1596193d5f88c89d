package router

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
)

// ewmaAlpha weighs the newest time-to-first-token sample; an average
// older than ttftStale is forgotten, so a node that was slow once (and then
// not chosen) gets another chance.
const (
	ewmaAlpha = 0.3
	ttftStale = 30 * time.Second
	// passOverDecay is the share of its TTFT excess over the chosen node's
	// that a node passed over forgets (see passedOver).
	passOverDecay = 0.1
)

// node is one inference node: its advertisement and the router's pooled
// connection to it. Fields under "table.mu" change only with the table's
// lock held; the stats have their own lock because requests update them.
type node struct {
	id, addr string
	conn     *grpc.ClientConn
	client   inferencev1.InferenceServiceClient
	inflight atomic.Int64 // requests the router has on it now

	// table.mu
	meta    NodeMeta
	metaErr error
	inst    discovery.Instance
	removed bool // gone from discovery; conn closes when inflight drops to 0
	closed  bool

	mu        sync.Mutex
	ewmaTTFT  float64   // ms; 0 until the first sample
	ttftAt    time.Time // of the last sample
	failUntil time.Time // avoided until then after a failure
	failures  int       // consecutive failures, for the backoff
	picks     int64     // requests sent to it (attempts), for tests and ListNodes
}

// nodeSnapshot is a node's state at one instant, what scoring reads.
type nodeSnapshot struct {
	id, addr string
	meta     NodeMeta
	inflight int
	ewmaTTFT float64
	failing  bool // recent failure or a connection in transient failure
	usable   bool // advertised meta parses
	n        *node
}

func (n *node) snapshot(now time.Time) nodeSnapshot {
	n.mu.Lock()
	s := nodeSnapshot{
		id: n.id, addr: n.addr, meta: n.meta, inflight: int(n.inflight.Load()),
		ewmaTTFT: n.ewmaTTFT, failing: now.Before(n.failUntil), usable: n.metaErr == nil, n: n,
	}
	if now.Sub(n.ttftAt) > ttftStale {
		s.ewmaTTFT = 0
	}
	n.mu.Unlock()
	if n.conn.GetState() == connectivity.TransientFailure {
		s.failing = true
	}
	return s
}

// kernel returns the kernel path the node advertises.
func (n *node) kernel() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return string(n.meta.Hardware.BestKernel)
}

// observeTTFT records a successful first token after d.
func (n *node) observeTTFT(d time.Duration) {
	ms := float64(d.Microseconds()) / 1000
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	if n.ewmaTTFT == 0 || now.Sub(n.ttftAt) > ttftStale {
		n.ewmaTTFT = ms
	} else {
		n.ewmaTTFT += ewmaAlpha * (ms - n.ewmaTTFT)
	}
	n.ttftAt = now
	n.failures, n.failUntil = 0, time.Time{}
}

// passedOver moves the TTFT average of a node that was not chosen a step
// towards the chosen node's (chosen; 0 when it has none): a node that
// was slow once must get traffic again to show it recovered, since only
// served requests bring new samples. Each pass closes passOverDecay of
// the gap, so a node slower than the others by any margin is retried
// after some tens of requests elsewhere, and its new sample decides anew.
func (n *node) passedOver(chosen float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if chosen > 0 && n.ewmaTTFT > chosen {
		n.ewmaTTFT -= passOverDecay * (n.ewmaTTFT - chosen)
	}
}

// markFailed avoids the node for a backoff that doubles with each
// consecutive failure, from base up to 32 times base.
func (n *node) markFailed(now time.Time, base time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failUntil = now.Add(base << min(n.failures, 5))
	n.failures++
}

// table is the set of known nodes, fed by discovery.
type table struct {
	mu    sync.RWMutex
	nodes map[string]*node
	dial  func(addr string) (*grpc.ClientConn, error)
	log   *zap.Logger
}

func newTable(dial func(string) (*grpc.ClientConn, error), log *zap.Logger) *table {
	return &table{nodes: map[string]*node{}, dial: dial, log: log}
}

// apply makes the table match the healthy instances in list: new nodes get
// a connection, changed meta is re-read, and nodes that left are removed
// (their connection closed once their requests finish).
func (t *table) apply(list []discovery.Instance) {
	seen := make(map[string]bool, len(list))
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, inst := range list {
		if !inst.Healthy {
			continue
		}
		seen[inst.ID] = true
		addr := inst.HostPort()
		n := t.nodes[inst.ID]
		if n != nil && n.addr != addr { // same ID, new address: a new node
			t.removeLocked(n)
			n = nil
		}
		if n == nil {
			conn, err := t.dial(addr)
			if err != nil {
				t.log.Warn("node dial failed", zap.String("node", inst.ID), zap.String("addr", addr), zap.Error(err))
				continue
			}
			conn.Connect() // warm up so the first request does not pay the handshake
			n = &node{id: inst.ID, addr: addr, conn: conn, client: inferencev1.NewInferenceServiceClient(conn)}
			t.nodes[inst.ID] = n
			t.log.Info("node added", zap.String("node", inst.ID), zap.String("addr", addr))
		} else if maps.Equal(n.inst.Meta, inst.Meta) {
			continue
		}
		n.inst = inst
		meta, err := ParseNodeMeta(inst.Meta)
		n.mu.Lock()
		if err != nil {
			if n.metaErr == nil {
				t.log.Warn("node meta unreadable: node not used", zap.String("node", inst.ID), zap.Error(err))
			}
			n.metaErr = err
		} else {
			n.meta, n.metaErr = meta, nil
		}
		n.mu.Unlock()
	}
	for id, n := range t.nodes {
		if !seen[id] {
			t.removeLocked(n)
		}
	}
}

func (t *table) removeLocked(n *node) {
	delete(t.nodes, n.id)
	n.removed = true
	t.log.Info("node removed", zap.String("node", n.id), zap.Int64("inflight", n.inflight.Load()))
	if n.inflight.Load() == 0 {
		t.closeLocked(n)
	}
}

func (t *table) closeLocked(n *node) {
	if !n.closed {
		n.closed = true
		_ = n.conn.Close()
	}
}

// snapshot returns every node's state, sorted by ID.
func (t *table) snapshot() []nodeSnapshot {
	now := time.Now()
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]nodeSnapshot, 0, len(t.nodes))
	for _, id := range slices.Sorted(maps.Keys(t.nodes)) {
		out = append(out, t.nodes[id].snapshot(now))
	}
	return out
}

// acquire counts a request on n, unless n has left the table since the
// snapshot it was chosen from.
func (t *table) acquire(n *node) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if n.removed {
		return false
	}
	n.inflight.Add(1)
	n.mu.Lock()
	n.picks++
	n.mu.Unlock()
	return true
}

// release ends a request acquired on n, closing n's connection when n has
// left the table and this was its last request.
func (t *table) release(n *node) {
	if n.inflight.Add(-1) > 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if n.removed && n.inflight.Load() == 0 {
		t.closeLocked(n)
	}
}

// closeAll closes every connection (the router is closing).
func (t *table) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range t.nodes {
		n.removed = true
		t.closeLocked(n)
	}
	clear(t.nodes)
}
