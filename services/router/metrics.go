package router

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
)

// Metric names the router exports (next to shared/server's per-RPC ones).
const (
	MetricRouted   = "bitnet_router_routed_total"        // attempts sent to a node, by node and method
	MetricRetries  = "bitnet_router_retries_total"       // attempts that failed before a token and were retried, by node and code
	MetricUnrouted = "bitnet_router_unrouted_total"      // requests no node could take, by code
	MetricTTFT     = "bitnet_router_first_token_seconds" // time to first token through the router, by node
	MetricNodes    = "bitnet_router_nodes"               // healthy nodes with readable meta
)

type routerMetrics struct {
	routed   *prometheus.CounterVec
	retries  *prometheus.CounterVec
	unrouted *prometheus.CounterVec
	ttft     *prometheus.HistogramVec
}

func newRouterMetrics(reg *metrics.Registry, nodes func() float64) (*routerMetrics, error) {
	m := &routerMetrics{}
	var err error
	counter := func(name, help string, labels ...string) (*prometheus.CounterVec, error) {
		return metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
	}
	if m.routed, err = counter(MetricRouted, "Requests (attempts) sent to a node, by node and method.", "node", "method"); err != nil {
		return nil, fmt.Errorf("router: metrics: %w", err)
	}
	if m.retries, err = counter(MetricRetries, "Attempts that failed before the first token and went to another node, by node and code.", "node", "code"); err != nil {
		return nil, fmt.Errorf("router: metrics: %w", err)
	}
	if m.unrouted, err = counter(MetricUnrouted, "Requests no node could take, by code.", "code"); err != nil {
		return nil, fmt.Errorf("router: metrics: %w", err)
	}
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	if m.ttft, err = metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricTTFT,
		Help: "Time to first token of Generate through the router, seconds, by node.", Buckets: buckets}, []string{"node"})); err != nil {
		return nil, fmt.Errorf("router: metrics: %w", err)
	}
	if err := reg.GaugeFunc(prometheus.GaugeOpts{Name: MetricNodes, Help: "Healthy inference nodes the router can use."}, nodes); err != nil {
		return nil, fmt.Errorf("router: metrics: %w", err)
	}
	return m, nil
}

func (m *routerMetrics) retried(node string, err error) {
	m.retries.WithLabelValues(node, status.Code(err).String()).Inc()
}

func (m *routerMetrics) noNode(err error) {
	m.unrouted.WithLabelValues(status.Code(err).String()).Inc()
}
