package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
)

// partialSuffix names a file being downloaded; Pull resumes from its size.
const partialSuffix = ".partial"

// PullOptions are the optional parts of Pull.
type PullOptions struct {
	Progress ProgressFunc
}

func (o *PullOptions) progress() ProgressFunc {
	if o == nil {
		return nil
	}
	return o.Progress
}

// PullResult is what Pull did.
type PullResult struct {
	Ref           string // the resolved version, NAME@N
	Version       *registryv1.ModelVersion
	Paths         []string // the local files, in the version's order
	BytesReceived int64
	BytesSkipped  int64 // bytes already present (complete files or partial downloads)
}

// Pull downloads the version ref names into destDir (created when needed),
// one file per version file at its path. A complete file with the right
// sha256 is kept; a partial download (FILE.partial) resumes from its size;
// each file is verified against its sha256 before it is renamed into place,
// and a mismatch removes the partial file and fails with ErrDigestMismatch.
func (r *RegistryClient) Pull(ctx context.Context, ref, destDir string, o *PullOptions) (*PullResult, error) {
	v, err := r.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	res := &PullResult{Ref: v.GetRef().Text(), Version: v}
	op := fmt.Sprintf("pull %s", res.Ref)
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for _, f := range v.GetFiles() {
		rel := filepath.FromSlash(f.GetPath())
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("%s: file path %q escapes the destination directory", op, f.GetPath())
		}
		dest := filepath.Join(destDir, rel)
		got, skipped, err := r.pullFile(ctx, f, dest, o.progress())
		res.BytesReceived += got
		res.BytesSkipped += skipped
		if err != nil {
			return res, fmt.Errorf("%s: %w", op, err)
		}
		res.Paths = append(res.Paths, dest)
	}
	return res, nil
}

// pullFile brings one file to dest, resuming dest.partial.
func (r *RegistryClient) pullFile(ctx context.Context, f *registryv1.VersionFile, dest string, prog ProgressFunc) (received, skipped int64, err error) {
	size := int64(f.GetSizeBytes())
	if ok, err := hasFile(dest, size, f.GetSha256()); err != nil || ok {
		if ok {
			prog.report(Progress{Op: OpDownload, File: f.GetPath(), Done: size, Total: size, Skipped: true})
			return 0, size, nil
		}
		return 0, 0, err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return 0, 0, err
	}
	part := dest + partialSuffix
	out, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if out != nil {
			out.Close()
		}
	}()
	h := sha256.New()
	off, err := resumePartial(out, h, size)
	if err != nil {
		return 0, 0, fmt.Errorf("resume %s: %w", part, err)
	}
	skipped = off
	err = r.c.retry.retryLoop(ctx, resumable, func() error {
		n, err := r.download(ctx, f, out, h, off, prog)
		off += n
		received += n
		return err
	})
	if err != nil {
		return received, skipped, wrap(fmt.Sprintf("download %s", f.GetPath()), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.GetSha256() {
		out.Close()
		out = nil
		os.Remove(part)
		return received, skipped, fmt.Errorf("file %s: got sha256 %s, want %s (corrupt blob in the registry or in transit; partial file removed): %w",
			f.GetPath(), got, f.GetSha256(), ErrDigestMismatch)
	}
	if err := out.Sync(); err != nil {
		return received, skipped, err
	}
	err = out.Close()
	out = nil
	if err != nil {
		return received, skipped, err
	}
	return received, skipped, os.Rename(part, dest)
}

// hasFile reports whether path holds exactly the wanted bytes.
func hasFile(path string, size int64, sha string) (bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil || st.Size() != size {
		return false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == sha, nil
}

// resumePartial hashes the bytes a partial file holds and leaves the file
// positioned after them; a file longer than the blob starts over.
func resumePartial(f *os.File, h hash.Hash, size int64) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() > size {
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		_, err := f.Seek(0, io.SeekStart)
		return 0, err
	}
	n, err := io.Copy(h, f)
	return n, err
}

// download receives the blob from off, appending to out and h.
func (r *RegistryClient) download(ctx context.Context, f *registryv1.VersionFile, out io.Writer, h hash.Hash, off int64, prog ProgressFunc) (int64, error) {
	size := int64(f.GetSizeBytes())
	if off == size && size > 0 {
		return 0, nil
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := r.rpc.DownloadBlob(sctx, &registryv1.DownloadBlobRequest{Sha256: f.GetSha256(), Offset: uint64(off)})
	if err != nil {
		return 0, err
	}
	var got int64
	prog.report(Progress{Op: OpDownload, File: f.GetPath(), Done: off, Total: size})
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return got, err
		}
		if msg.GetOffset() != uint64(off+got) {
			return got, status.Errorf(codes.DataLoss, "chunk at offset %d, want %d", msg.GetOffset(), off+got)
		}
		if off+got+int64(len(msg.GetData())) > size {
			return got, status.Errorf(codes.DataLoss, "blob longer than its %d bytes", size)
		}
		if _, err := out.Write(msg.GetData()); err != nil {
			return got, fmt.Errorf("write: %w", err)
		}
		h.Write(msg.GetData())
		got += int64(len(msg.GetData()))
		prog.report(Progress{Op: OpDownload, File: f.GetPath(), Done: off + got, Total: size})
	}
	if off+got != size {
		return got, status.Errorf(codes.Unavailable, "stream ended at offset %d of %d", off+got, size)
	}
	return got, nil
}
