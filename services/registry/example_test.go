package registry_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "registry-example")
	defer os.RemoveAll(dir)
	s, err := registry.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	blob, _ := s.PutBlob(ctx, strings.NewReader("GGUF..."), "")
	v, err := s.CreateVersion(ctx, "tiny", registry.VersionSpec{
		CreateModel: true,
		Files:       []registry.BlobRef{{Path: "model.gguf", Digest: blob.Digest}},
		Metadata:    registry.Metadata{Format: registry.FormatGGUF, QuantType: registry.QuantTQ20},
		Aliases:     []string{"prod"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.Ref)

	got, _ := s.Resolve(ctx, "tiny:prod")
	rc, size, _ := s.OpenBlob(ctx, got.Files[0].Digest)
	defer rc.Close()
	data, _ := io.ReadAll(rc)
	fmt.Println(size, string(data))

	_, err = s.Resolve(ctx, "tiny@0")
	fmt.Println(err)
	// Output:
	// tiny@1
	// 7 GGUF...
	// reference "tiny@0": version "0": want a number from 1 to 4294967295: invalid argument
}
