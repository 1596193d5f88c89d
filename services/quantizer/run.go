package quantizer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// phaseSpan is the share of the whole job each phase covers, for
// Progress.Fraction.
func phaseSpan(phase string) [2]float64 {
	switch phase {
	case PhaseFetching:
		return [2]float64{0, 0.10}
	case PhaseLoading:
		return [2]float64{0.10, 0.15}
	case PhaseQuantizing:
		return [2]float64{0.15, 0.50}
	case PhaseEvaluating:
		return [2]float64{0.50, 0.90}
	}
	return [2]float64{0.90, 1} // uploading
}

// sourceText names a request's checkpoint for the job's log.
func sourceText(req Request) string {
	switch {
	case req.Model != "":
		return req.Model
	case req.Path != "":
		return filepath.Base(req.Path)
	}
	return fmt.Sprintf("%d uploaded files", len(req.Files))
}

// logf appends a line to the job's log.
func (r *runner) logf(format string, args ...any) {
	r.q.update(r.j, func(j *Job) { j.Log = jobs.AppendLog(j.Log, r.q.opts.clock().UTC(), format, args...) })
}

// runner runs one job.
type runner struct {
	q   *Quantizer
	j   *job
	id  string
	req Request

	parent  *registry.Ref
	srcSize uint64
	cfg     model.Config
}

// progress publishes where the job is: done of total units of a phase.
func (r *runner) progress(phase string, done, total uint64, unit, msg string) {
	span := phaseSpan(phase)
	x := 0.0
	if total > 0 {
		x = float64(min(done, total)) / float64(total)
	}
	f := span[0]*(1-x) + span[1]*x // exact at both ends: fractions never go back
	r.q.update(r.j, func(j *Job) {
		j.Progress = Progress{Phase: phase, Done: done, Total: total, Unit: unit, Fraction: f, Message: msg, UpdateTime: r.q.opts.clock().UTC()}
	})
}

func (r *runner) run(ctx context.Context) (registry.Ref, error) {
	work, err := os.MkdirTemp(r.q.opts.workDir, r.id+"-")
	if err != nil {
		return registry.Ref{}, fmt.Errorf("work dir: %w", err)
	}
	defer os.RemoveAll(work)

	src, err := r.fetch(ctx, work)
	if err != nil {
		return registry.Ref{}, err
	}
	r.progress(PhaseLoading, 0, 1, "", "loading "+filepath.Base(src))
	// Checked against the budget from the shapes, before the weights are
	// read; a cancel stops the load between tensors.
	w, tok, err := model.LoadWeightsOptions(ctx, src, model.WithMemoryBudget(max(r.q.opts.budget, 0)), model.WithI2SBlock(r.q.opts.i2sBlock))
	name := r.sourceName(src)
	switch {
	case err != nil && ctx.Err() != nil:
		return registry.Ref{}, ctx.Err()
	case errors.Is(err, model.ErrOverBudget):
		return registry.Ref{}, fmt.Errorf("load %s: %w", name, redactPath(err, src, name))
	case err != nil:
		return registry.Ref{}, fmt.Errorf("load %s: %w: %w", name, redactPath(err, src, name), ErrCheckpoint)
	}
	r.cfg = w.Config
	rep := Report{SourceSizeBytes: r.srcSize, ParameterCount: parameterCount(w),
		Family: string(w.Config.Family()), Architecture: w.Config.Architecture}
	r.q.update(r.j, func(j *Job) { j.Report = rep })
	r.logf("loaded %s: %d layers, %d parameters, %d bytes", filepath.Base(src), len(w.Layers), rep.ParameterCount, r.srcSize)

	calib := r.req.Calibration
	wantRef := !calib.Disabled && tok != nil
	ref, release, err := r.quantize(ctx, src, w, wantRef)
	defer release()
	if err != nil {
		return registry.Ref{}, err
	}
	// Can the output hold this family and these widths? (After the
	// statistics, which the report keeps either way.)
	if err := model.CheckGGUF(w.Config, ggufType(r.req.Target)); err != nil {
		return registry.Ref{}, fmt.Errorf("%s model (%s): %w: %w", w.Config.Family(), w.Config.Architecture, err, ErrCheckpoint)
	}
	out := filepath.Join(work, ggufFileName)
	gopts := []model.GGUFOption{model.WithTernaryType(ggufType(r.req.Target)), model.WithModelName(r.req.Output.Name)}
	plan, err := model.PlanGGUF(w, gopts...)
	if err != nil {
		return registry.Ref{}, fmt.Errorf("plan %s: %w: %w", r.req.Target, err, ErrCheckpoint)
	}
	r.q.update(r.j, func(j *Job) { j.Report.addPlan(plan) })
	if err := model.WriteGGUF(out, w, tok, gopts...); err != nil {
		return registry.Ref{}, fmt.Errorf("write %s: %w: %w", r.req.Target, err, ErrCheckpoint)
	}
	if err := ctx.Err(); err != nil {
		return registry.Ref{}, err
	}
	r.logf("quantized %d linear weights to %s", 7*len(w.Layers), r.req.Target)

	if !wantRef {
		r.logf("no evaluation: disabled, or the checkpoint has no tokenizer")
	} else {
		text, err := r.calibrationText(ctx, calib)
		if err != nil {
			return registry.Ref{}, err
		}
		ev, err := evaluate(ctx, ref, out, tok, text, calib, r.req.Threads, func(done, total int) {
			r.progress(PhaseEvaluating, uint64(done), uint64(total), "tokens", "")
		})
		if err != nil {
			return registry.Ref{}, err
		}
		r.q.update(r.j, func(j *Job) {
			j.Report.PerplexityBefore, j.Report.PerplexityAfter = ev.pplBefore, ev.pplAfter
			j.Report.MeanKL, j.Report.Top1Agreement, j.Report.CalibrationTokens = ev.meanKL, ev.top1, ev.tokens
		})
		r.logf("evaluated on %d tokens: perplexity %.3f -> %.3f, mean KL %.4f, top-1 agreement %.1f%%",
			ev.tokens, ev.pplBefore, ev.pplAfter, ev.meanKL, 100*ev.top1)
	}
	return r.upload(ctx, out)
}

// fetch returns the local path of the checkpoint: req.Path itself, or the
// registry files copied into work/src with their sha256 checked.
func (r *runner) fetch(ctx context.Context, work string) (string, error) {
	if r.req.Path != "" {
		st, err := os.Stat(r.req.Path)
		if err != nil {
			return "", fmt.Errorf("source: %w", err)
		}
		r.srcSize = uint64(dirSize(r.req.Path, st))
		return r.req.Path, nil
	}
	files, format := r.req.Files, r.req.FilesFormat
	if r.req.Model != "" {
		v, err := r.q.src.Resolve(ctx, r.req.Model)
		if err != nil {
			return "", fmt.Errorf("source model %s: %w", r.req.Model, err)
		}
		parent := v.Ref
		r.parent = &parent
		files, format = nil, v.Metadata.Format
		for _, f := range v.Files {
			files = append(files, SourceFile{Path: f.Path, Digest: f.Digest})
		}
	}
	dir := filepath.Join(work, "src")
	var ggufPath string
	for i, f := range files {
		r.progress(PhaseFetching, uint64(i), uint64(len(files)), "files", f.Path)
		if err := registry.ValidatePath(f.Path); err != nil {
			return "", fmt.Errorf("source file: %w", err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		n, err := r.copyBlob(ctx, dst, f.Digest)
		if err != nil {
			return "", fmt.Errorf("fetch %s: %w", f.Path, err)
		}
		r.srcSize += uint64(n)
		if strings.EqualFold(filepath.Ext(f.Path), ".gguf") {
			ggufPath = dst
		}
	}
	r.progress(PhaseFetching, uint64(len(files)), uint64(len(files)), "files", "")
	r.logf("fetched %d files, %d bytes", len(files), r.srcSize)
	if format == registry.FormatGGUF {
		return ggufPath, nil
	}
	return dir, nil
}

// copyBlob copies a blob to dst, checking its size and sha256.
func (r *runner) copyBlob(ctx context.Context, dst string, d registry.Digest) (int64, error) {
	rc, size, err := r.q.src.OpenBlob(ctx, d)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	f, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, rc})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if n != size {
		return 0, fmt.Errorf("blob %s: read %d bytes, want %d: %w", d, n, size, registry.ErrDigestMismatch)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != string(d) {
		return 0, fmt.Errorf("blob %s: bytes hash to %s: %w", d, got, registry.ErrDigestMismatch)
	}
	return n, nil
}

// calibrationText returns the inline text or reads the text blob.
func (r *runner) calibrationText(ctx context.Context, c *Calibration) (string, error) {
	if c.TextDigest == "" {
		return c.Text, nil
	}
	rc, _, err := r.q.src.OpenBlob(ctx, c.TextDigest)
	if err != nil {
		return "", fmt.Errorf("calibration text: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(ctxReader{ctx, rc}, MaxCalibrationText+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("calibration text: %w", err)
	case len(b) > MaxCalibrationText:
		return "", fmt.Errorf("calibration text blob %s: more than %d bytes: %w", c.TextDigest, MaxCalibrationText, ErrInvalid)
	}
	return string(b), nil
}

// upload stores the GGUF file and creates the version.
func (r *runner) upload(ctx context.Context, path string) (registry.Ref, error) {
	r.progress(PhaseUploading, 0, 2, "steps", "storing "+ggufFileName)
	f, err := os.Open(path)
	if err != nil {
		return registry.Ref{}, fmt.Errorf("upload: %w", err)
	}
	defer f.Close()
	blob, err := r.q.sink.PutBlob(ctx, f, "")
	if err != nil {
		return registry.Ref{}, fmt.Errorf("upload %s: %w", ggufFileName, err)
	}
	r.q.mu.Lock()
	rep := r.j.snap.Report
	r.q.mu.Unlock()
	rep.ResultSizeBytes = uint64(blob.Size)
	r.q.update(r.j, func(j *Job) { j.Report.ResultSizeBytes = rep.ResultSizeBytes })
	r.progress(PhaseUploading, 1, 2, "steps", "creating version")
	cfg, err := r.lineageConfig(rep)
	if err != nil {
		return registry.Ref{}, err
	}
	md := registry.Metadata{
		Architecture:   r.cfg.Architecture,
		ParameterCount: rep.ParameterCount,
		Format:         registry.FormatGGUF,
		QuantType:      r.req.Target,
		Labels:         r.req.Output.Labels,
		Lineage: registry.Lineage{
			Source: registry.SourceQuantizer, JobID: r.id, Parent: r.parent, ConfigJSON: cfg,
		},
	}
	md.ContextLength, md.VocabSize = uint32(r.cfg.MaxPositions), uint32(r.cfg.VocabSize)
	if rep.CalibrationTokens > 0 {
		md.Lineage.Metrics = map[string]float64{
			"perplexity_before": rep.PerplexityBefore, "perplexity_after": rep.PerplexityAfter,
			"mean_kl": rep.MeanKL, "top1_agreement": rep.Top1Agreement,
		}
	}
	o := r.req.Output
	v, err := r.q.sink.CreateVersion(ctx, o.Name, registry.VersionSpec{
		Files:       []registry.BlobRef{{Path: ggufFileName, Digest: blob.Digest, MediaType: ggufMediaType}},
		Description: o.Description,
		Metadata:    md,
		Aliases:     o.Aliases,
		CreateModel: true,
	})
	if err != nil {
		return registry.Ref{}, fmt.Errorf("create version of %s: %w", o.Name, err)
	}
	return v.Ref, nil
}

// lineageConfig records how the version was made.
func (r *runner) lineageConfig(rep Report) (string, error) {
	c := map[string]any{"target": r.req.Target, "quantizer_job": r.id}
	if cal := r.req.Calibration; !cal.Disabled {
		c["calibration_tokens"] = rep.CalibrationTokens
		c["calibration_context"] = cal.ContextLength
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("lineage config: %w", err)
	}
	return string(b), nil
}

func ggufType(t registry.QuantType) gguf.Type {
	switch t {
	case registry.QuantTQ10:
		return gguf.TQ1_0
	case registry.QuantI2S:
		return gguf.I2_S
	}
	return gguf.TQ2_0
}

// addPlan records the GGUF architecture and each linear's tensor type.
func (rep *Report) addPlan(p model.GGUFPlan) {
	rep.GGUFArch = p.Arch
	byName := make(map[string]model.TensorChoice, len(p.Tensors))
	for _, t := range p.Tensors {
		byName[t.Name] = t
	}
	for i := range rep.Linears {
		if t, ok := byName[rep.Linears[i].GGUF.Name]; ok {
			rep.Linears[i].GGUF = t
		}
	}
}

func parameterCount(w *model.Weights) uint64 {
	n := uint64(len(w.Embed) + len(w.Head) + len(w.Norm))
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, ns := range l.NormSpecs(w.Config) {
			n += uint64(len(*ns.V))
		}
		for _, m := range linearsOf(l) {
			n += uint64(m.m.Rows) * uint64(m.m.Cols)
		}
	}
	return n
}

// dirSize is the size of a file, or the total size of a directory's files.
func dirSize(path string, st os.FileInfo) int64 {
	if !st.IsDir() {
		return st.Size()
	}
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
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

// sourceName names the checkpoint in messages: the client's own path, the
// registry reference, or "the uploaded files" (never this host's work
// directory).
func (r *runner) sourceName(src string) string {
	switch {
	case r.req.Path != "":
		return src
	case r.req.Model != "":
		return r.req.Model
	}
	return "the uploaded files"
}

// redactPath rewrites err's message with name in place of path (this
// host's work directory stays out of what clients read), keeping what
// errors.Is sees.
func redactPath(err error, path, name string) error {
	return &redacted{msg: strings.ReplaceAll(err.Error(), path, name), err: err}
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }
