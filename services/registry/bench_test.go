package registry

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// BenchmarkUpload measures the resumable upload path: 1 MiB chunks, each
// fsynced and recorded, then the commit.
func BenchmarkUpload(b *testing.B) {
	const size, chunk = 16 << 20, 1 << 20
	ctx := context.Background()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, size/8)
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		data[0] = byte(i) // a new blob each time
		data[1] = byte(i >> 8)
		u, err := s.BeginUpload(ctx, digestOf(data), size)
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < size; off += chunk {
			if _, err := s.WriteChunk(ctx, u.ID, off, data[off:off+chunk]); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.CommitUpload(ctx, u.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutBlob is the one-call path for in-process producers.
func BenchmarkPutBlob(b *testing.B) {
	const size = 16 << 20
	ctx := context.Background()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, size/8)
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		data[0], data[1] = byte(i), byte(i>>8)
		if _, err := s.PutBlob(ctx, bytes.NewReader(data), ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadBlob reads a stored blob through OpenBlob.
func BenchmarkReadBlob(b *testing.B) {
	const size = 16 << 20
	ctx := context.Background()
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	info, err := s.PutBlob(ctx, bytes.NewReader(make([]byte, size)), "")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		rc, _, err := s.OpenBlob(ctx, info.Digest)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}
