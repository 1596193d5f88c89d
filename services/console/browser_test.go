package console_test

// The console in a real browser: headless Chromium (Debian's chromium),
// driven over the DevTools protocol by chromedp, against a real `bitnet up`
// (mesh.Up: registry, quantizer, trainer, router and an inference node on
// one kernel) plus a second inference node on the generic kernel, found
// through the same discovery. The test skips with -short, and when
// Chromium is missing unless $CI is set.
//
// Screenshots of every page go to a temporary directory (logged), or to
// $BITNET_CONSOLE_SCREENSHOTS. The README's two are rewritten with
//
//	go test ./services/console/ -run TestBrowser -update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/services/mesh"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

var update = flag.Bool("update", false, "rewrite the README's console screenshots (docs/console/*.png)")

// readmeShots are the screenshots the README shows.
var readmeShots = []string{"overview.png", "jobs.png"}

const (
	tinyModel = "../../testdata/models/tiny-gqa-tied-f32"
	tokenizer = "../../testdata/tokenizer/opticks-bpe600.json"
	trainText = "../trainer/testdata/opticks-8k.txt"
	// pageWeightLimit is the target for the first load.
	pageWeightLimit = 300 << 10
)

// wideConfig is a model whose linears are 256 wide, the narrowest GGUF
// TQ2_0 stores, so the trained model can be quantized from the console.
const wideConfig = `{"architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "vocab_size": 600,
  "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 1, "num_attention_heads": 4,
  "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
  "hidden_act": "relu2", "tie_word_embeddings": true, "bos_token_id": 598, "eos_token_id": 599}`

// findChromium returns the browser to drive, skipping the test without one
// (failing it under CI, where tools/ci/test.sh installs it).
func findChromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	if p := os.Getenv("BITNET_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH under CI (tools/ci/test.sh installs Debian's chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install chromium, or set BITNET_CHROMIUM)")
	return ""
}

// keepRegistered is a discovery registry whose instances stay registered
// when their process stops, as after a crash: only the failing health
// check takes them out.
type keepRegistered struct{ discovery.Registry }

func (keepRegistered) Deregister(context.Context, string) error { return nil }

// testMesh is `bitnet up` with a second inference node.
type testMesh struct {
	base        string // the console's URL
	grpcAddr    string
	kernels     map[string]string // node name -> kernel
	killNode    func()            // stops the second node without deregistering it
	secondNode  string
	sdk         *sdk.Client
	conn        *grpc.ClientConn
	upKernel    string
	upNodeName  string
	stopMesh    func()
	meshStopped chan error
}

// startMesh starts `bitnet up` and the second node; configure, when set,
// edits their configurations, and sdkOpts go to the test's SDK client.
func startMesh(t *testing.T, configure func(up, node *mesh.Config), sdkOpts ...sdk.Option) *testMesh {
	t.Helper()
	best := kernels.Generic
	for _, k := range kernels.Supported() {
		if k == kernels.AVX2 || k == kernels.NEON {
			best = k
		}
	}
	mem := discovery.NewMemory()
	t.Cleanup(func() { _ = mem.Close() })
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	m := &testMesh{kernels: map[string]string{}, upKernel: string(best), upNodeName: "local", secondNode: "node-generic", meshStopped: make(chan error, 1)}
	ready := make(chan mesh.Endpoints, 1)
	cfg := mesh.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: data, Discovery: mem, Threads: 1,
		Kernel: best, PublishInterval: 250 * time.Millisecond, CheckInterval: 500 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Version: "browser-test",
	}
	ncfg := mesh.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DataDir: data, Discovery: keepRegistered{mem},
		NodeName: m.secondNode, Kernel: kernels.Generic, Threads: 1,
		PublishInterval: 250 * time.Millisecond, CheckInterval: 500 * time.Millisecond, ShutdownTimeout: time.Second,
		Version: "browser-test",
	}
	if configure != nil {
		configure(&cfg, &ncfg)
	}
	go func() { m.meshStopped <- mesh.Up(ctx, cfg, func(e mesh.Endpoints) { ready <- e }) }()
	var e mesh.Endpoints
	select {
	case e = <-ready:
	case err := <-m.meshStopped:
		cancel()
		t.Fatalf("bitnet up ended early: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("bitnet up not ready within 60 s")
	}
	m.stopMesh = cancel
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-m.meshStopped:
			if err != nil {
				t.Errorf("bitnet up: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("bitnet up did not stop within 30 s")
		}
	})
	m.base = "http://" + e.HTTP.String() + "/"
	m.grpcAddr = e.GRPC.String()
	m.kernels[m.upNodeName] = string(best)

	// The second node: generic kernel, same discovery, the mesh's registry.
	ncfg.RegistryAddr = m.grpcAddr
	node, err := mesh.Build(mesh.Inference, ncfg)
	if err != nil {
		t.Fatal(err)
	}
	nctx, ncancel := context.WithCancel(context.Background())
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- node.Serve(nctx) }()
	var once sync.Once
	m.killNode = func() {
		once.Do(func() {
			ncancel()
			if err := <-nodeDone; err != nil {
				t.Errorf("%s: %v", m.secondNode, err)
			}
		})
	}
	t.Cleanup(m.killNode)
	m.kernels[m.secondNode] = string(kernels.Generic)

	m.sdk, err = sdk.Dial(context.Background(), m.grpcAddr, append([]sdk.Option{sdk.WithRetry(3, 50*time.Millisecond)}, sdkOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.sdk.Close() })
	m.conn, err = grpc.NewClient(m.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.conn.Close() })
	return m
}

// putBlob uploads data as a registry blob and returns its sha256.
func putBlob(ctx context.Context, t *testing.T, rc registryv1.RegistryServiceClient, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	up, err := rc.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: digest, SizeBytes: uint64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if up.GetUpload().GetState() == registryv1.UploadState_UPLOAD_STATE_COMPLETE {
		return digest
	}
	s, err := rc.UploadBlob(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Header{Header: &registryv1.UploadBlobHeader{UploadId: up.GetUpload().GetUploadId()}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Chunk{Chunk: data}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	return digest
}

// train starts a training job of the wide model on the Opticks excerpt and
// returns its ID.
func (m *testMesh) train(ctx context.Context, t *testing.T, steps uint32, output string) string {
	t.Helper()
	rc := registryv1.NewRegistryServiceClient(m.conn)
	text, err := os.ReadFile(trainText)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	tc := trainerv1.NewTrainerServiceClient(m.conn)
	job, err := tc.CreateJob(ctx, &trainerv1.CreateJobRequest{
		Model:           &trainerv1.ModelSpec{Init: &trainerv1.ModelSpec_ConfigJson{ConfigJson: wideConfig}, TokenizerSha256: putBlob(ctx, t, rc, tok)},
		Dataset:         &trainerv1.Dataset{Sha256: []string{putBlob(ctx, t, rc, text)}, ValidationFraction: 0.1},
		Hyperparameters: &trainerv1.Hyperparameters{Steps: steps, BatchSize: 2, SeqLen: 32, LearningRate: 3e-3, Seed: 7},
		Output:          &trainerv1.Output{Name: output},
		EvalInterval:    10, EvalTokens: 256, CheckpointInterval: 30, Threads: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return job.GetJob().GetJobId()
}

// browser drives one Chromium tab.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string

	mu       sync.Mutex
	problems []string // uncaught exceptions, CSP violations, console errors
	bytes    float64  // bytes transferred (network.LoadingFinished)
	requests int
}

func newBrowser(t *testing.T, bin, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // start the browser without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	shots := os.Getenv("BITNET_CONSOLE_SCREENSHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "bitnet-console-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	b := &browser{t: t, ctx: ctx, base: base, shots: shots}

	// Subscribe before enabling the domains, so that no event is lost.
	finished := chromedp.Events(ctx, network.LoadingFinished)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	entries := chromedp.Events(ctx, log.EntryAdded)
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev, err := range finished {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.bytes += ev.EncodedDataLength
			b.requests++
			b.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			b.problem("uncaught exception: " + msg)
		}
	}()
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			// Failed API calls (a 404 the page shows as a message) are
			// logged by the network; scripts, CSP and the rest must be clean.
			if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
				b.problem(fmt.Sprintf("console %s: %s", ev.Entry.Source, ev.Entry.Text))
			}
		}
	}()
	return b
}

func (b *browser) problem(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, s)
}

// do runs actions with a deadline, failing the test on an error.
func (b *browser) do(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// wait polls a JavaScript expression until it is truthy.
func (b *browser) wait(what, expr string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		b.t.Fatalf("%s: not within %v: %v", what, timeout, err)
	}
}

// open navigates to a page of the console (a fragment such as "#/models").
func (b *browser) open(fragment string) {
	b.t.Helper()
	b.do("open "+fragment, 20*time.Second, chromedp.Evaluate[chromedp.Void](fmt.Sprintf("location.hash = %q", fragment)))
	b.wait("the console routes to "+fragment, fmt.Sprintf("location.hash === %q && document.documentElement.dataset.app === 'ready'", fragment), 10*time.Second)
}

func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if *update && slices.Contains(readmeShots, name) {
		dst := filepath.Join("..", "..", "docs", "console", name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("wrote %s", dst)
	}
}

// resetPerf restarts the renderer's metrics, counted in main-thread CPU
// time (so that other processes on the machine do not inflate them).
func (b *browser) resetPerf(t *testing.T) {
	t.Helper()
	_, _ = chromedp.Call(b.ctx, performance.Disable, cdp.Empty{})
	if _, err := chromedp.Call(b.ctx, performance.Enable, performance.EnableParams{TimeDomain: performance.EnableTimeDomainThreadTicks}); err != nil {
		t.Fatal(err)
	}
}

// measureLoad logs the bytes transferred since the counters were reset and
// the page's timings, and returns the bytes.
func (b *browser) measureLoad(t *testing.T, what string, start time.Time) float64 {
	t.Helper()
	b.mu.Lock()
	weight, reqs := b.bytes, b.requests
	b.mu.Unlock()
	marks := eval[map[string]float64](b, `(() => {
		const nav = performance.getEntriesByType('navigation')[0];
		const m = (n) => (performance.getEntriesByName(n)[0] || {}).startTime || 0;
		return {dcl: nav.domContentLoadedEventEnd, shell: m('console-shell'), data: m('console-data')};
	})()`)
	cpu := map[string]float64{}
	if res, err := chromedp.Call(b.ctx, performance.GetMetrics, cdp.Empty{}); err == nil {
		for _, mt := range res.Metrics {
			cpu[mt.Name] = mt.Value
		}
	}
	t.Logf("%s: %.1f KiB transferred in %d requests; DOMContentLoaded %.0f ms, shell interactive %.0f ms, first node data on screen %.0f ms (%v wall); "+
		"main-thread CPU: tasks %.0f ms, script %.0f ms, layout %.0f ms, style %.0f ms",
		what, weight/1024, reqs, marks["dcl"], marks["shell"], marks["data"], time.Since(start).Round(time.Millisecond),
		1000*cpu["TaskDuration"], 1000*cpu["ScriptDuration"], 1000*cpu["LayoutDuration"], 1000*cpu["RecalcStyleDuration"])
	return weight
}

// unlabelled lists the visible controls of the page that have no
// accessible name (label, aria-label, text or title).
const unlabelled = `(() => {
  const bad = [];
  for (const el of document.querySelectorAll('input, select, textarea, button, a[href], meter, progress')) {
    if (el.closest('[hidden], dialog:not([open])') || el.type === 'hidden') continue;
    const labels = el.labels ? [...el.labels].map((l) => l.textContent.trim()).join(' ') : '';
    const text = ['BUTTON', 'A'].includes(el.tagName) ? el.textContent.trim() : '';
    if (!(el.getAttribute('aria-label') || labels || text || el.title || el.getAttribute('aria-labelledby'))) bad.push(el.outerHTML.slice(0, 140));
  }
  return bad;
})()`

func (b *browser) checkA11y(page string) {
	b.t.Helper()
	if bad := eval[[]string](b, unlabelled); len(bad) > 0 {
		b.t.Errorf("%s: controls without an accessible name: %q", page, bad)
	}
	if over := eval[float64](b, `document.documentElement.scrollWidth - window.innerWidth`); over > 1 {
		b.t.Errorf("%s: the page is %v px wider than the window", page, over)
	}
}

func TestBrowser(t *testing.T) {
	bin := findChromium(t)
	m := startMesh(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// A pushed model with two versions and an alias.
	for range 2 {
		if _, err := m.sdk.Registry().Push(ctx, "tiny", tinyModel, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.sdk.Registry().SetAlias(ctx, "tiny", "prod", 1); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, bin, m.base)

	t.Run("overview", func(t *testing.T) {
		b.t = t
		start := time.Now()
		b.resetPerf(t)
		b.do("load the console", 30*time.Second, chromedp.Navigate(m.base))
		for name := range m.kernels {
			b.wait("overview lists "+name, fmt.Sprintf(`document.querySelector('[data-node=%q][data-state="up"]')`, name), 20*time.Second)
		}
		// Page weight and time to interactive of this first, uncached load
		// (a fresh profile), then of loads in the warm browser: with the
		// cache off, and with it (immutable assets, the page revalidated).
		weight := b.measureLoad(t, "first load (cold browser)", start)
		if weight > pageWeightLimit || weight == 0 {
			t.Errorf("first load transferred %.0f bytes, want (0, %d]", weight, pageWeightLimit)
		}
		for _, cached := range []bool{false, true} {
			if _, err := chromedp.Call(b.ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: !cached}); err != nil {
				t.Fatal(err)
			}
			b.do("leave", 10*time.Second, chromedp.Navigate("about:blank"))
			b.mu.Lock()
			b.bytes, b.requests = 0, 0
			b.mu.Unlock()
			start := time.Now()
			b.resetPerf(t)
			b.do("load the console again", 30*time.Second, chromedp.Navigate(m.base))
			for name := range m.kernels {
				b.wait("overview lists "+name, fmt.Sprintf(`document.querySelector('[data-node=%q][data-state="up"]')`, name), 20*time.Second)
			}
			b.measureLoad(t, map[bool]string{false: "reload, cache off", true: "reload, cached"}[cached], start)
		}
		for name, kernel := range m.kernels {
			got := eval[string](b, fmt.Sprintf(`document.querySelector('[data-node=%q] .badge-kernel').textContent`, name))
			if got != kernel {
				t.Errorf("node %s: got kernel %q, want %q", name, got, kernel)
			}
		}
		b.checkA11y("overview")
		b.shot("overview-first.png")
	})

	t.Run("models", func(t *testing.T) {
		b.t = t
		b.open("#/models/tiny")
		b.wait("versions of tiny", `document.querySelectorAll('table.versions tbody tr').length === 2`, 15*time.Second)
		if got := eval[string](b, `document.querySelector('tr[data-alias="prod"] td').textContent`); got != "@1" {
			t.Errorf("alias prod: got %q, want @1", got)
		}
		// Move the alias from the page.
		b.do("move prod to @2", 10*time.Second,
			chromedp.SetValue(chromedp.CSS(`tr[data-alias="prod"] select`), "2"),
			chromedp.Click(chromedp.CSS(`tr[data-alias="prod"] button`)))
		b.wait("prod points at @2", `(document.querySelector('tr[data-alias="prod"] td') || {}).textContent === '@2'`, 10*time.Second)
		if v, err := m.sdk.Registry().Resolve(ctx, "tiny:prod"); err != nil || v.GetRef().GetVersion() != 2 {
			t.Errorf("registry after the move: got %v, %v; want tiny:prod = 2", v.GetRef(), err)
		}
		b.checkA11y("models")
	})

	var trained, trainJob string
	t.Run("training job curve", func(t *testing.T) {
		b.t = t
		id := m.train(ctx, t, 60, "opticks")
		trainJob = id
		b.open("#/jobs/trainer/" + id)
		// Sample the curve while the job runs: it must gain points live.
		var counts []int
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			st := eval[map[string]any](b, `({state: (document.querySelector('.job-state .pill') || {}).dataset?.state || '', points: Number((document.getElementById('loss-chart') || {dataset: {}}).dataset.points || 0)})`)
			state, _ := st["state"].(string)
			if state == "running" {
				if n := int(st["points"].(float64)); n > 0 && (len(counts) == 0 || n != counts[len(counts)-1]) {
					counts = append(counts, n)
				}
			}
			if state == "succeeded" || state == "failed" || state == "cancelled" {
				if state != "succeeded" {
					t.Fatalf("training job ended %s: %s", state, eval[string](b, `document.querySelector('.job .msg') ? document.querySelector('.job .msg').textContent : ''`))
				}
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("loss chart point counts seen while running: %v", counts)
		if len(counts) < 3 || !slices.IsSorted(counts) {
			t.Errorf("got point counts %v while the job ran, want at least 3, growing", counts)
		}
		b.wait("the finished job's full curve", `document.querySelector('#loss-chart [data-name="training loss"]')?.dataset.count === '60' && document.querySelector('#loss-chart [data-name="validation loss"]')?.dataset.count >= 3`, 10*time.Second)
		b.wait("the job's log", `[...document.querySelectorAll('.log li')].some((li) => li.textContent.includes('succeeded: registered opticks@1'))`, 10*time.Second)
		trained = "opticks@1"
		b.checkA11y("jobs")
		b.shot("jobs.png")
	})

	t.Run("cancel a job", func(t *testing.T) {
		b.t = t
		id := m.train(ctx, t, 100000, "cancelled")
		b.open("#/jobs/trainer/" + id)
		b.wait("the job runs", `document.querySelector('.job-state .pill')?.dataset.state === 'running' && !document.getElementById('job-cancel').hidden`, 60*time.Second)
		b.do("cancel it", 10*time.Second,
			chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
			chromedp.Click(chromedp.ID("job-cancel")))
		b.wait("the job is cancelled", `document.querySelector('.job-state .pill')?.dataset.state === 'cancelled' && document.getElementById('job-cancel').hidden`, 30*time.Second)
		b.wait("the log says so", `[...document.querySelectorAll('.log li')].some((li) => li.textContent.includes('cancelled'))`, 10*time.Second)
	})

	t.Run("quantize and lineage", func(t *testing.T) {
		if trained == "" {
			t.Skip("no trained model")
		}
		b.t = t
		b.open("#/models/opticks/1")
		b.wait("the quantize form", `document.querySelector('.quantize button')`, 15*time.Second)
		b.do("quantize from the page", 10*time.Second, chromedp.Click(chromedp.CSS(`.quantize button`)))
		b.wait("the quantizer job's page", `location.hash.startsWith('#/jobs/quantizer/')`, 10*time.Second)
		b.wait("the quantizer job succeeds", `document.querySelector('.job-state .pill')?.dataset.state === 'succeeded'`, 2*time.Minute)
		b.wait("its quality report", `document.querySelectorAll('.report table tbody tr').length === 7 && document.querySelector('.report .chart')?.dataset.points === '7'`, 10*time.Second)
		b.shot("quantize-job.png")
		b.open("#/jobs")
		b.wait("the jobs list", `document.querySelectorAll('table.jobs tbody tr[data-job]').length === 3`, 10*time.Second)
		b.shot("jobs-list.png")
		b.open("#/models/opticks")
		b.wait("the lineage of the quantized child", `document.querySelector('.tree li[data-ref="opticks@1"] li[data-ref="opticks@2"]')`, 15*time.Second)
		b.wait("the child's report on the models page", `document.querySelectorAll('.version-detail .report table tbody tr').length === 7`, 15*time.Second)
		if got := eval[string](b, `document.querySelector('table.versions tr[data-version="2"] td:nth-child(4)').textContent`); got != "TQ2_0" {
			t.Errorf("opticks@2 quant type: got %q, want TQ2_0", got)
		}
		b.checkA11y("models")
		b.shot("models.png")
	})

	t.Run("playground streams", func(t *testing.T) {
		b.t = t
		b.open("#/playground/tiny@2")
		b.do("raw completion", 10*time.Second,
			chromedp.Click(chromedp.ID("pg-mode-raw")),
			chromedp.SetValue(chromedp.ID("pg-max-tokens"), "160"),
			chromedp.SetValue(chromedp.ID("pg-temperature"), "0.9"),
			chromedp.SetValue(chromedp.ID("pg-input"), "Light is"),
			chromedp.Evaluate[chromedp.Void](`(() => {
				window.__growth = [];
				const out = document.getElementById('pg-output');
				new MutationObserver(() => {
					const b = out.querySelector('.bubble');
					const g = b && b.querySelector('.gen');
					if (g) window.__growth.push([performance.now(), g.textContent.length, b.dataset.state]);
				}).observe(out, {subtree: true, childList: true, characterData: true});
			})()`))
		// A slow network, so that the lines of the stream arrive over time
		// as they do from a large model: the page must show each at once.
		throttle(t, b, 2500)
		b.do("generate", 10*time.Second, chromedp.Click(chromedp.ID("pg-send")))
		b.wait("the generation ends", `document.querySelector('#pg-output .bubble')?.dataset.state === 'done'`, 60*time.Second)
		throttle(t, b, -1)
		growth := eval[[][]any](b, `window.__growth`)
		var lengths []int
		var first, last float64
		for _, g := range growth {
			n, state := int(g[1].(float64)), g[2].(string)
			if state == "streaming" && n > 0 && (len(lengths) == 0 || n > lengths[len(lengths)-1]) {
				lengths = append(lengths, n)
				if first == 0 {
					first = g[0].(float64)
				}
				last = g[0].(float64)
			}
		}
		t.Logf("text grew %d times while streaming over %.0f ms: %v", len(lengths), last-first, lengths)
		if len(lengths) < 5 || last-first < 300 {
			t.Errorf("text grew %d times over %.0f ms while streaming, want at least 5 over 300 ms", len(lengths), last-first)
		}
		node := eval[string](b, `document.querySelector('#pg-output .stats [data-node]')?.dataset.node || ''`)
		kernel := eval[string](b, `document.querySelector('#pg-output .stats [data-kernel]')?.dataset.kernel || ''`)
		if want, ok := m.kernels[node]; !ok || kernel != want {
			t.Errorf("response stats: got node %q kernel %q, want a node of %v with its kernel", node, kernel, m.kernels)
		}
		for _, sel := range []string{"[data-ttft]", "[data-tps]"} {
			if !eval[bool](b, fmt.Sprintf(`!!document.querySelector('#pg-output .stats %s')`, sel)) {
				t.Errorf("response stats lack %s", sel)
			}
		}
		b.checkA11y("playground")
		b.shot("playground.png")

		// Stop cancels a stream in flight.
		throttle(t, b, 600)
		b.do("generate again", 10*time.Second,
			chromedp.SetValue(chromedp.ID("pg-max-tokens"), "400"),
			chromedp.Click(chromedp.ID("pg-send")))
		b.wait("text streams", `document.querySelector('#pg-output .gen')?.textContent.length > 10`, 30*time.Second)
		b.do("stop", 10*time.Second, chromedp.Click(chromedp.ID("pg-stop")))
		b.wait("the stream stops", `document.querySelector('#pg-output .bubble')?.dataset.state === 'stopped'`, 5*time.Second)
		throttle(t, b, -1)
		if !eval[bool](b, `document.getElementById('pg-stop').disabled && !document.getElementById('pg-send').disabled`) {
			t.Error("after Stop: want Stop disabled and Generate enabled")
		}

		// API errors read as messages, not JSON.
		b.do("an unknown model", 10*time.Second,
			chromedp.SetValue(chromedp.ID("pg-model"), "no-such-model"),
			chromedp.Click(chromedp.ID("pg-send")))
		b.wait("an error message", `document.querySelector('#pg-output .msg-error')`, 15*time.Second)
		msg := eval[string](b, `document.querySelector('#pg-output .msg-error').textContent`)
		if !strings.HasPrefix(msg, "Not found") || strings.Contains(msg, "{") {
			t.Errorf("unknown model: got message %q, want a readable “Not found: …”", msg)
		}
	})

	t.Run("keys", func(t *testing.T) {
		b.t = t
		b.open("#/keys")
		b.wait("the keys page answers", `document.querySelector('main .msg')`, 10*time.Second)
		msg := eval[string](b, `document.querySelector('main .msg').textContent`)
		// The mesh serves the key API (bitnet.auth.v1) without --auth here:
		// the page says keys are not enforced.
		if !strings.Contains(msg, "not enforced") {
			t.Errorf("keys page on a mesh without --auth: got %q, want it to say keys are not enforced", msg)
		}
		b.checkA11y("keys")
		b.shot("keys.png")
	})

	t.Run("phone width", func(t *testing.T) {
		b.t = t
		b.do("phone viewport", 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		for _, page := range []string{"#/", "#/playground", "#/models/opticks", "#/jobs", "#/jobs/trainer/" + trainJob} {
			b.open(page)
			time.Sleep(700 * time.Millisecond) // let the page's data arrive
			b.checkA11y("phone " + page)
			b.shot("phone-" + strings.NewReplacer("#/", "", "/", "-").Replace(page) + ".png")
		}
		b.open("#/")
		if over := eval[float64](b, `(() => { const n = document.querySelector('nav[aria-label="Pages"]'); return n.scrollWidth - n.clientWidth; })()`); over > 0 {
			t.Errorf("phone: the page links overflow their bar by %v px", over)
		}
		b.shot("phone-overview.png")
		b.do("desktop viewport", 10*time.Second, chromedp.EmulateViewport(1280, 900))
	})

	t.Run("keyboard", func(t *testing.T) {
		b.t = t
		b.open("#/")
		b.do("focus the Models link", 5*time.Second, chromedp.Focus(chromedp.CSS(`nav a[data-page="models"]`)))
		b.do("press Enter", 5*time.Second, chromedp.KeyEvent("\r"))
		b.wait("Enter on a nav link opens its page", `location.hash === '#/models' && document.activeElement && document.activeElement.tagName === 'H1'`, 5*time.Second)
	})

	t.Run("dead node greys out", func(t *testing.T) {
		b.t = t
		b.open("#/")
		b.wait("both nodes up", fmt.Sprintf(`document.querySelectorAll('[data-node][data-state="up"]').length === %d`, len(m.kernels)), 10*time.Second)
		b.shot("overview.png") // with the playground's load in the sparklines
		killed := time.Now()
		m.killNode()
		b.wait(m.secondNode+" greys out", fmt.Sprintf(`document.querySelector('[data-node=%q]')?.dataset.state === 'down'`, m.secondNode), 15*time.Second)
		t.Logf("%s greyed out %v after it was killed", m.secondNode, time.Since(killed).Round(10*time.Millisecond))
		if !eval[bool](b, fmt.Sprintf(`document.querySelector('[data-node=%q]').dataset.state === 'up'`, m.upNodeName)) {
			t.Errorf("%s: want it still up", m.upNodeName)
		}
		if f := eval[string](b, fmt.Sprintf(`getComputedStyle(document.querySelector('[data-node=%q]')).filter`, m.secondNode)); !strings.Contains(f, "grayscale") {
			t.Errorf("dead node's filter: got %q, want grayscale", f)
		}
		b.shot("overview-node-down.png")
	})

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("browser: %s", p)
	}
}

// throttle limits the browser's download rate to bytesPerSecond (-1: no limit).
func throttle(t *testing.T, b *browser, bytesPerSecond float64) {
	t.Helper()
	var conds []*network.Conditions
	if bytesPerSecond > 0 {
		conds = []*network.Conditions{{DownloadThroughput: bytesPerSecond, UploadThroughput: -1}}
	} else {
		conds = []*network.Conditions{}
	}
	if _, err := chromedp.Call(b.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: conds}); err != nil {
		t.Fatalf("throttle: %v", err)
	}
}
