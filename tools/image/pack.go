package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image layout constants the manifests and tests rely on.
const (
	binaryPath = "/bitnet"
	// nonRootUser is distroless's "nonroot" UID:GID; numeric so no
	// /etc/passwd is needed and runAsNonRoot can verify it.
	nonRootUser = "65532:65532"
	sourceURL   = "https://github.com/bitnet-mesh/bitnet-mesh"
)

// packImage returns a one-layer OCI image with bin at /bitnet for p.
func packImage(bin string, p v1.Platform, cfg Config) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	layerTar, err := rootfsTar(data, cfg.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		History:   v1.History{Created: v1.Time{Time: cfg.Created}, CreatedBy: "tools/image: bitnet " + cfg.Version},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: cfg.Created}
	cf.Config = v1.Config{
		Entrypoint: []string{binaryPath},
		User:       nonRootUser,
		WorkingDir: "/",
		Env:        []string{"TMPDIR=/tmp"},
		Labels:     labels(cfg),
		ExposedPorts: map[string]struct{}{
			"50051/tcp": {},
			"8080/tcp":  {},
		},
		StopSignal: "SIGTERM",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// labels returns the org.opencontainers.image.* annotations keys used as labels.
func labels(cfg Config) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "bitnet",
		"org.opencontainers.image.description": "bitnet-mesh: BitNet b1.58 registry, quantizer, inference, trainer and router",
		"org.opencontainers.image.version":     cfg.Version,
		"org.opencontainers.image.source":      sourceURL,
		"org.opencontainers.image.url":         sourceURL,
		"org.opencontainers.image.created":     cfg.Created.UTC().Format(time.RFC3339),
	}
	if cfg.Revision != "" {
		l["org.opencontainers.image.revision"] = cfg.Revision
	}
	return l
}

// rootfsTar returns the layer: /tmp (sticky, world-writable, for
// emptyDir-less runs) and /bitnet (root-owned, not writable by the user).
func rootfsTar(bin []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 01777, ModTime: mtime, Format: tar.FormatPAX},
		{Typeflag: tar.TypeReg, Name: "bitnet", Mode: 0o755, Size: int64(len(bin)), ModTime: mtime, Format: tar.FormatPAX},
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(bin); err != nil {
				return nil, fmt.Errorf("tar %s: %w", h.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	return buf.Bytes(), nil
}

// sourceDate honours SOURCE_DATE_EPOCH for reproducible images, else the
// Unix epoch: the same inputs then give the same digests.
func sourceDate() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Unix(0, 0).UTC()
}
