package consultest

import (
	"net/http"
	"testing"
	"time"
)

func TestStartStop(t *testing.T) {
	a := Start(t)
	resp, err := http.Get("http://" + a.Addr + "/v1/agent/self")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got /v1/agent/self status %d, want 200", resp.StatusCode)
	}
	a.Stop()
	a.Stop() // idempotent
	c := &http.Client{Timeout: time.Second}
	if resp, err := c.Get("http://" + a.Addr + "/v1/agent/self"); err == nil {
		resp.Body.Close()
		t.Errorf("agent still answers after Stop")
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := freePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Errorf("got ports %v, want 4 distinct positive", ports)
		}
		seen[p] = true
	}
}
