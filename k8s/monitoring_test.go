package k8s

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/services/router"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
	"github.com/bitnet-mesh/bitnet-mesh/shared/server"
	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"
)

// exportedSeries is every series name the code exports: the services'
// Metric* names, the standard gRPC metrics, the Go and process collectors,
// with the _bucket, _sum and _count series of the histograms.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	reg := metrics.NewRegistry()
	sm, err := telemetry.ServerMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := telemetry.ClientMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams { // the runtime collectors
		names[f.GetName()] = true
	}
	descs := make(chan *prometheus.Desc, 64)
	go func() {
		sm.Describe(descs)
		cm.Describe(descs)
		close(descs)
	}()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	histograms := []string{
		inference.MetricTTFT, inference.MetricInterToken, inference.MetricE2E, inference.MetricQueueTime,
		inference.MetricPrefillTime, inference.MetricDecodeTime, inference.MetricBatchSize,
		router.MetricTTFT, server.MetricHTTPLatency,
		"grpc_server_handling_seconds", "grpc_client_handling_seconds",
	}
	for _, n := range append(histograms, []string{
		inference.MetricPromptTokens, inference.MetricGenerationTokens, inference.MetricRequestSuccess,
		inference.MetricRunning, inference.MetricWaiting, inference.MetricKVCacheUsage, inference.MetricModelLoadTime,
		inference.MetricTokensPerSecond, inference.MetricQueueCapacity, inference.MetricQueueDepth, inference.MetricActiveRequests, inference.MetricLoadedModels,
		inference.MetricMemoryUsedBytes, inference.MetricMemoryBudgetBytes,
		router.MetricRouted, router.MetricRetries, router.MetricUnrouted, router.MetricNodes,
		server.MetricHTTPHandled, server.MetricGRPCHandled,
	}...) {
		names[n] = true
	}
	for _, h := range histograms {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			names[h+s] = true
		}
	}
	for _, std := range []string{"grpc_server_started_total", "grpc_server_msg_received_total", "grpc_server_msg_sent_total",
		"grpc_client_started_total", "grpc_client_handled_total", "grpc_client_msg_received_total", "grpc_client_msg_sent_total"} {
		if !names[std] {
			t.Errorf("the gRPC provider does not describe %s", std)
		}
	}
	return names
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "le": true, "inf": true, "nan": true}
)

// seriesIn returns the metric names a PromQL expression selects.
func seriesIn(expr string) []string {
	e := promString.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	e = promRange.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " ")
		if strings.HasPrefix(rest, "(") || promKeywords[strings.ToLower(name)] {
			continue // a function or keyword
		}
		if loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // part of a number such as 1e3
		}
		out = append(out, name)
	}
	return out
}

func TestSeriesIn(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`histogram_quantile(0.99, sum by (le, model_name) (rate(bitnet:time_to_first_token_seconds_bucket{model_name=~"$model"}[5m])))`, []string{"bitnet:time_to_first_token_seconds_bucket"}},
		{`sum(rate(a_total[5m])) / sum(rate(b_count{x="y"}[1m]))`, []string{"a_total", "b_count"}},
		{`max(bitnet_router_nodes) > 0.5`, []string{"bitnet_router_nodes"}},
		{`label_values(bitnet:generation_tokens_total, model_name)`, []string{"bitnet:generation_tokens_total", "model_name"}},
	}
	for _, tt := range tests {
		if got := seriesIn(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("seriesIn(%q): got %v, want %v", tt.expr, got, tt.want)
		}
	}
}

// TestDashboardQueriesExportedSeries checks that every query of the Grafana
// dashboard selects only series the code exports, so a renamed metric
// cannot leave an empty panel behind.
func TestDashboardQueriesExportedSeries(t *testing.T) {
	b, err := os.ReadFile("monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	exported := exportedSeries(t)
	queries := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			names := seriesIn(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q selects no series", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("panel %q: query %q names %s, which the code does not export", p.Title, tg.Expr, n)
				}
			}
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition == "" {
			continue
		}
		if n := seriesIn(v.Definition)[0]; !exported[n] {
			t.Errorf("variable query %q names %s, which the code does not export", v.Definition, n)
		}
	}
	if queries < 10 {
		t.Errorf("got %d queries, want the serving dashboard (10 or more)", queries)
	}
}

// TestScrapeConfig checks the Prometheus scrape config parses, keeps the
// port named metrics and labels the job as the dashboard queries it.
func TestScrapeConfig(t *testing.T) {
	b, err := os.ReadFile("monitoring/prometheus-scrape.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName     string `json:"job_name"`
			MetricsPath string `json:"metrics_path"`
			Relabel     []struct {
				SourceLabels []string `json:"source_labels"`
				Regex        string   `json:"regex"`
				Action       string   `json:"action"`
			} `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.UnmarshalStrict(b, &cfg, func(d *json.Decoder) *json.Decoder { return d }); err != nil {
		// UnmarshalStrict rejects fields the struct lacks: decode loosely.
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].JobName != "bitnet" || cfg.ScrapeConfigs[0].MetricsPath != "/metrics" {
		t.Fatalf("got %+v, want one job bitnet scraping /metrics", cfg.ScrapeConfigs)
	}
	keepsMetricsPort := slices.ContainsFunc(cfg.ScrapeConfigs[0].Relabel, func(r struct {
		SourceLabels []string `json:"source_labels"`
		Regex        string   `json:"regex"`
		Action       string   `json:"action"`
	}) bool {
		return r.Action == "keep" && r.Regex == "metrics" && slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_container_port_name"})
	})
	if !keepsMetricsPort {
		t.Error("the scrape config does not keep only the container port named metrics")
	}
}
