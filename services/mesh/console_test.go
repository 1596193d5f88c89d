package mesh

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/services/console"
	"github.com/bitnet-mesh/bitnet-mesh/shared/discovery"
)

// TestConsoleMount: the router's REST port serves the console at / beside
// the API, unless NoConsole.
func TestConsoleMount(t *testing.T) {
	for _, off := range []bool{false, true} {
		mem := discovery.NewMemory()
		defer mem.Close()
		r := serve(t, Router, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), Discovery: mem, NoConsole: off})
		base := "http://" + r.HTTPAddr().String()
		var resp *http.Response
		eventually(t, 5*time.Second, "the REST port answers", func() error {
			var err error
			resp, err = http.Get(base + "/")
			return err
		})
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if off {
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("NoConsole: GET / got %d, want 404", resp.StatusCode)
			}
		} else if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != console.ContentSecurityPolicy ||
			!strings.Contains(string(page), `type="module"`) {
			t.Errorf("GET /: got %d %q, want the console page with its CSP", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if got := getBody(t, base+"/v1/nodes"); got != `{"nodes":[]}` {
			t.Errorf("GET /v1/nodes beside the console: got %s, want {\"nodes\":[]}", got)
		}
	}
}
