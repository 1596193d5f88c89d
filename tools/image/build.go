package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Config says what Build compiles and packs.
type Config struct {
	ModuleDir string        // module root; empty: the one `go env GOMOD` names
	Platforms []v1.Platform // one image per platform; OS must be linux
	Version   string        // -X main.version and org.opencontainers.image.version
	Revision  string        // org.opencontainers.image.revision; empty: git HEAD if any
	Created   time.Time     // image and label creation time; zero: SOURCE_DATE_EPOCH or the Unix epoch
	Parallel  int           // go build -p; <= 0: go's default
	// Binaries maps "os/arch" to a prebuilt binary used instead of compiling.
	Binaries map[string]string
	Log      io.Writer // go build's output; nil: discarded
}

// supportedArch lists the architectures the bitnet kernels target.
var supportedArch = map[string]bool{"amd64": true, "arm64": true}

func parsePlatforms(s string) ([]v1.Platform, error) {
	var out []v1.Platform
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		osName, arch, ok := strings.Cut(f, "/")
		if !ok || osName != "linux" || !supportedArch[arch] {
			return nil, fmt.Errorf("platform %q: want linux/amd64 or linux/arm64", f)
		}
		if seen[f] {
			return nil, fmt.Errorf("platform %q given twice", f)
		}
		seen[f] = true
		out = append(out, v1.Platform{OS: osName, Architecture: arch})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platforms in %q", s)
	}
	return out, nil
}

func parseBinaries(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]string{}
	for _, f := range strings.Split(s, ",") {
		plat, path, ok := strings.Cut(f, "=")
		if !ok || plat == "" || path == "" {
			return nil, fmt.Errorf("--binaries entry %q: want os/arch=PATH", f)
		}
		m[plat] = path
	}
	return m, nil
}

// Build compiles (or reuses) one binary per platform and returns the OCI
// index holding one image per platform.
func Build(ctx context.Context, cfg Config) (v1.ImageIndex, error) {
	if len(cfg.Platforms) == 0 {
		return nil, fmt.Errorf("no platforms")
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	mod, err := moduleDir(ctx, cfg.ModuleDir)
	if err != nil {
		return nil, err
	}
	if cfg.Revision == "" {
		cfg.Revision = gitRevision(ctx, mod)
	}
	if cfg.Created.IsZero() {
		cfg.Created = sourceDate()
	}
	tmp, err := os.MkdirTemp("", "bitnet-image-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range cfg.Platforms {
		key := p.OS + "/" + p.Architecture
		bin := cfg.Binaries[key]
		if bin == "" {
			bin = filepath.Join(tmp, "bitnet-"+p.Architecture)
			if err := goBuild(ctx, mod, p, cfg, bin); err != nil {
				return nil, err
			}
		}
		img, err := packImage(bin, p, cfg)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", key, err)
		}
		plat := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &plat},
		})
	}
	return idx, nil
}

// goBuild compiles cmd/bitnet statically for p into out.
func goBuild(ctx context.Context, mod string, p v1.Platform, cfg Config, out string) error {
	args := []string{"build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version=" + cfg.Version, "-o", out}
	if cfg.Parallel > 0 {
		args = append(args, fmt.Sprintf("-p=%d", cfg.Parallel))
	}
	args = append(args, "./cmd/bitnet")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s/%s: %w\n%s", p.OS, p.Architecture, err, buf.Bytes())
	}
	if cfg.Log != nil && buf.Len() > 0 {
		cfg.Log.Write(buf.Bytes())
	}
	return nil
}

func moduleDir(ctx context.Context, dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module: give --module")
	}
	return filepath.Dir(gomod), nil
}

// gitRevision returns HEAD's commit, or "" outside a git checkout.
func gitRevision(ctx context.Context, dir string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
