package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
)

func TestPushPullGGUF(t *testing.T) {
	ctx := context.Background()
	c, _ := startRegistry(t)
	src := writeGGUF(t, t.TempDir(), "tiny")
	res, err := c.Registry().Push(ctx, "tiny", src, &sdk.PushOptions{Aliases: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref != "tiny@1" {
		t.Errorf("got ref %q, want tiny@1", res.Ref)
	}
	v := res.Version
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"format", v.GetFormat(), modelv1.ModelFormat_MODEL_FORMAT_GGUF},
		{"quant", v.GetQuantType(), modelv1.QuantType_QUANT_TYPE_TQ2_0},
		{"arch", v.GetArchitecture(), "bitnet"},
		{"params", v.GetParameterCount(), uint64(256*4 + 8)},
		{"context", v.GetContextLength(), uint32(128)},
		{"vocab", v.GetVocabSize(), uint32(32)},
		{"files", len(v.GetFiles()), 1},
		{"path", v.GetFiles()[0].GetPath(), "model.gguf"},
		{"source", v.GetLineage().GetSource(), modelv1.LineageSource_LINEAGE_SOURCE_UPLOAD},
		{"aliases", strings.Join(v.GetAliases(), ","), "prod"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	size := int64(v.GetSizeBytes())
	if res.BytesSent != size || res.BytesSkipped != 0 {
		t.Errorf("first push: got sent %d skipped %d, want %d and 0", res.BytesSent, res.BytesSkipped, size)
	}

	// The same file again: a new version, no bytes sent.
	var skipped atomic.Bool
	res2, err := c.Registry().Push(ctx, "tiny", src, &sdk.PushOptions{Progress: func(p sdk.Progress) {
		if p.Op == sdk.OpUpload && p.Skipped {
			skipped.Store(true)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Ref != "tiny@2" || res2.BytesSent != 0 || res2.BytesSkipped != size || !skipped.Load() {
		t.Errorf("second push: got %s sent %d skipped %d (progress skipped %v), want tiny@2 0 %d true",
			res2.Ref, res2.BytesSent, res2.BytesSkipped, skipped.Load(), size)
	}

	dst := t.TempDir()
	pr, err := c.Registry().Pull(ctx, "tiny:prod", dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Ref != "tiny@1" || len(pr.Paths) != 1 || pr.BytesReceived != size {
		t.Fatalf("pull: got %s %v received %d, want tiny@1, one path, %d", pr.Ref, pr.Paths, pr.BytesReceived, size)
	}
	assertSameFile(t, pr.Paths[0], src)

	// Pulling again keeps the verified file.
	pr, err = c.Registry().Pull(ctx, "tiny@1", dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pr.BytesReceived != 0 || pr.BytesSkipped != size {
		t.Errorf("second pull: got received %d skipped %d, want 0 and %d", pr.BytesReceived, pr.BytesSkipped, size)
	}
}

func TestPushPullDir(t *testing.T) {
	ctx := context.Background()
	c, _ := startRegistry(t)
	tests := []struct {
		dir    string
		format modelv1.ModelFormat
		quant  modelv1.QuantType
	}{
		{"tiny-gqa-packed", modelv1.ModelFormat_MODEL_FORMAT_HF_PACKED, modelv1.QuantType_QUANT_TYPE_I2_S},
		{"tiny-mha-untied-bf16", modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS, modelv1.QuantType_QUANT_TYPE_BF16},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			src := filepath.Join("..", "testdata", "models", tt.dir)
			res, err := c.Registry().Push(ctx, tt.dir, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := res.Version
			if res.Ref != tt.dir+"@1" || v.GetFormat() != tt.format || v.GetQuantType() != tt.quant ||
				v.GetArchitecture() != "bitnet" || v.GetContextLength() != 512 || v.GetVocabSize() != 600 || v.GetParameterCount() == 0 {
				t.Errorf("got %s format %v quant %v arch %q ctx %d vocab %d params %d, want %s@1 %v %v bitnet 512 600 >0",
					res.Ref, v.GetFormat(), v.GetQuantType(), v.GetArchitecture(), v.GetContextLength(), v.GetVocabSize(), v.GetParameterCount(), tt.dir, tt.format, tt.quant)
			}
			dst := t.TempDir()
			pr, err := c.Registry().Pull(ctx, res.Ref, dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Every model file (golden.json is the tests', not the model's).
			lm, err := sdk.Inspect(src)
			if err != nil {
				t.Fatal(err)
			}
			if len(pr.Paths) != len(lm.Files) || len(res.LeftOut) != 1 || res.LeftOut[0] != "golden.json" {
				t.Fatalf("pulled %d files, want %d; left out %v, want golden.json", len(pr.Paths), len(lm.Files), res.LeftOut)
			}
			for _, f := range lm.Files {
				assertSameFile(t, filepath.Join(dst, f.Path), f.Local)
			}
		})
	}
}

// failAfter reads a file but fails once n bytes have been read.
type failAfter struct {
	*os.File
	n int64
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	k, err := f.File.Read(p)
	f.n -= int64(k)
	return k, err
}

func TestUploadResumesAfterReadFailure(t *testing.T) {
	ctx := context.Background()
	c, _ := startRegistry(t)
	const size, failAt = 3 << 20, 1<<20 + 12345
	p := filepath.Join(t.TempDir(), "blob.bin")
	writeRandom(t, p, size)
	lm := &sdk.LocalModel{Files: []*sdk.LocalFile{{Path: "blob.bin", Local: p, Size: size}}}

	opens := 0
	o := &sdk.PushOptions{ChunkSize: 64 << 10}
	o.SetOpener(func(name string) (io.ReadSeekCloser, error) {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		opens++
		if opens == 1 { // hashing reads it all
			return f, nil
		}
		return &failAfter{File: f, n: failAt}, nil
	})
	res, err := c.Registry().Upload(ctx, lm, o)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("got error %v, want the read failure", err)
	}
	if res.BytesSent != failAt {
		t.Errorf("interrupted upload: got %d bytes sent, want %d", res.BytesSent, failAt)
	}

	res, err = c.Registry().Upload(ctx, lm, &sdk.PushOptions{ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesSent != size-failAt || res.BytesSkipped != failAt {
		t.Errorf("resumed upload: got sent %d skipped %d, want %d and %d", res.BytesSent, res.BytesSkipped, size-failAt, failAt)
	}
	if _, err := c.Registry().RPC().GetBlob(ctx, &registryv1.GetBlobRequest{Sha256: lm.Files[0].SHA256}); err != nil {
		t.Errorf("blob after resume: %v", err)
	}
}

func TestUploadResumesAfterCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("20 MiB upload")
	}
	c, _ := startRegistry(t)
	const size = 20 << 20
	p := filepath.Join(t.TempDir(), "blob.bin")
	writeRandom(t, p, size)
	lm := &sdk.LocalModel{Files: []*sdk.LocalFile{{Path: "blob.bin", Local: p, Size: size}}}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := c.Registry().Upload(ctx, lm, &sdk.PushOptions{Progress: func(p sdk.Progress) {
		if p.Op == sdk.OpUpload && p.Done >= 18<<20 {
			cancel()
		}
	}})
	if status.Code(err) != codes.Canceled {
		t.Fatalf("got %v, want Canceled", err)
	}
	res, err := c.Registry().Upload(context.Background(), lm, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed: sent %d, skipped %d", res.BytesSent, res.BytesSkipped)
	// The registry keeps its durable batches (8 MiB each) of a cut stream.
	if res.BytesSkipped == 0 || res.BytesSent+res.BytesSkipped != size {
		t.Errorf("resumed upload: got sent %d skipped %d, want skipped > 0 and a sum of %d", res.BytesSent, res.BytesSkipped, size)
	}
}

func TestPullCorruptBlob(t *testing.T) {
	ctx := context.Background()
	c, store := startRegistry(t)
	src := writeGGUF(t, t.TempDir(), "tiny")
	res, err := c.Registry().Push(ctx, "tiny", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	sha := res.Version.GetFiles()[0].GetSha256()
	blob := filepath.Join(store.Dir(), "blobs", "sha256", sha[:2], sha)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	_, err = c.Registry().Pull(ctx, "tiny@1", dst, nil)
	if !errors.Is(err, sdk.ErrDigestMismatch) || !strings.Contains(err.Error(), sha) {
		t.Fatalf("got %v, want a sha256 mismatch naming %s", err, sha)
	}
	if ents, _ := os.ReadDir(dst); len(ents) != 0 {
		t.Errorf("left %d files behind, want none", len(ents))
	}
}

func TestPullResumesPartial(t *testing.T) {
	ctx := context.Background()
	c, _ := startRegistry(t)
	src := writeGGUF(t, t.TempDir(), "tiny")
	if _, err := c.Registry().Push(ctx, "tiny", src, nil); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(src)
	dst := t.TempDir()
	half := int64(len(full) / 2)
	if err := os.WriteFile(filepath.Join(dst, "model.gguf.partial"), full[:half], 0o644); err != nil {
		t.Fatal(err)
	}
	pr, err := c.Registry().Pull(ctx, "tiny", dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pr.BytesSkipped != half || pr.BytesReceived != int64(len(full))-half {
		t.Errorf("got skipped %d received %d, want %d and %d", pr.BytesSkipped, pr.BytesReceived, half, int64(len(full))-half)
	}
	assertSameFile(t, filepath.Join(dst, "model.gguf"), src)
	if _, err := os.Stat(filepath.Join(dst, "model.gguf.partial")); !os.IsNotExist(err) {
		t.Errorf("partial file left: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	c, _ := startRegistry(t)
	src := writeGGUF(t, t.TempDir(), "tiny")
	if _, err := c.Registry().Push(ctx, "tiny", src, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"pull bad version", func() error { _, err := c.Registry().Pull(ctx, "tiny@0", t.TempDir(), nil); return err }, codes.InvalidArgument, "tiny@0"},
		{"pull bad name", func() error { _, err := c.Registry().Pull(ctx, "Tiny", t.TempDir(), nil); return err }, codes.InvalidArgument, "Tiny"},
		{"pull unknown", func() error { _, err := c.Registry().Pull(ctx, "nope", t.TempDir(), nil); return err }, codes.NotFound, "nope"},
		{"pull unknown alias", func() error { _, err := c.Registry().Pull(ctx, "tiny:prod", t.TempDir(), nil); return err }, codes.NotFound, "prod"},
		{"push bad name", func() error { _, err := c.Registry().Push(ctx, "../x", src, nil); return err }, codes.InvalidArgument, "../x"},
		{"push bad alias", func() error {
			_, err := c.Registry().Push(ctx, "tiny", src, &sdk.PushOptions{Aliases: []string{"12"}})
			return err
		}, codes.InvalidArgument, "12"},
		{"delete bad ref", func() error { return c.Registry().Delete(ctx, "tiny@x", false) }, codes.InvalidArgument, "tiny@x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %v (code %v), want code %v and a message naming %q", err, status.Code(err), tt.code, tt.msg)
			}
		})
	}
	if _, err := c.Registry().Push(ctx, "x", filepath.Join(t.TempDir(), "missing.gguf"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("push of a missing file: got %v, want ErrNotExist", err)
	}
}

func TestListAliasDelete(t *testing.T) {
	ctx := context.Background()
	c, _ := startRegistry(t)
	dir := t.TempDir()
	for _, n := range []string{"b", "a", "c"} {
		if _, err := c.Registry().Push(ctx, n, writeGGUF(t, dir, n), nil); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := c.Registry().List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.GetName())
	}
	if got := strings.Join(names, ","); got != "a,b,c" {
		t.Errorf("got models %s, want a,b,c", got)
	}
	if prev, err := c.Registry().SetAlias(ctx, "a", "prod", 1); err != nil || prev != 0 {
		t.Fatalf("set alias: got %d, %v, want 0, nil", prev, err)
	}
	if v, err := c.Registry().Resolve(ctx, "a:prod"); err != nil || v.GetRef().Text() != "a@1" {
		t.Fatalf("resolve a:prod: got %v, %v, want a@1", v.GetRef().Text(), err)
	}
	if err := c.Registry().Delete(ctx, "b", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Registry().Get(ctx, "b"); status.Code(err) != codes.NotFound {
		t.Errorf("get deleted model: got %v, want NotFound", err)
	}
}

func assertSameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s: %d bytes differ from %s (%d bytes)", got, len(a), want, len(b))
	}
}

func TestPushPullEmptyFile(t *testing.T) {
	ctx := context.Background()
	c, _ := startRegistry(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lm := &sdk.LocalModel{Files: []*sdk.LocalFile{{Path: "empty.txt", Local: p}}}
	up, err := c.Registry().Upload(ctx, lm, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Registry().RPC().CreateVersion(ctx, &registryv1.CreateVersionRequest{Name: "e", CreateModel: true,
		Format: modelv1.ModelFormat_MODEL_FORMAT_GGUF, Files: up.Files})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := c.Registry().Pull(ctx, "e", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(pr.Paths[0]); err != nil || st.Size() != 0 {
		t.Errorf("got %v, %v, want an empty file", st, err)
	}
}
