package quantizer

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
)

// prepare validates req and fills in its defaults: the target, the output
// name, the calibration, and the source model pinned to one version.
func (q *Quantizer) prepare(ctx context.Context, req Request) (Request, error) {
	n := 0
	for _, set := range []bool{req.Model != "", len(req.Files) > 0, req.Path != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return req, fmt.Errorf("source: want exactly one of a registry model, uploaded files or a local path, got %d: %w", n, ErrInvalid)
	}
	switch req.Target {
	case "":
		req.Target = registry.QuantTQ20
	case registry.QuantTQ20, registry.QuantTQ10, registry.QuantI2S:
	default:
		return req, fmt.Errorf("target %q: want %s, %s or %s: %w", req.Target, registry.QuantTQ20, registry.QuantTQ10, registry.QuantI2S, ErrInvalid)
	}
	if req.Threads < 0 || req.Threads > 1024 {
		return req, fmt.Errorf("threads %d: want 0 to 1024: %w", req.Threads, ErrInvalid)
	}
	defName := DefaultOutputName
	switch {
	case req.Model != "":
		ref, err := registry.ParseRef(req.Model)
		if err != nil {
			return req, fmt.Errorf("source model: %w", err)
		}
		v, err := q.src.Resolve(ctx, req.Model)
		if err != nil {
			return req, fmt.Errorf("source model %q: %w", req.Model, err)
		}
		if _, err := checkpointFormat(v.Metadata.Format, filePaths(v.Files)); err != nil {
			return req, fmt.Errorf("source model %s: %w", v.Ref, err)
		}
		req.Model = v.Ref.String() // pinned: an alias moving later does not change the job
		defName = ref.Name
	case len(req.Files) > 0:
		req.Files = slices.Clone(req.Files) // the caller's slice stays as it was
		seen := map[string]bool{}
		for i, f := range req.Files {
			if err := registry.ValidatePath(f.Path); err != nil {
				return req, fmt.Errorf("source file %d: %w", i, err)
			}
			if seen[f.Path] {
				return req, fmt.Errorf("source file %q given twice: %w", f.Path, ErrInvalid)
			}
			seen[f.Path] = true
			d, err := registry.ParseDigest(string(f.Digest))
			if err != nil {
				return req, fmt.Errorf("source file %q: %w", f.Path, err)
			}
			if err := q.checkBlob(ctx, d); err != nil {
				return req, fmt.Errorf("source file %q: %w", f.Path, err)
			}
			req.Files[i].Digest = d
		}
		paths := make([]string, len(req.Files))
		for i, f := range req.Files {
			paths[i] = f.Path
		}
		format, err := checkpointFormat(req.FilesFormat, paths)
		if err != nil {
			return req, fmt.Errorf("source files: %w", err)
		}
		req.FilesFormat = format
	default:
		st, err := os.Stat(req.Path)
		if err != nil {
			return req, fmt.Errorf("source path: %w: %w", err, ErrInvalid)
		}
		if st.IsDir() {
			if _, err := os.Stat(filepath.Join(req.Path, "config.json")); err != nil {
				return req, fmt.Errorf("source path %s: no config.json: %w", req.Path, ErrInvalid)
			}
		} else if !strings.EqualFold(path.Ext(req.Path), ".gguf") {
			return req, fmt.Errorf("source path %s: want a Hugging Face directory or a .gguf file: %w", req.Path, ErrInvalid)
		}
	}
	if err := q.prepareOutput(&req.Output, defName); err != nil {
		return req, err
	}
	c, err := q.prepareCalibration(ctx, req.Calibration)
	if err != nil {
		return req, err
	}
	req.Calibration = c
	return req, nil
}

func (q *Quantizer) prepareOutput(o *Output, defName string) error {
	if o.Name == "" {
		o.Name = defName
	}
	if err := registry.ValidateName(o.Name); err != nil {
		return fmt.Errorf("output name: %w", err)
	}
	for _, a := range o.Aliases {
		if err := registry.ValidateAlias(a); err != nil {
			return fmt.Errorf("output alias: %w", err)
		}
	}
	return nil
}

func (q *Quantizer) prepareCalibration(ctx context.Context, in *Calibration) (*Calibration, error) {
	c := Calibration{}
	if in != nil {
		c = *in
	}
	if c.Disabled {
		return &Calibration{Disabled: true}, nil
	}
	switch {
	case c.Text != "" && c.TextDigest != "":
		return nil, fmt.Errorf("calibration: text and text blob both given: %w", ErrInvalid)
	case len(c.Text) > MaxCalibrationText:
		return nil, fmt.Errorf("calibration: text of %d bytes, at most %d: %w", len(c.Text), MaxCalibrationText, ErrInvalid)
	case !utf8.ValidString(c.Text):
		return nil, fmt.Errorf("calibration: text is not UTF-8: %w", ErrInvalid)
	case c.MaxTokens < 0 || c.MaxTokens > maxCalibTokensAllowed:
		return nil, fmt.Errorf("calibration: max tokens %d, want 0 to %d: %w", c.MaxTokens, maxCalibTokensAllowed, ErrInvalid)
	case c.ContextLength < 0 || c.ContextLength == 1 || c.ContextLength > maxCalibTokensAllowed:
		return nil, fmt.Errorf("calibration: context length %d, want 0 or 2 to %d: %w", c.ContextLength, maxCalibTokensAllowed, ErrInvalid)
	}
	if c.TextDigest != "" {
		d, err := registry.ParseDigest(string(c.TextDigest))
		if err != nil {
			return nil, fmt.Errorf("calibration: %w", err)
		}
		if err := q.checkBlob(ctx, d); err != nil {
			return nil, fmt.Errorf("calibration text: %w", err)
		}
		c.TextDigest = d
	} else if c.Text == "" {
		c.Text = q.opts.calibText
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = DefaultCalibTokens
	}
	if c.ContextLength == 0 {
		c.ContextLength = DefaultCalibContext
	}
	return &c, nil
}

func (q *Quantizer) checkBlob(ctx context.Context, d registry.Digest) error {
	rc, _, err := q.src.OpenBlob(ctx, d)
	if err != nil {
		return err
	}
	return rc.Close()
}

func filePaths(fs []registry.BlobRef) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Path
	}
	return out
}

// checkpointFormat checks that paths form a checkpoint of format f (inferred
// when empty): one .gguf file, or a Hugging Face directory with config.json
// and safetensors weights.
func checkpointFormat(f registry.Format, paths []string) (registry.Format, error) {
	var ggufs, sts int
	hasConfig := false
	for _, p := range paths {
		switch {
		case strings.EqualFold(path.Ext(p), ".gguf"):
			ggufs++
		case strings.HasSuffix(p, ".safetensors"):
			sts++
		case p == "config.json":
			hasConfig = true
		}
	}
	if f == "" {
		f = registry.FormatHFSafetensors
		if ggufs > 0 && sts == 0 {
			f = registry.FormatGGUF
		}
	}
	switch f {
	case registry.FormatGGUF:
		if ggufs != 1 {
			return f, fmt.Errorf("format gguf: %d .gguf files, want exactly 1: %w", ggufs, ErrInvalid)
		}
	case registry.FormatHFSafetensors, registry.FormatHFPacked:
		if !hasConfig {
			return f, fmt.Errorf("format %s: missing config.json: %w", f, ErrInvalid)
		}
		if sts == 0 {
			return f, fmt.Errorf("format %s: no .safetensors file: %w", f, ErrInvalid)
		}
	default:
		return f, fmt.Errorf("format %q: want %s, %s or %s: %w", f, registry.FormatGGUF, registry.FormatHFSafetensors, registry.FormatHFPacked, ErrInvalid)
	}
	return f, nil
}
