package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestModels(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	for _, n := range []string{"beta", "alpha", "alpha2", "gamma"} {
		if _, err := s.CreateModel(ctx, n, ModelSpec{Description: "d " + n, Labels: map[string]string{"team": "x"}}); err != nil {
			t.Fatalf("CreateModel(%s): %v", n, err)
		}
	}
	_, err := s.CreateModel(ctx, "alpha", ModelSpec{})
	wantErr(t, "CreateModel(alpha) again", err, ErrAlreadyExists)
	_, err = s.CreateModel(ctx, "../alpha", ModelSpec{})
	wantErr(t, "CreateModel(../alpha)", err, ErrInvalid)
	_, err = s.CreateModel(ctx, "x", ModelSpec{Labels: map[string]string{"bad key": "v"}})
	wantErr(t, "CreateModel with bad label", err, ErrInvalid)

	m, err := s.GetModel(ctx, "alpha")
	if err != nil || m.Name != "alpha" || m.Description != "d alpha" || m.Labels["team"] != "x" || m.LatestVersion != 0 {
		t.Fatalf("GetModel(alpha): got %+v, %v", m, err)
	}
	_, err = s.GetModel(ctx, "nope")
	wantErr(t, "GetModel(nope)", err, ErrNotFound)

	tests := []struct {
		prefix string
		size   int
		want   []string
	}{
		{"", 0, []string{"alpha", "alpha2", "beta", "gamma"}},
		{"", 1, []string{"alpha", "alpha2", "beta", "gamma"}},
		{"", 3, []string{"alpha", "alpha2", "beta", "gamma"}},
		{"alpha", 1, []string{"alpha", "alpha2"}},
		{"b", 0, []string{"beta"}},
		{"z", 0, nil},
	}
	for _, tt := range tests {
		var got []string
		token := ""
		for pages := 0; ; pages++ {
			ms, next, err := s.ListModels(ctx, ListOptions{Prefix: tt.prefix, PageSize: tt.size, PageToken: token})
			if err != nil {
				t.Fatalf("ListModels(%q, %d): %v", tt.prefix, tt.size, err)
			}
			if tt.size > 0 && len(ms) > tt.size {
				t.Fatalf("ListModels(%q, %d): page of %d", tt.prefix, tt.size, len(ms))
			}
			for _, m := range ms {
				got = append(got, m.Name)
			}
			if token = next; token == "" || pages > 10 {
				break
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ListModels(%q, %d): got %v, want %v", tt.prefix, tt.size, got, tt.want)
		}
	}
	_, _, err = s.ListModels(ctx, ListOptions{PageToken: "!!"})
	wantErr(t, "ListModels(bad token)", err, ErrInvalid)
	_, _, err = s.ListModels(ctx, ListOptions{PageSize: 5000})
	wantErr(t, "ListModels(page size 5000)", err, ErrInvalid)

	if n, err := s.DeleteModel(ctx, "beta"); err != nil || n != 0 {
		t.Fatalf("DeleteModel(beta): got %d, %v", n, err)
	}
	_, err = s.GetModel(ctx, "beta")
	wantErr(t, "GetModel(beta) after delete", err, ErrNotFound)
	_, err = s.DeleteModel(ctx, "beta")
	wantErr(t, "DeleteModel(beta) again", err, ErrNotFound)
}

func TestVersions(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	d1 := upload(t, s, []byte("model one"))
	d2 := upload(t, s, []byte(`{"vocab_size": 3}`))

	_, err := s.CreateVersion(ctx, "tiny", ggufSpec(d1))
	wantErr(t, "CreateVersion without model", err, ErrNotFound)

	missing := digestOf([]byte("never uploaded"))
	spec := ggufSpec(missing)
	spec.CreateModel = true
	_, err = s.CreateVersion(ctx, "tiny", spec)
	wantErr(t, "CreateVersion with missing blob", err, ErrFailedPrecondition)
	if _, err := s.GetModel(ctx, "tiny"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed CreateVersion left the model behind: %v", err)
	}

	bad := []struct {
		what string
		edit func(*VersionSpec)
	}{
		{"no files", func(v *VersionSpec) { v.Files = nil }},
		{"traversal path", func(v *VersionSpec) { v.Files[0].Path = "../model.gguf" }},
		{"duplicate path", func(v *VersionSpec) { v.Files = append(v.Files, v.Files[0]) }},
		{"bad digest", func(v *VersionSpec) { v.Files[0].Digest = "sha256:xyz" }},
		{"wrong size", func(v *VersionSpec) { v.Files[0].Size = 1 }},
		{"bad format", func(v *VersionSpec) { v.Metadata.Format = "zip" }},
		{"bad quant", func(v *VersionSpec) { v.Metadata.QuantType = "Q4_0" }},
		{"bad config json", func(v *VersionSpec) { v.Metadata.Lineage.ConfigJSON = "{" }},
		{"bad parent", func(v *VersionSpec) { v.Metadata.Lineage.Parent = &Ref{Name: "../x"} }},
		{"numeric alias", func(v *VersionSpec) { v.Aliases = []string{"2"} }},
	}
	for _, tt := range bad {
		spec := ggufSpec(d1)
		spec.CreateModel = true
		tt.edit(&spec)
		_, err := s.CreateVersion(ctx, "tiny", spec)
		wantErr(t, "CreateVersion with "+tt.what, err, ErrInvalid)
	}

	full := VersionSpec{
		CreateModel: true,
		Description: "first",
		Files: []BlobRef{
			{Path: "model.gguf", Digest: Digest(strings.TrimPrefix(string(d1), "sha256:")), MediaType: "application/octet-stream"},
			{Path: "config.json", Digest: d2, Size: int64(len(`{"vocab_size": 3}`))},
		},
		Metadata: Metadata{
			Architecture: "bitnet", ParameterCount: 1234, Format: FormatGGUF, QuantType: QuantTQ10,
			ContextLength: 256, VocabSize: 3,
			HardwareHints: HardwareHints{MinMemoryBytes: 1 << 20, PreferredKernels: []string{"avx512"}},
			Lineage: Lineage{Source: SourceQuantizer, JobID: "job-1", Parent: &Ref{Name: "tiny-f32", Version: 2},
				DatasetDigest: d2, ConfigJSON: `{"lr": 0.1}`, Metrics: map[string]float64{"ppl_after": 12.5}},
			Labels: map[string]string{"k": "v"},
		},
		Aliases: []string{"prod"},
	}
	v, err := s.CreateVersion(ctx, "tiny", full)
	if err != nil {
		t.Fatalf("CreateVersion: %v", err)
	}
	if v.Ref != (Ref{Name: "tiny", Version: 1}) || v.Files[0].Digest != d1 || v.Files[0].Size != 9 || v.SizeBytes != 9+17 ||
		!reflect.DeepEqual(v.Aliases, []string{"prod"}) || v.Metadata.Lineage.Metrics["ppl_after"] != 12.5 {
		t.Fatalf("CreateVersion: got %+v", v)
	}
	got, err := s.GetVersion(ctx, "tiny", 1)
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("GetVersion(tiny, 1): got %+v, %v, want %+v", got, err, v)
	}
	for i, want := range []uint32{2, 3} {
		v, err := s.CreateVersion(ctx, "tiny", ggufSpec(d1))
		if err != nil || v.Ref.Version != want {
			t.Fatalf("CreateVersion #%d: got version %d, %v, want %d", i+2, v.Ref.Version, err, want)
		}
	}
	if _, err := s.DeleteVersion(ctx, "tiny", 3, false); err != nil {
		t.Fatalf("DeleteVersion(3): %v", err)
	}
	_, err = s.GetVersion(ctx, "tiny", 3)
	wantErr(t, "GetVersion(3) after delete", err, ErrNotFound)
	v4, err := s.CreateVersion(ctx, "tiny", ggufSpec(d1))
	if err != nil || v4.Ref.Version != 4 {
		t.Fatalf("CreateVersion after deleting 3: got %d, %v, want 4 (numbers are never reused)", v4.Ref.Version, err)
	}

	var nums []uint32
	token := ""
	for {
		vs, next, err := s.ListVersions(ctx, "tiny", ListOptions{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatalf("ListVersions: %v", err)
		}
		for _, v := range vs {
			nums = append(nums, v.Ref.Version)
		}
		if token = next; token == "" {
			break
		}
	}
	if !reflect.DeepEqual(nums, []uint32{4, 2, 1}) {
		t.Errorf("ListVersions: got %v, want [4 2 1]", nums)
	}
	m, err := s.GetModel(ctx, "tiny")
	if err != nil || m.LatestVersion != 4 || m.VersionCount != 3 {
		t.Errorf("GetModel(tiny): got latest %d count %d, %v, want 4 and 3", m.LatestVersion, m.VersionCount, err)
	}
	if info, err := s.StatBlob(ctx, d1); err != nil || info.RefCount != 3 {
		t.Errorf("StatBlob(d1): got ref count %d, %v, want 3", info.RefCount, err)
	}

	if n, err := s.DeleteModel(ctx, "tiny"); err != nil || n != 3 {
		t.Fatalf("DeleteModel(tiny): got %d, %v, want 3", n, err)
	}
	v5, err := s.CreateVersion(ctx, "tiny", VersionSpec{CreateModel: true, Files: []BlobRef{{Path: "model.gguf", Digest: upload(t, s, []byte("again"))}}, Metadata: Metadata{Format: FormatGGUF}})
	if err != nil || v5.Ref.Version != 5 {
		t.Fatalf("CreateVersion after DeleteModel: got %d, %v, want 5", v5.Ref.Version, err)
	}
}

func TestAliasesAndResolve(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	d := upload(t, s, []byte("weights"))
	for range 3 {
		spec := ggufSpec(d)
		spec.CreateModel = true
		if _, err := s.CreateVersion(ctx, "tiny", spec); err != nil {
			t.Fatal(err)
		}
	}
	if _, prev, err := s.SetAlias(ctx, "tiny", "prod", 1); err != nil || prev != 0 {
		t.Fatalf("SetAlias(prod, 1): got prev %d, %v", prev, err)
	}
	if m, prev, err := s.SetAlias(ctx, "tiny", "prod", 2); err != nil || prev != 1 || m.Aliases["prod"] != 2 {
		t.Fatalf("SetAlias(prod, 2): got prev %d, aliases %v, %v", prev, m.Aliases, err)
	}
	if _, _, err := s.SetAlias(ctx, "tiny", "canary", 3); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.SetAlias(ctx, "tiny", "prod", 9)
	wantErr(t, "SetAlias to a missing version", err, ErrNotFound)
	_, _, err = s.SetAlias(ctx, "tiny", "7", 1)
	wantErr(t, "SetAlias numeric", err, ErrInvalid)

	tests := []struct {
		ref     string
		version uint32
		kind    error
	}{
		{"tiny", 3, nil},
		{"tiny@1", 1, nil},
		{"tiny:prod", 2, nil},
		{"tiny:canary", 3, nil},
		{"tiny@9", 0, ErrNotFound},
		{"tiny:nope", 0, ErrNotFound},
		{"other", 0, ErrNotFound},
		{"tiny@x", 0, ErrInvalid},
		{"tiny@", 0, ErrInvalid},
		{"Tiny", 0, ErrInvalid},
		{"../tiny", 0, ErrInvalid},
		{"tiny:", 0, ErrInvalid},
	}
	for _, tt := range tests {
		v, err := s.Resolve(ctx, tt.ref)
		if tt.kind != nil {
			wantErr(t, "Resolve("+tt.ref+")", err, tt.kind)
			continue
		}
		if err != nil || v.Ref.Version != tt.version {
			t.Errorf("Resolve(%s): got version %d, %v, want %d", tt.ref, v.Ref.Version, err, tt.version)
		}
	}
	if v, _ := s.Resolve(ctx, "tiny:prod"); v.Ref.Alias != "prod" || !reflect.DeepEqual(v.Aliases, []string{"prod"}) {
		t.Errorf("Resolve(tiny:prod): got ref %+v aliases %v", v.Ref, v.Aliases)
	}

	_, err = s.DeleteVersion(ctx, "tiny", 2, false)
	wantErr(t, "DeleteVersion of an aliased version", err, ErrFailedPrecondition)
	if del, err := s.DeleteVersion(ctx, "tiny", 3, true); err != nil || !reflect.DeepEqual(del, []string{"canary"}) {
		t.Fatalf("DeleteVersion(3, force): got %v, %v", del, err)
	}
	if v, err := s.Resolve(ctx, "tiny"); err != nil || v.Ref.Version != 2 {
		t.Errorf("Resolve(tiny) after deleting 3: got %d, %v, want 2", v.Ref.Version, err)
	}
	_, err = s.Resolve(ctx, "tiny:canary")
	wantErr(t, "Resolve(tiny:canary) after force delete", err, ErrNotFound)
	if prev, err := s.DeleteAlias(ctx, "tiny", "prod"); err != nil || prev != 2 {
		t.Fatalf("DeleteAlias(prod): got %d, %v", prev, err)
	}
	_, err = s.DeleteAlias(ctx, "tiny", "prod")
	wantErr(t, "DeleteAlias(prod) again", err, ErrNotFound)
}

func TestUploadResumeAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	d := digestOf(data)

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.BeginUpload(ctx, d, int64(len(data)))
	if err != nil || u.State != UploadActive || u.Offset != 0 {
		t.Fatalf("BeginUpload: got %+v, %v", u, err)
	}
	off, err := s.WriteChunk(ctx, u.ID, 0, data[:5000])
	if err != nil || off != 5000 {
		t.Fatalf("WriteChunk(0): got %d, %v", off, err)
	}
	// A chunk at a wrong offset tells where to resume.
	off, err = s.WriteChunk(ctx, u.ID, 6000, data[6000:7000])
	var oe *OffsetError
	if !errors.As(err, &oe) || oe.Offset != 5000 || off != 5000 || !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("WriteChunk(6000): got %d, %v, want an OffsetError at 5000", off, err)
	}
	_, err = s.CommitUpload(ctx, u.ID)
	wantErr(t, "CommitUpload of a partial upload", err, ErrFailedPrecondition)
	// Bytes written but never acknowledged (a crash mid-chunk) are dropped.
	f, err := os.OpenFile(filepath.Join(dir, "uploads", u.ID), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("garbage"))
	f.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	st, err := s.UploadStatus(ctx, u.ID)
	if err != nil || st.Offset != 5000 || st.State != UploadActive || st.Digest != d {
		t.Fatalf("UploadStatus after reopen: got %+v, %v", st, err)
	}
	// Announcing the same blob again finds the same upload.
	again, err := s.BeginUpload(ctx, d, int64(len(data)))
	if err != nil || again.ID != u.ID || again.Offset != 5000 {
		t.Fatalf("BeginUpload again: got %+v, %v, want id %s at 5000", again, err, u.ID)
	}
	if off, err = s.WriteChunk(ctx, u.ID, 5000, data[5000:]); err != nil || off != int64(len(data)) {
		t.Fatalf("WriteChunk(5000): got %d, %v", off, err)
	}
	_, err = s.WriteChunk(ctx, u.ID, off, []byte("x"))
	wantErr(t, "WriteChunk past the size", err, ErrInvalid)
	info, err := s.CommitUpload(ctx, u.ID)
	if err != nil || info.Digest != d || info.Size != int64(len(data)) {
		t.Fatalf("CommitUpload: got %+v, %v", info, err)
	}
	if again, err := s.CommitUpload(ctx, u.ID); err != nil || again != info {
		t.Fatalf("CommitUpload again: got %+v, %v, want %+v", again, err, info)
	}
	if st, err := s.UploadStatus(ctx, u.ID); err != nil || st.State != UploadComplete {
		t.Fatalf("UploadStatus after commit: got %+v, %v", st, err)
	}
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Fatalf("blob content differs (%d bytes, want %d)", len(got), len(data))
	}
	// Offset reads.
	rc, _, err := s.OpenBlob(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := rc.Seek(12345, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, data[12345:12355]) {
		t.Fatalf("read at 12345: got %q, %v", buf, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", d.Hex()[:2], d.Hex())); err != nil {
		t.Fatalf("blob file not content-addressed: %v", err)
	}
	if u, err := s.BeginUpload(ctx, d, int64(len(data))); err != nil || u.State != UploadComplete || u.ID != "" {
		t.Fatalf("BeginUpload of a stored blob: got %+v, %v, want complete", u, err)
	}
	_, err = s.BeginUpload(ctx, d, 3)
	wantErr(t, "BeginUpload of a stored blob with another size", err, ErrInvalid)
}

func TestUploadErrors(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), WithMaxBlobSize(100))
	good := []byte("the right bytes")
	d := digestOf(good)

	_, err := s.BeginUpload(ctx, d, 101)
	wantErr(t, "BeginUpload above the limit", err, ErrTooLarge)
	_, err = s.BeginUpload(ctx, "sha256:nothex", 1)
	wantErr(t, "BeginUpload bad digest", err, ErrInvalid)
	_, err = s.BeginUpload(ctx, d, -1)
	wantErr(t, "BeginUpload negative size", err, ErrInvalid)
	for _, id := range []string{"", "../../registry.db", strings.Repeat("A", 32)} {
		_, err = s.WriteChunk(ctx, id, 0, []byte("x"))
		wantErr(t, fmt.Sprintf("WriteChunk(%q)", id), err, ErrInvalid)
	}
	_, err = s.UploadStatus(ctx, strings.Repeat("0", 32))
	wantErr(t, "UploadStatus(unknown)", err, ErrNotFound)

	// Corrupt bytes: mismatch, the upload restarts from 0.
	u, err := s.BeginUpload(ctx, d, int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.ToUpper(good)
	if _, err := s.WriteChunk(ctx, u.ID, 0, bad); err != nil {
		t.Fatal(err)
	}
	_, err = s.CommitUpload(ctx, u.ID)
	wantErr(t, "CommitUpload of corrupt bytes", err, ErrDigestMismatch)
	if st, err := s.UploadStatus(ctx, u.ID); err != nil || st.Offset != 0 || st.State != UploadActive {
		t.Fatalf("UploadStatus after mismatch: got %+v, %v, want active at 0", st, err)
	}
	if fi, err := os.Stat(s.uploadPath(u.ID)); err != nil || fi.Size() != 0 {
		t.Fatalf("upload file after mismatch: %v, %v, want empty", fi, err)
	}
	_, err = s.StatBlob(ctx, d)
	wantErr(t, "StatBlob after mismatch", err, ErrNotFound)
	if _, err := s.WriteChunk(ctx, u.ID, 0, good); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(ctx, u.ID); err != nil {
		t.Fatalf("CommitUpload after restart: %v", err)
	}

	// PutBlob with a wrong expected digest and above the limit.
	_, err = s.PutBlob(ctx, strings.NewReader("abc"), d)
	wantErr(t, "PutBlob mismatch", err, ErrDigestMismatch)
	_, err = s.PutBlob(ctx, bytes.NewReader(make([]byte, 101)), "")
	wantErr(t, "PutBlob above the limit", err, ErrTooLarge)
	if info, err := s.PutBlob(ctx, strings.NewReader("abc"), ""); err != nil || info.Digest != digestOf([]byte("abc")) {
		t.Fatalf("PutBlob: got %+v, %v", info, err)
	}
	_, _, err = s.OpenBlob(ctx, digestOf([]byte("nope")))
	wantErr(t, "OpenBlob(unknown)", err, ErrNotFound)
	entries, _ := os.ReadDir(filepath.Join(s.Dir(), "uploads"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "put-") {
			t.Errorf("PutBlob left %s behind", e.Name())
		}
	}
}

func TestConcurrentUploadsOfOneBlob(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	data := bytes.Repeat([]byte("concurrent "), 300)
	d := digestOf(data)
	const workers = 6
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				u, err := s.BeginUpload(ctx, d, int64(len(data)))
				if err != nil {
					return err
				}
				off := u.Offset
				for u.State == UploadActive && off < int64(len(data)) {
					end := min(off+int64(97+w), int64(len(data)))
					next, err := s.WriteChunk(ctx, u.ID, off, data[off:end])
					var oe *OffsetError
					switch {
					case errors.As(err, &oe):
						off = oe.Offset // another writer got there first
					case errors.Is(err, ErrFailedPrecondition):
						off = int64(len(data)) // completed by another writer
					case err != nil:
						return err
					default:
						off = next
					}
				}
				if u.State == UploadActive {
					if _, err := s.CommitUpload(ctx, u.ID); err != nil {
						return err
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("worker: %v", err)
		}
	}
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Fatalf("blob content differs")
	}
	files, _ := filepath.Glob(filepath.Join(s.Dir(), "blobs", "sha256", "*", "*"))
	if len(files) != 1 {
		t.Errorf("got %d blob files, want 1: %v", len(files), files)
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	dir := t.TempDir()
	s := openStore(t, dir, WithClock(clock.Now), WithBlobGrace(time.Hour), WithUploadTTL(2*time.Hour))

	used := upload(t, s, []byte("used by a version"))
	fresh := upload(t, s, []byte("uploaded, not yet used"))
	spec := ggufSpec(used)
	spec.CreateModel = true
	if _, err := s.CreateVersion(ctx, "tiny", spec); err != nil {
		t.Fatal(err)
	}
	partial, err := s.BeginUpload(ctx, digestOf([]byte("abandoned")), 9)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteChunk(ctx, partial.ID, 0, []byte("aban")); err != nil {
		t.Fatal(err)
	}
	// Debris: a blob file and an upload file without records, old enough.
	orphan := digestOf([]byte("orphan"))
	orphanPath := s.blobPath(orphan)
	os.MkdirAll(filepath.Dir(orphanPath), 0o755)
	os.WriteFile(orphanPath, []byte("orphan"), 0o600)
	strayUpload := filepath.Join(dir, "uploads", strings.Repeat("e", 32))
	os.WriteFile(strayUpload, []byte("x"), 0o600)
	old := clock.Now().Add(-3 * time.Hour)
	os.Chtimes(orphanPath, old, old)
	os.Chtimes(strayUpload, old, old)

	rep, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Blobs) != 0 || len(rep.Uploads) != 0 || rep.OrphanFiles != 2 {
		t.Fatalf("GC within grace: got %+v, want only the 2 orphan files", rep)
	}
	if _, err := os.Stat(orphanPath); !os.IsNotExist(err) {
		t.Errorf("orphan blob file still there: %v", err)
	}

	clock.Advance(90 * time.Minute)
	rep, err = s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Blobs, []Digest{fresh}) || len(rep.Uploads) != 0 {
		t.Fatalf("GC after the grace: got %+v, want blob %s only", rep, fresh)
	}
	_, err = s.StatBlob(ctx, fresh)
	wantErr(t, "StatBlob of a collected blob", err, ErrNotFound)
	if _, err := os.Stat(s.blobPath(fresh)); !os.IsNotExist(err) {
		t.Errorf("collected blob file still there: %v", err)
	}
	readBlob(t, s, used)

	if st, _ := s.UploadStatus(ctx, partial.ID); st.State != UploadActive {
		t.Fatalf("upload before its ttl: got %v, want active", st.State)
	}
	clock.Advance(time.Hour)
	if st, _ := s.UploadStatus(ctx, partial.ID); st.State != UploadExpired {
		t.Fatalf("upload after its ttl: got %v, want expired", st.State)
	}
	_, err = s.WriteChunk(ctx, partial.ID, 4, []byte("doned"))
	wantErr(t, "WriteChunk to an expired upload", err, ErrFailedPrecondition)
	rep, err = s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(rep.Uploads, partial.ID) {
		t.Fatalf("GC after the upload ttl: got %+v, want upload %s", rep, partial.ID)
	}
	_, err = s.UploadStatus(ctx, partial.ID)
	wantErr(t, "UploadStatus of a collected upload", err, ErrNotFound)
	if _, err := os.Stat(s.uploadPath(partial.ID)); !os.IsNotExist(err) {
		t.Errorf("expired upload file still there: %v", err)
	}

	// Deleting the last version referring to a blob collects it at once.
	if _, err := s.DeleteModel(ctx, "tiny"); err != nil {
		t.Fatal(err)
	}
	_, err = s.StatBlob(ctx, used)
	wantErr(t, "StatBlob after deleting its model", err, ErrNotFound)

	// Announcing a stored blob again protects it for another grace period.
	again := upload(t, s, []byte("announced again"))
	clock.Advance(50 * time.Minute)
	if _, err := s.BeginUpload(ctx, again, int64(len("announced again"))); err != nil {
		t.Fatal(err)
	}
	clock.Advance(50 * time.Minute)
	if rep, _ := s.GC(ctx); contains(rep.Blobs, again) {
		t.Fatalf("GC removed a blob announced 50 minutes ago")
	}
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestCommitWhileGCRuns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStore(t, t.TempDir(), WithBlobGrace(time.Minute))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := s.GC(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("GC: %v", err)
				return
			}
		}
	}()
	n := 20
	if testing.Short() {
		n = 5
	}
	for i := range n {
		data := []byte(fmt.Sprintf("blob %d", i))
		d := upload(t, s, data)
		spec := ggufSpec(d)
		spec.CreateModel = true
		if _, err := s.CreateVersion(ctx, fmt.Sprintf("m%d", i), spec); err != nil {
			t.Fatalf("CreateVersion right after the upload: %v", err)
		}
		if got := readBlob(t, s, d); !bytes.Equal(got, data) {
			t.Fatalf("blob %d: got %q", i, got)
		}
	}
	cancel()
	wg.Wait()
}

func TestRestartKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := upload(t, s, []byte("gguf bytes"))
	spec := ggufSpec(d)
	spec.CreateModel = true
	spec.Aliases = []string{"prod"}
	spec.Metadata.Lineage = Lineage{Source: SourceUpload, Parent: &Ref{Name: "base", Alias: "prod"}}
	v1, err := s.CreateVersion(ctx, "tiny", spec)
	if err != nil {
		t.Fatal(err)
	}
	m1, err := s.GetModel(ctx, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetModel(ctx, "tiny")
	wantErr(t, "GetModel after Close", err, ErrClosed)

	s = openStore(t, dir)
	v2, err := s.Resolve(ctx, "tiny:prod")
	v2.Ref.Alias = ""
	if err != nil || !reflect.DeepEqual(v1, v2) {
		t.Fatalf("after reopen: got %+v, %v, want %+v", v2, err, v1)
	}
	m2, err := s.GetModel(ctx, "tiny")
	if err != nil || !reflect.DeepEqual(m1, m2) {
		t.Fatalf("GetModel after reopen: got %+v, want %+v", m2, m1)
	}
	if got := readBlob(t, s, d); string(got) != "gguf bytes" {
		t.Fatalf("blob after reopen: got %q", got)
	}
}

// A crash after a blob's rename but before its record leaves a file that
// the database does not know: the blob counts as absent, a new upload of it
// succeeds, and GC leaves young debris alone.
func TestUnrecordedBlobFile(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	data := []byte("renamed, never recorded")
	d := digestOf(data)
	os.MkdirAll(filepath.Dir(s.blobPath(d)), 0o755)
	if err := os.WriteFile(s.blobPath(d), data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.StatBlob(ctx, d)
	wantErr(t, "StatBlob of an unrecorded file", err, ErrNotFound)
	if rep, err := s.GC(ctx); err != nil || rep.OrphanFiles != 0 {
		t.Fatalf("GC of young debris: got %+v, %v, want nothing removed", rep, err)
	}
	upload(t, s, data)
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Fatalf("blob: got %q", got)
	}
}
