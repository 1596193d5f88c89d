package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
)

// maxConfigSize bounds the config.json read into memory.
const maxConfigSize = 4 << 20

// How a pushed GGUF file is stored in a version, whatever its local name
// (as the quantizer stores its results).
const (
	GGUFFileName  = "model.gguf"
	GGUFMediaType = "application/vnd.gguf"
)

// LocalFile is one file of a local model, as it will appear in a version.
type LocalFile struct {
	Path      string // path inside the version, slash-separated
	Local     string // path on this machine
	Size      int64
	MediaType string
	SHA256    string // hex; filled in by Upload
}

// LocalModel is a model on disk with the metadata read from its files.
type LocalModel struct {
	Files []*LocalFile
	// Skipped are the files of a directory that are not the model's
	// (training checkpoints, token caches, plots), left out unless
	// AllFiles; slash-separated paths inside the directory.
	Skipped        []string
	Format         modelv1.ModelFormat
	QuantType      modelv1.QuantType
	Architecture   string
	ParameterCount uint64
	ContextLength  uint32
	VocabSize      uint32
}

// InspectOption configures Inspect.
type InspectOption func(*inspectConfig)

type inspectConfig struct{ all bool }

// AllFiles makes Inspect keep every file of a directory, not only the
// model's (see ModelFile).
func AllFiles() InspectOption { return func(c *inspectConfig) { c.all = true } }

// Inspect reads a local model: a GGUF file, or a Hugging Face directory.
// Of a directory it keeps the model's files (ModelFile: config, weights,
// tokenizer, generation and tokenizer config, chat template, model card and
// license), not what training leaves beside them (checkpoint.safetensors,
// train.tokens, loss.svg), unless AllFiles; hidden files and *.partial
// downloads are always left out. The metadata comes from the GGUF header or
// from config.json and the safetensors headers.
func Inspect(p string, opts ...InspectOption) (*LocalModel, error) {
	var c inspectConfig
	for _, o := range opts {
		o(&c)
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("inspect model: %w", err)
	}
	if st.IsDir() {
		return inspectDir(p, c)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("inspect model %s: not a regular file or a directory", p)
	}
	return inspectGGUF(p, st.Size())
}

func inspectGGUF(p string, size int64) (*LocalModel, error) {
	f, err := gguf.Open(p)
	if err != nil {
		return nil, fmt.Errorf("inspect model %s: want a GGUF file or a Hugging Face directory: %w", p, err)
	}
	defer f.Close()
	m := &LocalModel{
		Format: modelv1.ModelFormat_MODEL_FORMAT_GGUF,
		Files:  []*LocalFile{{Path: GGUFFileName, Local: p, Size: size, MediaType: GGUFMediaType}},
	}
	m.Architecture, _ = f.String("general.architecture")
	if m.Architecture != "" {
		if v, err := f.Uint32(m.Architecture + ".context_length"); err == nil {
			m.ContextLength = v
		}
		if v, err := f.Uint32(m.Architecture + ".vocab_size"); err == nil {
			m.VocabSize = v
		}
	}
	if m.VocabSize == 0 {
		if toks, err := f.Strings("tokenizer.ggml.tokens"); err == nil {
			m.VocabSize = uint32(len(toks))
		}
	}
	// The quant type is that of the matrices: ternary when any matrix is,
	// else the type holding most matrix elements.
	byType := map[gguf.Type]uint64{}
	for _, t := range f.Tensors {
		n := t.NumElements()
		m.ParameterCount += n
		if len(t.Dims) >= 2 {
			byType[t.Type] += n
		}
	}
	m.QuantType = dominantQuant(byType)
	return m, nil
}

func dominantQuant(byType map[gguf.Type]uint64) modelv1.QuantType {
	if byType[gguf.TQ2_0] > 0 {
		return modelv1.QuantType_QUANT_TYPE_TQ2_0
	}
	if byType[gguf.TQ1_0] > 0 {
		return modelv1.QuantType_QUANT_TYPE_TQ1_0
	}
	best, bestN := modelv1.QuantType_QUANT_TYPE_UNSPECIFIED, uint64(0)
	for typ, q := range map[gguf.Type]modelv1.QuantType{
		gguf.F32:  modelv1.QuantType_QUANT_TYPE_F32,
		gguf.F16:  modelv1.QuantType_QUANT_TYPE_F16,
		gguf.BF16: modelv1.QuantType_QUANT_TYPE_BF16,
	} {
		if n := byType[typ]; n > bestN || n == bestN && n > 0 && q < best {
			best, bestN = q, n
		}
	}
	return best
}

// hfConfig is the part of a Hugging Face config.json the registry records.
type hfConfig struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	MaxPositionEmbeddings uint32   `json:"max_position_embeddings"`
	VocabSize             uint32   `json:"vocab_size"`
	TorchDtype            string   `json:"torch_dtype"`
	QuantizationConfig    struct {
		QuantizationMode string `json:"quantization_mode"`
	} `json:"quantization_config"`
}

// modelFiles are the non-weight files of a Hugging Face model directory.
var modelFiles = map[string]bool{
	"config.json": true, "generation_config.json": true,
	"tokenizer.json": true, "tokenizer_config.json": true, "special_tokens_map.json": true, "added_tokens.json": true,
	"tokenizer.model": true, "vocab.json": true, "merges.txt": true, "vocab.txt": true,
	"chat_template.json": true, "chat_template.jinja": true,
	"README.md": true, "LICENSE": true, "LICENSE.txt": true, "LICENSE.md": true, "NOTICE": true,
}

// weightFiles returns the weight files the loaders read from dir: the
// shards of model.safetensors.index.json and the index, else
// model.safetensors (as safetensors.OpenCheckpoint).
func weightFiles(dir string) (map[string]bool, error) {
	raw, err := readSmall(filepath.Join(dir, safetensors.IndexFileName), maxConfigSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return map[string]bool{safetensors.SingleFileName: true}, nil
	case err != nil:
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", safetensors.IndexFileName, err)
	}
	w := map[string]bool{safetensors.IndexFileName: true}
	for _, f := range idx.WeightMap {
		w[path.Clean(filepath.ToSlash(f))] = true
	}
	return w, nil
}

// ModelFile reports whether a file of a Hugging Face directory (its
// slash-separated path inside it) is part of the model: its configuration,
// tokenizer, chat template, model card, license, or one of weights, the
// weight files the loaders read (see weightFiles).
func ModelFile(rel string, weights map[string]bool) bool {
	return modelFiles[rel] || weights[rel]
}

func inspectDir(dir string, c inspectConfig) (*LocalModel, error) {
	m := &LocalModel{}
	weights, err := weightFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("inspect model %s: %w", dir, err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() || strings.HasSuffix(name, partialSuffix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !c.all && !ModelFile(rel, weights) {
			m.Skipped = append(m.Skipped, rel)
			return nil
		}
		m.Files = append(m.Files, &LocalFile{Path: rel, Local: p, Size: info.Size(), MediaType: mediaType(name)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inspect model %s: %w", dir, err)
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	sort.Strings(m.Skipped)
	raw, err := readSmall(filepath.Join(dir, "config.json"), maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("inspect model %s: want a Hugging Face directory with config.json: %w", dir, err)
	}
	var cfg hfConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("inspect model %s: config.json: %w", dir, err)
	}
	m.Architecture, m.ContextLength, m.VocabSize = cfg.ModelType, cfg.MaxPositionEmbeddings, cfg.VocabSize
	if len(cfg.Architectures) > 0 && cfg.Architectures[0] == "BitnetForCausalLM" {
		// 1bitLLM checkpoints say model_type "llama"; record the family's
		// name as bitnet.cpp's GGUF files do, so that listings tell them apart.
		m.Architecture = "bitnet-b1.58"
	}
	m.Format = modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS
	m.QuantType = dtypeQuant(cfg.TorchDtype)
	if cfg.QuantizationConfig.QuantizationMode == "offline" {
		m.Format, m.QuantType = modelv1.ModelFormat_MODEL_FORMAT_HF_PACKED, modelv1.QuantType_QUANT_TYPE_I2_S
	}
	if err := countParams(dir, m); err != nil {
		return nil, fmt.Errorf("inspect model %s: %w", dir, err)
	}
	return m, nil
}

// countParams reads the safetensors headers: packed ternary matrices (U8,
// 4 weights per byte) count their unpacked size, per-tensor scales of
// packed weights are not parameters.
func countParams(dir string, m *LocalModel) error {
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return err
	}
	defer ck.Close()
	packed := false
	for _, name := range ck.Names() {
		t, _ := ck.Tensor(name)
		if strings.HasSuffix(name, "_scale") {
			continue
		}
		n := uint64(max(t.NumElements(), 0))
		if t.DType == safetensors.U8 && len(t.Shape) == 2 {
			n *= 4
			packed = true
		}
		m.ParameterCount += n
	}
	if packed {
		m.Format, m.QuantType = modelv1.ModelFormat_MODEL_FORMAT_HF_PACKED, modelv1.QuantType_QUANT_TYPE_I2_S
	}
	return nil
}

func dtypeQuant(torchDtype string) modelv1.QuantType {
	switch torchDtype {
	case "float32":
		return modelv1.QuantType_QUANT_TYPE_F32
	case "float16":
		return modelv1.QuantType_QUANT_TYPE_F16
	case "bfloat16":
		return modelv1.QuantType_QUANT_TYPE_BF16
	}
	return modelv1.QuantType_QUANT_TYPE_UNSPECIFIED
}

func mediaType(name string) string {
	switch path.Ext(name) {
	case ".json":
		return "application/json"
	case ".txt", ".md":
		return "text/plain"
	case ".gguf":
		return GGUFMediaType
	}
	return "application/octet-stream"
}

func readSmall(p string, limit int64) ([]byte, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, at most %d", p, st.Size(), limit)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New(p + ": empty")
	}
	return b, nil
}
