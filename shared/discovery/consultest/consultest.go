// Package consultest starts a throwaway Consul agent in dev mode on loopback
// for integration tests, stopped when the test ends.
//
// The binary comes from $BITNET_CONSUL_BIN, else from the cache that
// tools/ci/consul.sh fills. Without one the test is skipped, except when
// $CI is set, where it fails: CI must run the Consul tests.
package consultest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the Consul version tools/ci/consul.sh builds.
const Version = "1.14.4"

// Agent is a running dev-mode Consul agent.
type Agent struct {
	// Addr is the HTTP API address, host:port.
	Addr string

	cmd      *exec.Cmd
	logs     *syncBuffer
	done     chan struct{}
	stopOnce sync.Once
}

// Binary returns the Consul binary to use: $BITNET_CONSUL_BIN, else the
// path tools/ci/consul.sh caches to, if it exists.
func Binary() (string, error) {
	if p := os.Getenv("BITNET_CONSUL_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("consultest: BITNET_CONSUL_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	cache := os.Getenv("BITNET_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("consultest: no BITNET_CONSUL_BIN and no home dir: %w", err)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "bitnet-mesh")
	}
	p := filepath.Join(cache, "consul-"+Version)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("consultest: no BITNET_CONSUL_BIN and no cached %s (run tools/ci/consul.sh): %w", p, err)
	}
	return p, nil
}

// Start starts an agent and registers its Stop with t.Cleanup. It skips the
// test when there is no binary (fails under CI).
func Start(t testing.TB) *Agent {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts a Consul agent")
	}
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but Consul is missing: %v", err)
		}
		t.Skipf("skipping Consul test: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // free ports can be taken before the agent binds them
		a, err := start(t, bin)
		if err == nil {
			t.Cleanup(a.Stop)
			return a
		}
		lastErr = err
	}
	t.Fatalf("consultest: start agent: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Agent, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	httpPort := ports[0]
	args := []string{
		"agent", "-dev",
		"-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-node", "consultest-" + strconv.Itoa(httpPort),
		"-http-port", strconv.Itoa(httpPort),
		"-serf-lan-port", strconv.Itoa(ports[1]),
		"-serf-wan-port", strconv.Itoa(ports[2]),
		"-server-port", strconv.Itoa(ports[3]),
		"-grpc-port", "-1", "-grpc-tls-port", "-1", "-dns-port", "-1",
		"-data-dir", t.TempDir(),
		"-log-level", "warn",
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("consultest: start %s: %w", bin, err)
	}
	a := &Agent{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)), cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() { // ends when the process does; Stop makes it end
		_ = cmd.Wait()
		close(a.done)
	}()
	if err := a.waitReady(30 * time.Second); err != nil {
		a.Stop()
		return nil, fmt.Errorf("%w; agent output:\n%s", err, logs.String())
	}
	return a, nil
}

// waitReady waits until the agent has a leader and has synced its node.
func (a *Agent) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-a.done:
			return errors.New("consultest: agent exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("consultest: agent at %s not ready after %v", a.Addr, timeout)
		case <-time.After(100 * time.Millisecond):
		}
		if leader := get(ctx, client, "http://"+a.Addr+"/v1/status/leader"); len(leader) <= 2 { // `""` until elected
			continue
		}
		// The node is in the catalog once the agent has synced with itself.
		if nodes := get(ctx, client, "http://"+a.Addr+"/v1/catalog/nodes"); strings.Contains(nodes, `"Node"`) {
			return nil
		}
	}
}

func get(ctx context.Context, c *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ""
	}
	resp, err := c.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(b.String())
}

// Stop kills the agent's process group and waits for it; safe to call twice.
func (a *Agent) Stop() {
	a.stopOnce.Do(func() {
		pgid := a.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-a.done
		}
	})
}

// Logs returns the agent's output so far (for failure messages).
func (a *Agent) Logs() string { return a.logs.String() }

// freePorts returns n distinct ports free for TCP and UDP on 127.0.0.1 at the
// time of the call (Serf uses both).
func freePorts(n int) ([]int, error) {
	var ports []int
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("consultest: free port: %w", err)
		}
		closers = append(closers, func() { _ = l.Close() })
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // UDP side taken: try another
		}
		closers = append(closers, func() { _ = u.Close() })
		ports = append(ports, port)
	}
	return ports, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
