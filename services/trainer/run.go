package trainer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/bitnet-mesh/bitnet-mesh/shared/artifact"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/telemetry"
)

// Directories of a job's work directory.
const (
	inputsDir            = "inputs" // data, tokenizer.json, parent/
	outDir               = "out"    // checkpoint, tokens, export
	parentDir            = "parent"
	ggufFile             = "model.gguf"
	ggufMediaType        = "application/vnd.gguf"
	safetensorsMediaType = "application/vnd.safetensors"
	jsonMediaType        = "application/json"
)

// execution runs one job: fetch inputs, train with the runner, upload.
type execution struct {
	t   *Trainer
	j   *job
	id  string
	req Request

	phases *telemetry.Phases // a span per phase: train.fetch, train.train, train.upload
}

func (x *execution) run(ctx context.Context) ([]artifact.Ref, error) {
	in := filepath.Join(x.j.dir, inputsDir)
	if err := os.MkdirAll(in, 0o755); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	spec := RunSpec{JobID: x.id, OutDir: filepath.Join(x.j.dir, outDir), Options: options(x.req),
		EvalEvery: x.req.EvalInterval, CheckpointEvery: x.req.CheckpointInterval}
	spec.Options.MemoryBudget = max(x.t.opts.MemoryBudget, 0)
	m := x.req.Model
	var err error
	x.phases.Enter("fetch")
	if m.Parent != "" {
		spec.InitDir = filepath.Join(in, parentDir)
		if err := x.fetchParent(ctx, spec.InitDir); err != nil {
			return nil, err
		}
		if spec.Config, err = model.LoadConfigHF(spec.InitDir); err != nil {
			return nil, fmt.Errorf("parent %s: %w: %w", m.Parent, err, ErrPrecondition)
		}
		spec.TokenizerPath = filepath.Join(spec.InitDir, tokenizerFile)
	} else if spec.Config, err = model.ParseConfig([]byte(m.ConfigJSON)); err != nil {
		return nil, fmt.Errorf("model config: %w: %w", err, jobs.ErrInvalid)
	}
	if m.TokenizerDigest != "" {
		spec.TokenizerPath = filepath.Join(in, tokenizerFile)
		if _, err := x.copyBlob(ctx, spec.TokenizerPath, m.TokenizerDigest); err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
	}
	spec.DataPath, spec.ValidationPath, err = x.fetchData(ctx, in)
	if err != nil {
		return nil, err
	}
	x.phases.Enter("train")
	res, err := x.t.opts.runner.Run(ctx, spec, func(ev Event) { x.onEvent(ctx, ev) })
	if err != nil {
		return nil, err
	}
	x.phases.Enter("upload")
	return x.upload(ctx, spec, res)
}

// onEvent publishes a step's metrics, validation and checkpoint.
func (x *execution) onEvent(ctx context.Context, ev Event) {
	var ck *Checkpoint
	if ev.Checkpoint != "" {
		if c, err := x.storeCheckpoint(ctx, ev); err == nil {
			ck = &c
		}
	}
	x.t.update(x.j, ev.Validated || ck != nil, func(j *Job) {
		m := ev.Metrics
		if !ev.Validated { // a resumed run starts without the last validation
			m.ValLoss, m.ValPerplexity = j.Metrics.ValLoss, j.Metrics.ValPerplexity
		}
		j.Metrics = m
		j.LossCurve = appendLoss(j.LossCurve, LossPoint{Step: m.Step, Loss: m.Loss})
		now := x.t.opts.Clock().UTC()
		if ev.Validated {
			j.Validation = append(j.Validation, ValidationPoint{Step: m.Step, ValLoss: m.ValLoss})
			j.Log = jobs.AppendLog(j.Log, now, "step %d/%d: validation loss %.4f (perplexity %.2f)", m.Step, m.TotalSteps, m.ValLoss, m.ValPerplexity)
		}
		if ck != nil {
			j.Checkpoints = append(j.Checkpoints, *ck)
			j.Log = jobs.AppendLog(j.Log, now, "step %d: checkpoint written (%d bytes)", ck.Step, ck.SizeBytes)
		}
	})
}

// appendLoss adds p to a loss curve kept at most MaxLossPoints long: a
// resumed run's steps replace the ones it repeats; a full curve drops
// every other point, after which points are taken at the curve's spacing
// (that of its last two points), so it always spans the whole run evenly.
func appendLoss(curve []LossPoint, p LossPoint) []LossPoint {
	for len(curve) > 0 && curve[len(curve)-1].Step >= p.Step {
		curve = curve[:len(curve)-1]
	}
	if n := len(curve); n >= 2 && p.Step-curve[n-1].Step < curve[n-1].Step-curve[n-2].Step {
		return curve
	}
	if len(curve) >= MaxLossPoints {
		kept := curve[:0]
		for i := 0; i < len(curve); i += 2 {
			kept = append(kept, curve[i])
		}
		curve = kept
		if n := len(curve); n >= 2 && p.Step-curve[n-1].Step < curve[n-1].Step-curve[n-2].Step {
			return curve
		}
	}
	return append(curve, p)
}

// storeCheckpoint copies a checkpoint file into the registry's blobs (the
// resumable copy stays in the work directory).
func (x *execution) storeCheckpoint(ctx context.Context, ev Event) (Checkpoint, error) {
	f, err := os.Open(ev.Checkpoint)
	if err != nil {
		return Checkpoint{}, err
	}
	defer f.Close()
	b, err := x.t.sink.PutBlob(ctx, f, "")
	if err != nil {
		return Checkpoint{}, err
	}
	c := Checkpoint{Step: ev.Metrics.Step, Digest: b.Digest, SizeBytes: b.Size, CreateTime: x.t.opts.Clock().UTC()}
	if ev.Validated {
		c.ValLoss = ev.Metrics.ValLoss
	}
	return c, nil
}

// fetchParent copies the parent version's files into dir.
func (x *execution) fetchParent(ctx context.Context, dir string) error {
	v, err := x.t.src.Resolve(ctx, x.req.Model.Parent)
	if err != nil {
		return fmt.Errorf("parent %s: %w", x.req.Model.Parent, err)
	}
	if v.Metadata.Format == artifact.FormatGGUF {
		return fmt.Errorf("parent %s is a GGUF-only version: %w", x.req.Model.Parent, ErrPrecondition)
	}
	for _, f := range v.Files {
		if err := artifact.ValidatePath(f.Path); err != nil {
			return fmt.Errorf("parent file: %w", err)
		}
		if _, err := x.copyBlob(ctx, filepath.Join(dir, filepath.FromSlash(f.Path)), f.Digest); err != nil {
			return fmt.Errorf("parent file %s: %w", f.Path, err)
		}
	}
	return nil
}

// fetchData writes the data set to one file in dir (blobs concatenated, a
// newline between files that lack one) and the validation file when there
// is one, and records the sha256 of all their bytes, in order, as the
// job's dataset digest.
func (x *execution) fetchData(ctx context.Context, dir string) (data, val string, err error) {
	d := x.req.Dataset
	ext := ".txt"
	if d.JSONL {
		ext = ".jsonl"
	}
	h := sha256.New()
	data = filepath.Join(dir, "data"+ext)
	if d.Text != "" {
		h.Write([]byte(d.Text))
		if err := writeFileAtomic(data, []byte(d.Text)); err != nil {
			return "", "", fmt.Errorf("dataset: %w", err)
		}
	} else if err := x.concatTo(ctx, data, d.Digests, h); err != nil {
		return "", "", fmt.Errorf("dataset: %w", err)
	}
	if d.ValidationDigest != "" {
		val = filepath.Join(dir, "validation"+ext)
		if err := x.concatTo(ctx, val, []artifact.Digest{d.ValidationDigest}, h); err != nil {
			return "", "", fmt.Errorf("validation: %w", err)
		}
	}
	dg := artifact.Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
	x.t.update(x.j, true, func(j *Job) { j.DatasetDigest = dg })
	return data, val, nil
}

// concatTo writes blobs to path (atomically) through h.
func (x *execution) concatTo(ctx context.Context, path string, blobs []artifact.Digest, h hash.Hash) error {
	tmp := path + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = x.concat(ctx, f, blobs, h)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (x *execution) concat(ctx context.Context, w io.Writer, blobs []artifact.Digest, h hash.Hash) error {
	for i, dg := range blobs {
		rc, size, err := x.t.src.OpenBlob(ctx, dg)
		if err != nil {
			return fmt.Errorf("blob %s: %w", dg, err)
		}
		fh := sha256.New()
		var lastByte [1]byte
		n, err := io.Copy(io.MultiWriter(w, h, fh, lastWriter{&lastByte}), ctxReader{ctx, rc})
		rc.Close()
		if err != nil {
			return fmt.Errorf("blob %s: %w", dg, err)
		}
		if n != size || "sha256:"+hex.EncodeToString(fh.Sum(nil)) != string(dg) {
			return fmt.Errorf("blob %s: content does not match: %w", dg, artifact.ErrDigestMismatch)
		}
		if i < len(blobs)-1 && n > 0 && lastByte[0] != '\n' {
			if _, err := w.Write([]byte{'\n'}); err != nil {
				return err
			}
		}
	}
	return nil
}

// lastWriter remembers the last byte written.
type lastWriter struct{ b *[1]byte }

func (l lastWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.b[0] = p[len(p)-1]
	}
	return len(p), nil
}

// copyBlob copies a blob to dst (atomically), checking its size and sha256.
func (x *execution) copyBlob(ctx context.Context, dst string, d artifact.Digest) (int64, error) {
	rc, size, err := x.t.src.OpenBlob(ctx, d)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	tmp := dst + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, rc})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return 0, err
	case n != size || "sha256:"+hex.EncodeToString(h.Sum(nil)) != string(d):
		return 0, fmt.Errorf("blob %s: content does not match: %w", d, artifact.ErrDigestMismatch)
	}
	return n, os.Rename(tmp, dst)
}

// upload stores the exported Hugging Face directory as a new version.
func (x *execution) upload(ctx context.Context, spec RunSpec, res RunResult) ([]artifact.Ref, error) {
	var files []artifact.BlobRef
	for _, f := range []struct{ name, media string }{
		{configFile, jsonMediaType}, {weightsFile, safetensorsMediaType}, {tokenizerFile, jsonMediaType},
	} {
		fh, err := os.Open(filepath.Join(spec.OutDir, f.name))
		if err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
		b, err := x.t.sink.PutBlob(ctx, fh, "")
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", f.name, err)
		}
		files = append(files, artifact.BlobRef{Path: f.name, Digest: b.Digest, MediaType: f.media})
	}
	x.t.mu.Lock()
	dg := x.j.snap.DatasetDigest
	x.t.mu.Unlock()
	cfgJSON, err := x.lineageConfig(spec)
	if err != nil {
		return nil, err
	}
	c := spec.Config
	md := artifact.Metadata{
		Architecture: c.Architecture, ParameterCount: uint64(c.Params()),
		Format: artifact.FormatHFSafetensors, QuantType: artifact.QuantF32,
		ContextLength: uint32(c.MaxPositions), VocabSize: uint32(c.VocabSize),
		Labels: x.req.Output.Labels,
		Lineage: artifact.Lineage{
			Source: artifact.SourceTrainer, JobID: x.id, DatasetDigest: dg, ConfigJSON: cfgJSON,
			Metrics: map[string]float64{"train_loss": res.TrainLoss},
		},
	}
	if res.ValLoss > 0 {
		md.Lineage.Metrics["val_loss"] = res.ValLoss
		md.Lineage.Metrics["val_perplexity"] = expSafe(res.ValLoss)
	}
	if p := x.req.Model.Parent; p != "" {
		r, err := artifact.ParseRef(p)
		if err != nil {
			return nil, fmt.Errorf("parent %s: %w", p, err)
		}
		md.Lineage.Parent = &r
	}
	o := x.req.Output
	desc := o.Description
	if desc == "" {
		desc = "trained by job " + x.id
	}
	v, err := x.t.sink.CreateVersion(ctx, o.Name, artifact.VersionSpec{
		Files: files, Description: desc, Metadata: md, Aliases: o.Aliases, CreateModel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create version of %s: %w", o.Name, err)
	}
	refs := []artifact.Ref{v.Ref}
	if o.ExportGGUF != "" {
		g, err := x.uploadGGUF(ctx, spec, md, v.Ref)
		if err != nil {
			return refs, err
		}
		refs = append(refs, g)
	}
	return refs, nil
}

// uploadGGUF converts the export to a GGUF of Output.ExportGGUF and stores
// it as a second version whose lineage parent is the master version.
func (x *execution) uploadGGUF(ctx context.Context, spec RunSpec, md artifact.Metadata, master artifact.Ref) (artifact.Ref, error) {
	o := x.req.Output
	w, tok, err := model.LoadWeights(spec.OutDir)
	if err != nil {
		return artifact.Ref{}, fmt.Errorf("gguf export: %w", err)
	}
	typ := gguf.TQ2_0
	if o.ExportGGUF == artifact.QuantTQ10 {
		typ = gguf.TQ1_0
	}
	path := filepath.Join(spec.OutDir, ggufFile)
	if err := model.WriteGGUF(path, w, tok, model.WithTernaryType(typ), model.WithModelName(o.Name)); err != nil {
		return artifact.Ref{}, fmt.Errorf("gguf export: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return artifact.Ref{}, fmt.Errorf("gguf export: %w", err)
	}
	b, err := x.t.sink.PutBlob(ctx, f, "")
	f.Close()
	if err != nil {
		return artifact.Ref{}, fmt.Errorf("upload %s: %w", ggufFile, err)
	}
	md.Format, md.QuantType = artifact.FormatGGUF, o.ExportGGUF
	md.Lineage.Parent = &master
	v, err := x.t.sink.CreateVersion(ctx, o.Name, artifact.VersionSpec{
		Files:       []artifact.BlobRef{{Path: ggufFile, Digest: b.Digest, MediaType: ggufMediaType}},
		Description: fmt.Sprintf("%s export of %s (job %s)", o.ExportGGUF, master, x.id),
		Metadata:    md, CreateModel: true,
	})
	if err != nil {
		return artifact.Ref{}, fmt.Errorf("create gguf version of %s: %w", o.Name, err)
	}
	return v.Ref, nil
}

// lineageConfig records how the version was made: the model config and the
// training options.
func (x *execution) lineageConfig(spec RunSpec) (string, error) {
	raw, err := os.ReadFile(filepath.Join(spec.OutDir, configFile))
	if err != nil {
		return "", fmt.Errorf("lineage config: %w", err)
	}
	b, err := json.Marshal(map[string]any{
		"trainer_job": x.id, "model": json.RawMessage(raw), "options": spec.Options,
		"eval_interval": spec.EvalEvery, "checkpoint_interval": spec.CheckpointEvery,
		"schedule": x.req.Hyperparameters.Schedule,
	})
	if err != nil {
		return "", fmt.Errorf("lineage config: %w", err)
	}
	return string(b), nil
}

// cleanup removes a finished job's inputs and outputs (the result is in the
// registry); a cancelled job keeps them to be inspected or resumed.
func (x *execution) cleanup() {
	os.RemoveAll(filepath.Join(x.j.dir, inputsDir))
	os.RemoveAll(filepath.Join(x.j.dir, outDir))
}

func expSafe(x float64) float64 {
	return math.Exp(min(x, 700))
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
