package sdk

import (
	"context"
	"fmt"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
)

// RegistryClient calls bitnet.registry.v1: models, versions, aliases and
// blob transfers (Push, Pull).
type RegistryClient struct {
	c   *Client
	rpc registryv1.RegistryServiceClient
}

// RPC returns the generated client, for calls this type does not wrap.
func (r *RegistryClient) RPC() registryv1.RegistryServiceClient { return r.rpc }

// List returns every model whose name starts with prefix ("" for all),
// following the pages.
func (r *RegistryClient) List(ctx context.Context, prefix string) ([]*registryv1.Model, error) {
	var out []*registryv1.Model
	token := ""
	for {
		resp, err := r.rpc.ListModels(ctx, &registryv1.ListModelsRequest{PageToken: token, NamePrefix: prefix, PageSize: 1000})
		if err != nil {
			return nil, wrap("list models", err)
		}
		out = append(out, resp.GetModels()...)
		token = resp.GetNextPageToken()
		if token == "" {
			return out, nil
		}
	}
}

// Get returns a model and its latest version (nil when it has none).
func (r *RegistryClient) Get(ctx context.Context, name string) (*registryv1.Model, *registryv1.ModelVersion, error) {
	resp, err := r.rpc.GetModel(ctx, &registryv1.GetModelRequest{Name: name})
	if err != nil {
		return nil, nil, wrap(fmt.Sprintf("get model %q", name), err)
	}
	return resp.GetModel(), resp.GetLatest(), nil
}

// Resolve resolves a reference (NAME, NAME@N or NAME:ALIAS) to a version
// with its files.
func (r *RegistryClient) Resolve(ctx context.Context, ref string) (*registryv1.ModelVersion, error) {
	resp, err := r.rpc.ResolveModel(ctx, &registryv1.ResolveModelRequest{Ref: ref})
	if err != nil {
		return nil, wrap(fmt.Sprintf("resolve %q", ref), err)
	}
	return resp.GetVersion(), nil
}

// Versions lists a model's versions, newest first, following the pages.
func (r *RegistryClient) Versions(ctx context.Context, name string) ([]*registryv1.ModelVersion, error) {
	var out []*registryv1.ModelVersion
	token := ""
	for {
		resp, err := r.rpc.ListVersions(ctx, &registryv1.ListVersionsRequest{Name: name, PageToken: token, PageSize: 1000})
		if err != nil {
			return nil, wrap(fmt.Sprintf("list versions of %q", name), err)
		}
		out = append(out, resp.GetVersions()...)
		token = resp.GetNextPageToken()
		if token == "" {
			return out, nil
		}
	}
}

// Delete deletes what ref names: a whole model for NAME, one version for
// NAME@N (force also deletes the aliases pointing at it), an alias for
// NAME:ALIAS.
func (r *RegistryClient) Delete(ctx context.Context, ref string, force bool) error {
	op := fmt.Sprintf("delete %q", ref)
	mr, err := modelv1.ParseRef(ref)
	if err != nil {
		return invalidArgument(op, err)
	}
	switch {
	case mr.GetVersion() != 0:
		_, err = r.rpc.DeleteVersion(ctx, &registryv1.DeleteVersionRequest{Name: mr.GetName(), Version: mr.GetVersion(), Force: force})
	case mr.GetAlias() != "":
		_, err = r.rpc.DeleteAlias(ctx, &registryv1.DeleteAliasRequest{Name: mr.GetName(), Alias: mr.GetAlias()})
	default:
		_, err = r.rpc.DeleteModel(ctx, &registryv1.DeleteModelRequest{Name: mr.GetName()})
	}
	return wrap(op, err)
}

// SetAlias points alias at version of model name and returns the version it
// pointed at before (0 when new).
func (r *RegistryClient) SetAlias(ctx context.Context, name, alias string, version uint32) (uint32, error) {
	resp, err := r.rpc.SetAlias(ctx, &registryv1.SetAliasRequest{Name: name, Alias: alias, Version: version})
	if err != nil {
		return 0, wrap(fmt.Sprintf("set alias %s:%s to version %d", name, alias, version), err)
	}
	return resp.GetPreviousVersion(), nil
}
