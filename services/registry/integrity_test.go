package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"

	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha256Of(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// corruptFile flips 16 bytes of path at off.
func corruptFile(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 16)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] ^= 0xff
	}
	if _, err := f.WriteAt(buf, off); err != nil {
		t.Fatal(err)
	}
}

// TestResumeAfterCorruptPartial is defect 2: an upload interrupted by a
// crash whose partial bytes were changed on disk before the restart must
// not commit a blob whose bytes differ from its digest. The corrupt partial
// is dropped when the upload is resumed (it restarts from 0), and the
// commit hashes the bytes on disk, not a saved hash state.
func TestResumeAfterCorruptPartial(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := randomBytes(1<<20, 1)
	d := digestOf(data)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.BeginUpload(ctx, d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteChunk(ctx, u.ID, 0, data[:1<<19]); err != nil {
		t.Fatal(err)
	}
	s.Close() // the crash
	corruptFile(t, s.uploadPath(u.ID), 1000)

	s = openStore(t, dir)
	again, err := s.BeginUpload(ctx, d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if again.Offset != 0 {
		t.Errorf("resumed a corrupt partial upload at offset %d, want 0 (dropped)", again.Offset)
	}
	off := again.Offset
	if off, err = s.WriteChunk(ctx, again.ID, off, data[off:]); err != nil || off != int64(len(data)) {
		t.Fatalf("WriteChunk: got %d, %v", off, err)
	}
	if _, err := s.CommitUpload(ctx, again.ID); err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Fatalf("stored blob %s hashes to sha256:%s", d, sha256Of(got))
	}
}

// TestCommitVerifiesBytesOnDisk: bytes changed on disk after they were
// acknowledged (the saved hash state says they are right) fail the commit,
// which drops them; the upload then completes with the right bytes.
func TestCommitVerifiesBytesOnDisk(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	data := randomBytes(100_000, 2)
	d := digestOf(data)
	u, err := s.BeginUpload(ctx, d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteChunk(ctx, u.ID, 0, data); err != nil {
		t.Fatal(err)
	}
	corruptFile(t, s.uploadPath(u.ID), 5000)
	_, err = s.CommitUpload(ctx, u.ID)
	wantErr(t, "CommitUpload of bytes changed on disk", err, ErrDigestMismatch)
	if _, err := s.StatBlob(ctx, d); err == nil {
		t.Fatal("a blob was stored from bytes that do not hash to its digest")
	}
	if _, err := s.WriteChunk(ctx, u.ID, 0, data); err != nil {
		t.Fatalf("WriteChunk after the mismatch: %v", err)
	}
	if _, err := s.CommitUpload(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Fatal("stored blob differs from the data")
	}
}

// TestRepushRepairsCorruptBlob: a blob whose file no longer hashes to its
// name (stored by an older version through defect 2, or damaged on disk) is
// repaired by pushing the right bytes again: the store checks the stored
// file before answering "already stored", and the version that refers to
// the blob keeps working.
func TestRepushRepairsCorruptBlob(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	data := randomBytes(200_000, 3)
	b, err := s.PutBlob(ctx, bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	d := b.Digest
	if _, err := s.CreateVersion(ctx, "m", VersionSpec{CreateModel: true, Files: []BlobRef{{Path: "w.bin", Digest: d}},
		Metadata: Metadata{Format: FormatHFSafetensors}}); err != nil {
		t.Fatal(err)
	}
	markUnverified(t, s, d) // as stored before blobs were verified
	corruptFile(t, s.blobPath(d), 777)

	u, err := s.BeginUpload(ctx, d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if u.State == UploadComplete {
		t.Fatal("BeginUpload answered complete for a stored blob whose bytes do not match: a re-push cannot repair it")
	}
	if _, _, err := s.OpenBlob(ctx, d); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("OpenBlob of the corrupt blob: got %v, want ErrDigestMismatch", err)
	}
	if _, err := s.WriteChunk(ctx, u.ID, u.Offset, data[u.Offset:]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitUpload(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Fatal("blob not repaired by the re-push")
	}
	if info, err := s.StatBlob(ctx, d); err != nil || info.RefCount != 1 {
		t.Errorf("StatBlob after repair: got %+v, %v, want the version's reference kept", info, err)
	}
	rep, err := s.Scrub(ctx)
	if err != nil || rep.Checked != 1 || len(rep.Corrupt) != 0 {
		t.Errorf("Scrub after repair: got %+v, %v, want 1 checked, none corrupt", rep, err)
	}
	// Scrub finds damage done behind the store's back.
	corruptFile(t, s.blobPath(d), 5)
	rep, err = s.Scrub(ctx)
	if err != nil || len(rep.Corrupt) != 1 || rep.Corrupt[0] != d {
		t.Errorf("Scrub of a damaged blob: got %+v, %v, want %s corrupt", rep, err, d)
	}
}

// markUnverified clears a blob's verified mark, as records written before
// blobs were verified lack it.
func markUnverified(t *testing.T, s *Store, d Digest) {
	t.Helper()
	err := s.update(context.Background(), func(tx *bolt.Tx) error {
		var b blobRec
		if _, err := getJSON(tx.Bucket(bucketBlobs), []byte(d.Hex()), &b); err != nil {
			return err
		}
		b.Verified = false
		return putJSON(tx.Bucket(bucketBlobs), []byte(d.Hex()), &b)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCommitMismatchCode is defect 6's registry part: a wrong sha256 at
// commit is INVALID_ARGUMENT, as the proto documents (it was DATA_LOSS).
func TestCommitMismatchCode(t *testing.T) {
	s := openStore(t, t.TempDir())
	c := startServer(t, s)
	ctx := context.Background()
	data := []byte("the bytes sent")
	cu, err := c.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: sha256Of([]byte("other bytes!!!")), SizeBytes: uint64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = send(t, c, cu.GetUpload().GetUploadId(), data, 0, 4, -1)
	wantCode(t, "UploadBlob with a wrong sha256", err, codes.InvalidArgument)
}

// TestListBadToken is defect 6: page_token=garbage (valid base64, as it
// happens) is INVALID_ARGUMENT for both lists, not an empty page; tokens
// the lists return still page through.
func TestListBadToken(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	b, err := s.PutBlob(ctx, bytes.NewReader([]byte("w")), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		for range 2 {
			if _, err := s.CreateVersion(ctx, name, VersionSpec{CreateModel: true, Files: []BlobRef{{Path: "w.bin", Digest: b.Digest}},
				Metadata: Metadata{Format: FormatHFSafetensors}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := startServer(t, s)
	for _, tok := range []string{"garbage", "Zm9v", encodeToken(tokenVersions, []byte("1"))} {
		_, err := c.ListModels(ctx, &registryv1.ListModelsRequest{PageToken: tok})
		wantCode(t, "ListModels(page_token="+tok+")", err, codes.InvalidArgument)
	}
	for _, tok := range []string{"garbage", encodeToken(tokenModels, []byte("a"))} {
		_, err := c.ListVersions(ctx, &registryv1.ListVersionsRequest{Name: "a", PageToken: tok})
		wantCode(t, "ListVersions(page_token="+tok+")", err, codes.InvalidArgument)
	}
	var names []string
	for tok := ""; ; {
		resp, err := c.ListModels(ctx, &registryv1.ListModelsRequest{PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.GetModels() {
			names = append(names, m.GetName())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(names) != 3 {
		t.Errorf("paged through %v, want a b c", names)
	}
}

// TestTwoPushesOfOneBlob: two clients uploading the same blob at once (a
// push retried, two pushes of models that share a file) both succeed: the
// one whose chunks arrive after the other completed the upload gets the
// stored blob, not FAILED_PRECONDITION.
func TestTwoPushesOfOneBlob(t *testing.T) {
	s := openStore(t, t.TempDir())
	c := startServer(t, s)
	ctx := context.Background()
	data := randomBytes(64<<10, 9)
	cu, err := c.CreateUpload(ctx, &registryv1.CreateUploadRequest{Sha256: sha256Of(data), SizeBytes: uint64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	id := cu.GetUpload().GetUploadId()
	late, err := c.UploadBlob(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := late.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Header{Header: &registryv1.UploadBlobHeader{UploadId: id}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the late stream's header is checked while the upload is at 0
	if _, err := send(t, c, id, data, 0, 16<<10, -1); err != nil {
		t.Fatalf("first push: %v", err)
	}
	_ = late.Send(&registryv1.UploadBlobRequest{Content: &registryv1.UploadBlobRequest_Chunk{Chunk: data}})
	resp, err := late.CloseAndRecv()
	if err != nil || resp.GetBlob().GetSha256() != sha256Of(data) {
		t.Fatalf("second push of the same blob: got %v, %v; want the stored blob", resp, err)
	}
}
