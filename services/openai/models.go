package openai

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
)

// Model is one servable model ID: NAME, NAME@N or NAME:ALIAS.
type Model struct {
	ID      string
	Created time.Time
}

// Models lists the servable model IDs.
type Models interface {
	List(ctx context.Context) ([]Model, error)
}

// ModelsFunc is a function that lists models.
type ModelsFunc func(ctx context.Context) ([]Model, error)

// List calls f.
func (f ModelsFunc) List(ctx context.Context) ([]Model, error) { return f(ctx) }

// maxModelIDs bounds a listing (models times versions and aliases).
const maxModelIDs = 100_000

// RegistryModels lists the registry's models: each as NAME (its latest
// version), NAME@N for every version and NAME:ALIAS for every alias.
func RegistryModels(c registryv1.RegistryServiceClient) Models { return registryModels{c} }

type registryModels struct {
	c registryv1.RegistryServiceClient
}

func (m registryModels) List(ctx context.Context) ([]Model, error) {
	var out []Model
	token := ""
	for {
		resp, err := m.c.ListModels(ctx, &registryv1.ListModelsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, md := range resp.GetModels() {
			if md.GetLatestVersion() == 0 {
				continue // no version: nothing to serve
			}
			name, created := md.GetName(), md.GetCreateTime().AsTime()
			out = append(out, Model{ID: name, Created: created})
			if md.GetVersionCount() == md.GetLatestVersion() {
				// Versions 1..latest, none deleted: no call per model
				// (every call counts against the key's rate limit).
				for v := uint32(1); v <= md.GetLatestVersion(); v++ {
					out = append(out, Model{ID: (&modelv1.ModelRef{Name: name, Version: v}).Text(), Created: md.GetUpdateTime().AsTime()})
				}
			}
			vtoken := ""
			for md.GetVersionCount() != md.GetLatestVersion() {
				vs, err := m.c.ListVersions(ctx, &registryv1.ListVersionsRequest{Name: name, PageSize: 1000, PageToken: vtoken})
				if err != nil {
					return nil, err
				}
				for _, v := range vs.GetVersions() {
					out = append(out, Model{ID: (&modelv1.ModelRef{Name: name, Version: v.GetRef().GetVersion()}).Text(), Created: v.GetCreateTime().AsTime()})
				}
				if vtoken = vs.GetNextPageToken(); vtoken == "" || len(out) > maxModelIDs {
					break
				}
			}
			aliases := make([]string, 0, len(md.GetAliases()))
			for a := range md.GetAliases() {
				aliases = append(aliases, a)
			}
			slices.Sort(aliases)
			for _, a := range aliases {
				out = append(out, Model{ID: (&modelv1.ModelRef{Name: name, Alias: a}).Text(), Created: md.GetUpdateTime().AsTime()})
			}
		}
		if token = resp.GetNextPageToken(); token == "" || len(out) > maxModelIDs {
			return out, nil
		}
	}
}

// RouterModels lists what the router's ListModels reports: each model as
// NAME, its latest version and the versions loaded somewhere as NAME@N,
// and its aliases.
func RouterModels(c inferencev1.InferenceServiceClient) Models { return routerModels{c} }

type routerModels struct {
	c inferencev1.InferenceServiceClient
}

func (m routerModels) List(ctx context.Context) ([]Model, error) {
	var out []Model
	token := ""
	for {
		resp, err := m.c.ListModels(ctx, &inferencev1.ListModelsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, md := range resp.GetModels() {
			name := md.GetName()
			out = append(out, Model{ID: name})
			versions := map[uint32]bool{}
			if v := md.GetLatestVersion(); v > 0 {
				versions[v] = true
			}
			for _, l := range md.GetLoaded() {
				versions[l.GetModel().GetVersion()] = true
			}
			for _, v := range slices.Sorted(maps.Keys(versions)) {
				out = append(out, Model{ID: (&modelv1.ModelRef{Name: name, Version: v}).Text()})
			}
			for _, a := range slices.Sorted(maps.Keys(md.GetAliases())) {
				out = append(out, Model{ID: (&modelv1.ModelRef{Name: name, Alias: a}).Text()})
			}
		}
		if token = resp.GetNextPageToken(); token == "" || len(out) > maxModelIDs {
			return out, nil
		}
	}
}

func (h *Handler) modelObject(m Model) modelObject {
	created := m.Created
	if created.IsZero() || created.Unix() <= 0 {
		created = h.cfg.now()
	}
	return modelObject{ID: m.ID, Object: "model", Created: created.Unix(), OwnedBy: h.cfg.owner}
}

func (h *Handler) listModels(w http.ResponseWriter, r *http.Request) error {
	models, err := h.cfg.models.List(outgoing(r))
	if err != nil {
		return err
	}
	out := modelList{Object: "list", Data: make([]modelObject, 0, len(models))}
	for _, m := range models {
		out.Data = append(out.Data, h.modelObject(m))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) getModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := modelv1.ParseRef(id); err != nil || strings.Contains(id, "/") {
		return notFound(id)
	}
	models, err := h.cfg.models.List(outgoing(r))
	if err != nil {
		return err
	}
	for _, m := range models {
		if m.ID == id {
			writeJSON(w, http.StatusOK, h.modelObject(m))
			return nil
		}
	}
	return notFound(id)
}

func notFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("The model '%s' does not exist or you do not have access to it.", id)}
}
