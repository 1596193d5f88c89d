package mesh

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"

	"google.golang.org/grpc/status"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
)

// registryFetcher is an inference.Fetcher that pulls versions from the
// registry into dir/NAME/VERSION (sdk Pull verifies every file's sha256 and
// keeps complete files, so a restarted node does not download again).
type registryFetcher struct {
	conn *regConn
	dir  string

	mu    sync.Mutex
	locks map[string]*sync.Mutex // one per resolved version: one download at a time
}

func newRegistryFetcher(conn *regConn, dir string) *registryFetcher {
	return &registryFetcher{conn: conn, dir: dir, locks: map[string]*sync.Mutex{}}
}

func (f *registryFetcher) lock(key string) *sync.Mutex {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.locks[key]
	if !ok {
		l = &sync.Mutex{}
		f.locks[key] = l
	}
	return l
}

// Fetch implements inference.Fetcher. Registry errors keep their gRPC
// status (NOT_FOUND for an unknown model, INVALID_ARGUMENT for a bad ref).
func (f *registryFetcher) Fetch(ctx context.Context, ref *modelv1.ModelRef) (inference.Local, error) {
	c, err := f.conn.client(ctx)
	if err != nil {
		return inference.Local{}, err
	}
	v, err := c.Resolve(ctx, ref.Text())
	if err != nil {
		return inference.Local{}, relay(err)
	}
	name, ver := v.GetRef().GetName(), v.GetRef().GetVersion()
	resolved := (&modelv1.ModelRef{Name: name, Version: ver}).Text()
	if err := modelv1.CheckName(name); err != nil { // the name becomes a directory
		return inference.Local{}, fmt.Errorf("the registry answered a bad name: %w", err)
	}
	dest := filepath.Join(f.dir, name, strconv.FormatUint(uint64(ver), 10))
	l := f.lock(resolved)
	l.Lock()
	res, err := c.Pull(ctx, resolved, dest, nil)
	l.Unlock()
	if err != nil {
		return inference.Local{}, fmt.Errorf("download %s: %w", resolved, relay(err))
	}
	loc := inference.Local{
		Ref:    &modelv1.ModelRef{Name: name, Version: ver, Alias: ref.GetAlias()},
		Path:   dest,
		Size:   int64(v.GetSizeBytes()),
		Format: v.GetFormat(),
		Quant:  v.GetQuantType(),
	}
	if v.GetFormat() == modelv1.ModelFormat_MODEL_FORMAT_GGUF {
		if len(res.Paths) != 1 {
			return inference.Local{}, fmt.Errorf("GGUF version %s has %d files, want 1", resolved, len(res.Paths))
		}
		loc.Path, loc.SHA256 = res.Paths[0], v.GetFiles()[0].GetSha256()
	}
	return loc, nil
}

// relayed is a registry error as the node passes it on: the registry's code
// and message, without the SDK's "OP: CODE:" text (the node's caller adds
// its own context, and the client its code).
type relayed struct{ st *status.Status }

func (r relayed) Error() string              { return r.st.Message() }
func (r relayed) GRPCStatus() *status.Status { return r.st }

// relay turns an SDK call error, or the status error of a generated
// client's call, into a relayed one (whose text is the registry's message,
// not "rpc error: code = ... desc = ..."); others pass unchanged.
func relay(err error) error {
	var se *sdk.Error
	if errors.As(err, &se) {
		return relayed{se.Status}
	}
	if s, ok := err.(interface{ GRPCStatus() *status.Status }); ok && s.GRPCStatus() != nil {
		return relayed{s.GRPCStatus()}
	}
	return err
}

// List implements inference.Lister: the registry's models at their latest
// version, so that ListModels reports what can be served, not only what is
// loaded (format and size are not known without a call per model).
func (f *registryFetcher) List(ctx context.Context) ([]inference.Local, error) {
	c, err := f.conn.client(ctx)
	if err != nil {
		return nil, err
	}
	models, err := c.List(ctx, "")
	if err != nil {
		return nil, relay(err)
	}
	var out []inference.Local
	for _, m := range models {
		if m.GetLatestVersion() > 0 {
			out = append(out, inference.Local{Ref: &modelv1.ModelRef{Name: m.GetName(), Version: m.GetLatestVersion()}})
		}
	}
	return out, nil
}
