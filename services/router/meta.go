package router

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
)

// ServiceName is the discovery service inference nodes register as.
const ServiceName = "bitnet-inference"

// Meta keys an inference node publishes next to hardware.Report.Meta (keys
// of package hardware). Numbers are decimal; missing keys read as zero, so
// a node may publish only what it knows.
const (
	KeyVersion         = "version"             // software version
	KeyLoadedModels    = "loaded_models"       // comma list of resolved refs NAME@N
	KeyInflight        = "inflight"            // requests being generated now
	KeyQueueDepth      = "queue_depth"         // requests waiting
	KeyQueueCapacity   = "queue_capacity"      // RESOURCE_EXHAUSTED beyond it
	KeyP50FirstTokenMS = "p50_first_token_ms"  // median TTFT over the last minute
	KeyTokensPerSecond = "tokens_per_second"   // all requests together
	KeyMemoryBudget    = "memory_budget_bytes" // for loaded models
	KeyMemoryUsed      = "memory_used_bytes"   // by loaded models
	KeyStartTime       = "start_time"          // RFC 3339
)

// ErrNodeMeta reports service Meta that does not describe an inference node.
var ErrNodeMeta = errors.New("router: bad node meta")

// NodeMeta is what an inference node advertises in its service Meta: its
// hardware, version, loaded models and load. The node writes it with Meta
// (at start and whenever it changes); the router reads it with ParseNodeMeta.
type NodeMeta struct {
	Hardware hardware.Report
	Version  string
	// LoadedModels are the resolved versions the node has in memory.
	LoadedModels    []*modelv1.ModelRef
	Inflight        int
	QueueDepth      int
	QueueCapacity   int
	P50FirstTokenMS float64
	TokensPerSecond float64
	MemoryBudget    uint64
	MemoryUsed      uint64
	StartTime       time.Time
}

// Meta flattens m into service Meta (hardware keys included). Loaded models
// that do not fit hardware.MaxMetaValue are left out: Meta is a hint for
// scheduling, and ModelStatus gives the full list.
func (m NodeMeta) Meta() map[string]string {
	out := m.Hardware.Meta()
	out[KeyVersion] = clipValue(m.Version)
	var b strings.Builder
	for _, ref := range m.LoadedModels {
		s := ref.Text()
		if s == "" || b.Len()+len(s)+1 > hardware.MaxMetaValue {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	out[KeyLoadedModels] = b.String()
	out[KeyInflight] = strconv.Itoa(max(m.Inflight, 0))
	out[KeyQueueDepth] = strconv.Itoa(max(m.QueueDepth, 0))
	out[KeyQueueCapacity] = strconv.Itoa(max(m.QueueCapacity, 0))
	out[KeyP50FirstTokenMS] = strconv.FormatFloat(max(m.P50FirstTokenMS, 0), 'g', 6, 64)
	out[KeyTokensPerSecond] = strconv.FormatFloat(max(m.TokensPerSecond, 0), 'g', 6, 64)
	out[KeyMemoryBudget] = strconv.FormatUint(m.MemoryBudget, 10)
	out[KeyMemoryUsed] = strconv.FormatUint(m.MemoryUsed, 10)
	if !m.StartTime.IsZero() {
		out[KeyStartTime] = m.StartTime.UTC().Format(time.RFC3339)
	}
	return out
}

// ParseNodeMeta reads the Meta an inference node registered with. The
// hardware keys are required (hardware.ParseMeta); the others may be
// missing and read as zero, but a present value must parse.
func ParseNodeMeta(meta map[string]string) (NodeMeta, error) {
	hw, err := hardware.ParseMeta(meta)
	if err != nil {
		return NodeMeta{}, fmt.Errorf("%w: %w", ErrNodeMeta, err)
	}
	m := NodeMeta{Hardware: hw, Version: meta[KeyVersion]}
	if s := meta[KeyLoadedModels]; s != "" {
		for part := range strings.SplitSeq(s, ",") {
			ref, err := modelv1.ParseRef(strings.TrimSpace(part))
			if err != nil {
				return NodeMeta{}, fmt.Errorf("%w: key %q: %w", ErrNodeMeta, KeyLoadedModels, err)
			}
			m.LoadedModels = append(m.LoadedModels, ref)
		}
	}
	for _, k := range []struct {
		key string
		v   *int
	}{{KeyInflight, &m.Inflight}, {KeyQueueDepth, &m.QueueDepth}, {KeyQueueCapacity, &m.QueueCapacity}} {
		if s, ok := meta[k.key]; ok {
			n, err := strconv.ParseInt(s, 10, 32)
			if err != nil || n < 0 {
				return NodeMeta{}, fmt.Errorf("%w: key %q: %q is not a count in [0, 2^31)", ErrNodeMeta, k.key, s)
			}
			*k.v = int(n)
		}
	}
	for _, k := range []struct {
		key string
		v   *float64
	}{{KeyP50FirstTokenMS, &m.P50FirstTokenMS}, {KeyTokensPerSecond, &m.TokensPerSecond}} {
		if s, ok := meta[k.key]; ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || f < 0 || f != f || f > 1e12 {
				return NodeMeta{}, fmt.Errorf("%w: key %q: %q is not a number in [0, 1e12]", ErrNodeMeta, k.key, s)
			}
			*k.v = f
		}
	}
	for _, k := range []struct {
		key string
		v   *uint64
	}{{KeyMemoryBudget, &m.MemoryBudget}, {KeyMemoryUsed, &m.MemoryUsed}} {
		if s, ok := meta[k.key]; ok {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return NodeMeta{}, fmt.Errorf("%w: key %q: %q is not a byte count", ErrNodeMeta, k.key, s)
			}
			*k.v = n
		}
	}
	if s, ok := meta[KeyStartTime]; ok && s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if y := t.UTC().Year(); err != nil || y < 1 || y > 9999 { // Meta writes UTC, 4-digit years

			return NodeMeta{}, fmt.Errorf("%w: key %q: %q is not an RFC 3339 time", ErrNodeMeta, KeyStartTime, s)
		}
		m.StartTime = t
	}
	return m, nil
}

// HasModel reports whether ref (any reference form) is among the loaded
// models: by name and version when ref has a version, else by name (an
// alias cannot be resolved here; a loaded version of the model is a good
// enough hint).
func (m NodeMeta) HasModel(ref *modelv1.ModelRef) bool {
	for _, l := range m.LoadedModels {
		if l.GetName() == ref.GetName() && (ref.GetVersion() == 0 || l.GetVersion() == ref.GetVersion()) {
			return true
		}
	}
	return false
}

// clipValue shortens s to a valid Meta value.
func clipValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for len(s) > hardware.MaxMetaValue {
		s = strings.ToValidUTF8(s[:hardware.MaxMetaValue], "")
	}
	return s
}
