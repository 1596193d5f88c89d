package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestBuildImages compiles the real bitnet binary (both arches; only the
// host's under -short), packs the index, writes it as a layout dir and a
// tarball, reads it back and runs `bitnet version` from the host image.
func TestBuildImages(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not on PATH")
	}
	if testing.Short() {
		t.Skip("-short: compiles static binaries (TestPrebuiltBinary packs one)")
	}
	plats := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	idx, err := Build(ctx, Config{
		ModuleDir: "../..",
		Platforms: plats,
		Version:   "v9.9.9-test",
		Revision:  "0123abcd",
		Created:   created,
		Parallel:  2,
	})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	if err := WriteOut(dir, "bitnet:test", idx); err != nil {
		t.Fatalf("WriteOut dir: %v", err)
	}
	tarPath := filepath.Join(t.TempDir(), "bitnet.tar")
	if err := WriteOut(tarPath, "bitnet:test", idx); err != nil {
		t.Fatalf("WriteOut tar: %v", err)
	}
	checkTarLayout(t, tarPath)

	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("layout.FromPath: %v", err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		t.Fatalf("root index: %v", err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatalf("root index manifest: %v", err)
	}
	if len(rm.Manifests) != 1 {
		t.Fatalf("got %d root entries, want 1", len(rm.Manifests))
	}
	if got := rm.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != "bitnet:test" {
		t.Errorf("got ref.name %q, want bitnet:test", got)
	}
	if got := rm.Manifests[0].MediaType; got != types.OCIImageIndex {
		t.Errorf("got root entry media type %s, want %s", got, types.OCIImageIndex)
	}
	multi, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		t.Fatalf("multi-arch index: %v", err)
	}
	mm, err := multi.IndexManifest()
	if err != nil {
		t.Fatalf("multi-arch index manifest: %v", err)
	}
	if len(mm.Manifests) != len(plats) {
		t.Fatalf("got %d images, want %d", len(mm.Manifests), len(plats))
	}
	var hostImg v1.Image
	for i, d := range mm.Manifests {
		want := plats[i]
		if d.Platform == nil || d.Platform.OS != want.OS || d.Platform.Architecture != want.Architecture {
			t.Errorf("manifest %d: got platform %+v, want %s/%s", i, d.Platform, want.OS, want.Architecture)
		}
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("manifest %d: got media type %s, want %s", i, d.MediaType, types.OCIManifestSchema1)
		}
		img, err := multi.Image(d.Digest)
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		checkConfig(t, img, want, created)
		if want.Architecture == runtime.GOARCH {
			hostImg = img
		}
	}
	if hostImg == nil || runtime.GOOS != "linux" {
		t.Logf("no linux/%s image to run", runtime.GOARCH)
		return
	}
	runVersion(t, hostImg)
}

func checkConfig(t *testing.T, img v1.Image, want v1.Platform, created time.Time) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	arch := want.Architecture
	if cf.OS != want.OS || cf.Architecture != arch {
		t.Errorf("%s: got config platform %s/%s", arch, cf.OS, cf.Architecture)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/bitnet" {
		t.Errorf("%s: got entrypoint %q, want /bitnet", arch, got)
	}
	if len(cf.Config.Cmd) != 0 {
		t.Errorf("%s: got cmd %q, want none (manifests give args)", arch, cf.Config.Cmd)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("%s: got user %q, want 65532:65532", arch, cf.Config.User)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("%s: got created %v, want %v", arch, cf.Created.Time, created)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.title":    "bitnet",
		"org.opencontainers.image.version":  "v9.9.9-test",
		"org.opencontainers.image.revision": "0123abcd",
		"org.opencontainers.image.source":   sourceURL,
		"org.opencontainers.image.created":  "2026-01-02T03:04:05Z",
	}
	for k, v := range wantLabels {
		if got := cf.Config.Labels[k]; got != v {
			t.Errorf("%s: got label %s=%q, want %q", arch, k, got, v)
		}
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%s: got %d layers (err %v), want 1", arch, len(layers), err)
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("%s: got layer media type %s, want %s", arch, mt, types.OCILayer)
	}
}

// runVersion extracts /bitnet from img and runs `bitnet version`.
func runVersion(t *testing.T, img v1.Image) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	bin := filepath.Join(t.TempDir(), "bitnet")
	var sawTmp, sawBin bool
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("extract: %v", err)
		}
		switch strings.TrimPrefix(h.Name, "/") {
		case "tmp/", "tmp":
			sawTmp = true
			if h.Typeflag != tar.TypeDir || h.Mode&0o1777 != 0o1777 {
				t.Errorf("got /tmp type %c mode %o, want dir 1777", h.Typeflag, h.Mode)
			}
		case "bitnet":
			sawBin = true
			if h.Mode&0o111 == 0 || h.Uid != 0 {
				t.Errorf("got /bitnet mode %o uid %d, want executable, owned by root", h.Mode, h.Uid)
			}
			f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !sawTmp || !sawBin {
		t.Fatalf("got /tmp %v /bitnet %v in the image, want both", sawTmp, sawBin)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("bitnet version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "bitnet v9.9.9-test") {
		t.Errorf("got version output %q, want prefix %q", out, "bitnet v9.9.9-test")
	}
}

func checkTarLayout(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(data))
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		names[h.Name] = true
	}
	for _, want := range []string{"oci-layout", "index.json", "blobs/", "blobs/sha256/"} {
		if !names[want] {
			t.Errorf("tarball lacks %q (has %d entries)", want, len(names))
		}
	}
}

func TestParsePlatforms(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"linux/amd64,linux/arm64", 2, false},
		{" linux/arm64 ", 1, false},
		{"linux/amd64,linux/amd64", 0, true},
		{"darwin/arm64", 0, true},
		{"linux/386", 0, true},
		{"amd64", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := parsePlatforms(tt.in)
		if (err != nil) != tt.wantErr || len(got) != tt.want {
			t.Errorf("parsePlatforms(%q): got %d platforms, err %v; want %d, err %v", tt.in, len(got), err, tt.want, tt.wantErr)
		}
	}
}

func TestParseBinaries(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"", nil, false},
		{"linux/amd64=/a,linux/arm64=/b", map[string]string{"linux/amd64": "/a", "linux/arm64": "/b"}, false},
		{"linux/amd64", nil, true},
		{"=/a", nil, true},
	}
	for _, tt := range tests {
		got, err := parseBinaries(tt.in)
		if (err != nil) != tt.wantErr || len(got) != len(tt.want) {
			t.Errorf("parseBinaries(%q): got %v, err %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("parseBinaries(%q)[%s]: got %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, "nothing to do"},
		{[]string{"--out", "x", "--platforms", "linux/mips"}, "want linux/amd64"},
		{[]string{"--out", "x", "extra"}, "unexpected arguments"},
		{[]string{"--out", "x", "--binaries", "nope"}, "want os/arch=PATH"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("run(%q): got %v, want error containing %q", tt.args, err, tt.wantErr)
		}
	}
}

// TestPrebuiltBinary packs a small file given with --binaries (no compile)
// and checks WriteOut refuses a non-empty layout directory.
func TestPrebuiltBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fake")
	if err := os.WriteFile(bin, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"--out", dir, "--module", "../..", "--platforms", "linux/arm64", "--binaries", "linux/arm64=" + bin}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.Bytes())
	}
	if err := run(context.Background(), args, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second run into %s: got %v, want a not-empty error", dir, err)
	}
}

// TestReproducible: the same binary and settings give the same index
// digest, so rebuilding an unchanged tree pushes nothing new.
func TestReproducible(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fake")
	if err := os.WriteFile(bin, []byte("not really a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		ModuleDir: "../..",
		Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
		Revision:  "r",
		Binaries:  map[string]string{"linux/amd64": bin, "linux/arm64": bin},
	}
	var digests []v1.Hash
	for range 2 {
		idx, err := Build(context.Background(), cfg)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatalf("Digest: %v", err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("got digests %s and %s, want equal", digests[0], digests[1])
	}
}
