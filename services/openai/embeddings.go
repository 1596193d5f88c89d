package openai

import (
	"encoding/json"
	"net/http"
)

type embeddingRequest struct {
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`
}

// embeddings answers that the model cannot embed: no embedding model can be
// served yet (the Embed RPC of the model-families work will back this
// route). An unknown model is still a 404.
func (h *Handler) embeddings(w http.ResponseWriter, r *http.Request) error {
	var e embeddingRequest
	if err := h.decode(w, r, &e); err != nil {
		return err
	}
	if e.Model == "" {
		return invalid("model", "you must provide a model parameter")
	}
	if !present(e.Input) {
		return invalid("input", "you must provide an input")
	}
	if models, err := h.cfg.models.List(outgoing(r)); err == nil {
		known := false
		for _, m := range models {
			known = known || m.ID == e.Model
		}
		if !known {
			return notFound(e.Model)
		}
	}
	err := invalid("model", "%s is not an embedding model: this mesh serves causal language models; /v1/embeddings needs an embedding model", e.Model)
	err.Code = "model_not_supported"
	return err
}
