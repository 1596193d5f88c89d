package openai

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
)

type embeddingRequest struct {
	Model          string     `json:"model"`
	Input          embedInput `json:"input"`
	EncodingFormat string     `json:"encoding_format"`
	Dimensions     *int64     `json:"dimensions"`
	User           string     `json:"user"`
	Bitnet         *extension `json:"bitnet"`
}

// embedInput is a string, a list of strings, token IDs, or a list of token
// ID lists.
type embedInput struct {
	texts []string
	ids   [][]uint32
	set   bool
}

func (in *embedInput) UnmarshalJSON(b []byte) error {
	in.set = true
	var one string
	if json.Unmarshal(b, &one) == nil {
		in.texts = []string{one}
		return nil
	}
	if json.Unmarshal(b, &in.texts) == nil {
		return nil
	}
	var ids []uint32
	if json.Unmarshal(b, &ids) == nil {
		in.ids = [][]uint32{ids}
		return nil
	}
	if json.Unmarshal(b, &in.ids) != nil {
		return &fieldError{"input", "must be a string, a list of strings, a list of token IDs or a list of token ID lists"}
	}
	return nil
}

type embeddingObject struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

type embeddingList struct {
	Object string            `json:"object"`
	Data   []embeddingObject `json:"data"`
	Model  string            `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
	Bitnet *meta `json:"bitnet,omitempty"`
}

// embeddings serves POST /v1/embeddings through the Embed RPC: a model
// without pooling (a causal LM) is a 400 "not an embedding model".
func (h *Handler) embeddings(w http.ResponseWriter, r *http.Request) error {
	var e embeddingRequest
	if err := h.decode(w, r, &e); err != nil {
		return err
	}
	switch {
	case e.Model == "":
		return invalid("model", "you must provide a model parameter")
	case !e.Input.set || len(e.Input.texts)+len(e.Input.ids) == 0:
		return invalid("input", "you must provide an input")
	case e.EncodingFormat != "" && e.EncodingFormat != "float" && e.EncodingFormat != "base64":
		return invalid("encoding_format", "encoding_format %q: want float or base64", e.EncodingFormat)
	case e.Dimensions != nil && (*e.Dimensions < 1 || *e.Dimensions > math.MaxUint32):
		return invalid("dimensions", "dimensions %d: want at least 1", *e.Dimensions)
	}
	req := &inferencev1.EmbedRequest{Model: e.Model, Inputs: e.Input.texts}
	for _, ids := range e.Input.ids {
		req.TokenInputs = append(req.TokenInputs, &inferencev1.TokenIDs{Ids: ids})
	}
	if e.Dimensions != nil {
		req.Dimensions = uint32(*e.Dimensions)
	}
	if b := e.Bitnet; b != nil {
		req.Require, req.PreferKernel = b.Require, b.PreferKernel
	}
	resp, err := h.client.Embed(outgoing(r), req)
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound:
		nf := notFound(e.Model)
		nf.Message += " (" + status.Convert(err).Message() + ")"
		return nf
	case codes.FailedPrecondition:
		if len(e.Bitnet.GetRequire()) == 0 { // no constraint to miss: the model cannot embed
			ne := invalid("model", "%s", status.Convert(err).Message())
			ne.Code = "model_not_supported"
			return ne
		}
		return err
	default:
		return err
	}
	out := embeddingList{Object: "list", Model: e.Model, Data: make([]embeddingObject, 0, len(resp.GetEmbeddings())),
		Bitnet: &meta{Node: resp.GetNode(), Kernel: resp.GetKernel(), Model: resp.GetModel().Text()}}
	for _, em := range resp.GetEmbeddings() {
		var v any = em.GetValues()
		if e.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(em.GetValues()))
			for i, f := range em.GetValues() {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
			}
			v = base64.StdEncoding.EncodeToString(buf)
		}
		out.Data = append(out.Data, embeddingObject{Object: "embedding", Index: int(em.GetIndex()), Embedding: v})
	}
	out.Usage.PromptTokens = int(resp.GetUsage().GetPromptTokens())
	out.Usage.TotalTokens = out.Usage.PromptTokens
	if resp.GetNode() != "" {
		w.Header().Set("x-bitnet-node", resp.GetNode())
	}
	if resp.GetKernel() != "" {
		w.Header().Set("x-bitnet-kernel", resp.GetKernel())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GetRequire is nil-safe.
func (e *extension) GetRequire() []string {
	if e == nil {
		return nil
	}
	return e.Require
}
