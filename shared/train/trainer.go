package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// ErrOptions reports bad training options.
var ErrOptions = errors.New("train: bad options")

// Options are the hyper-parameters of a run. Zero Steps, Batch, Seq, Accum,
// LR, Beta1, Beta2, Eps, InitStd, Threads and Schedule take their default
// (DefaultOptions; Threads: GOMAXPROCS); other zeros mean zero.
type Options struct {
	Steps       int     `json:"steps"`        // optimiser steps
	Batch       int     `json:"batch"`        // sequences per micro-batch
	Seq         int     `json:"seq"`          // tokens per sequence
	Accum       int     `json:"accum"`        // micro-batches per optimiser step
	LR          float64 `json:"lr"`           // peak learning rate
	WarmupFrac  float64 `json:"warmup_frac"`  // share of steps warming up
	MinLRFrac   float64 `json:"min_lr_frac"`  // final lr / peak lr
	WeightDecay float64 `json:"weight_decay"` // decoupled, on linear weights
	Schedule    string  `json:"schedule"`     // "cosine" or "two-stage"
	Beta1       float64 `json:"beta1"`        // AdamW
	Beta2       float64 `json:"beta2"`        // AdamW
	Eps         float64 `json:"eps"`          // AdamW
	ClipNorm    float64 `json:"clip_norm"`    // global gradient norm limit; <= 0 disables
	InitStd     float64 `json:"init_std"`     // normal init of non-norm weights
	Seed        uint64  `json:"seed"`         // init and shuffling
	Threads     int     `json:"-"`            // goroutines (does not change results)
	// Kernel forces the float loops' path: generic runs them in Go ("" =
	// the best this CPU runs; the SIMD tiles sum in another order).
	Kernel      kernels.Path `json:"-"`
	FullPrec    bool         `json:"full_precision"` // disable both quantisers
	ValFrac     float64      `json:"val_frac"`       // validation tail share of the data
	EvalBatches int          `json:"eval_batches"`   // validation batches per evaluation (0: all)
}

// DefaultOptions returns the benchmark recipe: AdamW lr 2e-3,
// betas 0.9/0.95, weight decay 0.1, clipping 1.0, 5% warmup then cosine to
// 10% of the peak, batch 8 x 128 tokens.
func DefaultOptions() Options {
	return Options{
		Steps: 250, Batch: 8, Seq: 128, Accum: 1, LR: 2e-3, WarmupFrac: 0.05, MinLRFrac: 0.1,
		WeightDecay: 0.1, Schedule: ScheduleCosine, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8,
		ClipNorm: 1, InitStd: 0.02, Seed: 1, ValFrac: 0.1,
	}
}

// withDefaults fills zero fields from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	setI := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	setF := func(v *float64, dv float64) {
		if *v == 0 {
			*v = dv
		}
	}
	setI(&o.Steps, d.Steps)
	setI(&o.Batch, d.Batch)
	setI(&o.Seq, d.Seq)
	setI(&o.Accum, d.Accum)
	setF(&o.LR, d.LR)
	setF(&o.Beta1, d.Beta1)
	setF(&o.Beta2, d.Beta2)
	setF(&o.Eps, d.Eps)
	setF(&o.InitStd, d.InitStd)
	if o.Schedule == "" {
		o.Schedule = d.Schedule
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	return o
}

func (o Options) validate(c model.Config) error {
	if o.Batch <= 0 || o.Seq <= 0 || o.Accum <= 0 || o.Steps <= 0 {
		return fmt.Errorf("%w: steps %d, batch %d, seq %d, accum %d must be positive", ErrOptions, o.Steps, o.Batch, o.Seq, o.Accum)
	}
	if o.Seq > c.MaxPositions {
		return fmt.Errorf("%w: seq %d exceeds max_position_embeddings = %d", ErrOptions, o.Seq, c.MaxPositions)
	}
	if int64(o.Batch)*int64(o.Seq) > 1<<22 {
		return fmt.Errorf("%w: batch*seq = %d*%d exceeds %d tokens per micro-batch", ErrOptions, o.Batch, o.Seq, 1<<22)
	}
	if !(o.Beta1 >= 0 && o.Beta1 < 1 && o.Beta2 >= 0 && o.Beta2 < 1 && o.Eps > 0) {
		return fmt.Errorf("%w: betas %v/%v must be in [0,1) and eps %v positive", ErrOptions, o.Beta1, o.Beta2, o.Eps)
	}
	if !(o.InitStd > 0) || math.IsInf(o.InitStd, 0) {
		return fmt.Errorf("%w: init std %v must be positive and finite", ErrOptions, o.InitStd)
	}
	if err := o.schedule().Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	return nil
}

func (o Options) schedule() Schedule {
	return Schedule{Kind: o.Schedule, Steps: o.Steps, PeakLR: o.LR, WarmupFrac: o.WarmupFrac, MinLRFrac: o.MinLRFrac, WeightDecay: o.WeightDecay}
}

// Trainer trains one model on one dataset. It owns a goroutine pool: call
// Close when done. It is not safe for concurrent use.
type Trainer struct {
	cfg  model.Config
	opt  Options
	pool *pool
	eng  *engine[float32]
	adam *adamW
	data *Dataset

	step    int        // optimiser steps done
	cursor  dataCursor // next training sequence
	inputs  []int
	targets []int
	history []Point // losses recorded by Run (and restored by LoadCheckpoint)
}

// Point is one entry of the loss curve.
type Point struct {
	Step    int     `json:"step"`
	Loss    float64 `json:"loss"`               // training loss of the step
	ValLoss float64 `json:"val_loss,omitempty"` // validation loss when evaluated
	HasVal  bool    `json:"has_val,omitempty"`
}

// New creates a trainer for a model of config c initialised from
// opt.Seed, reading data (which stays owned by the caller).
func New(c model.Config, data *Dataset, opt Options) (*Trainer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opt = opt.withDefaults()
	if err := opt.validate(c); err != nil {
		return nil, err
	}
	if data == nil {
		return nil, fmt.Errorf("%w: no dataset", ErrData)
	}
	if data.seq != opt.Seq {
		return nil, fmt.Errorf("%w: dataset sequences have %d tokens, options say seq %d", ErrOptions, data.seq, opt.Seq)
	}
	t := &Trainer{cfg: c, opt: opt, data: data, pool: newPool(opt.Threads, kernels.FloatsFor(opt.Kernel)), cursor: dataCursor{permEpoch: -1}}
	t.eng = newEngine[float32](c, !opt.FullPrec, t.pool, opt.Batch, opt.Seq)
	initParams(t.eng.lay, t.eng.params, opt.Seed, opt.InitStd)
	t.adam = newAdamW(len(t.eng.params), opt.Beta1, opt.Beta2, opt.Eps)
	n := opt.Batch * opt.Seq
	t.inputs, t.targets = make([]int, n), make([]int, n)
	return t, nil
}

// Close stops the trainer's goroutines.
func (t *Trainer) Close() error {
	t.pool.close()
	return nil
}

// Config returns the model configuration.
func (t *Trainer) Config() model.Config { return t.cfg }

// Options returns the options with defaults filled in.
func (t *Trainer) Options() Options { return t.opt }

// StepsDone returns the number of optimiser steps taken.
func (t *Trainer) StepsDone() int { return t.step }

// History returns the loss curve recorded by Run (a copy).
func (t *Trainer) History() []Point { return append([]Point(nil), t.history...) }

// Params returns the fp32 master weights (a view: do not modify).
func (t *Trainer) Params() []float32 { return t.eng.params }

// nextBatch fills inputs and targets with the next Batch training sequences.
func (t *Trainer) nextBatch() error {
	s := t.opt.Seq
	for b := 0; b < t.opt.Batch; b++ {
		i := t.cursor.peek(t.opt.Seed, t.data.TrainSeqs)
		if err := t.data.read(i, t.inputs[b*s:(b+1)*s], t.targets[b*s:(b+1)*s], t.cfg.VocabSize); err != nil {
			return err
		}
		t.cursor.advance()
	}
	return nil
}

// StepResult describes one optimiser step.
type StepResult struct {
	Step     int     // 1-based index of the step just taken
	Loss     float64 // mean training loss over its micro-batches
	LR       float64
	GradNorm float64 // before clipping
	Tokens   int     // tokens processed
}

// Step runs Accum micro-batches forward and backward and applies one AdamW
// update.
func (t *Trainer) Step(ctx context.Context) (StepResult, error) {
	if t.step >= t.opt.Steps {
		return StepResult{}, fmt.Errorf("train: all %d steps are done", t.opt.Steps)
	}
	clear(t.eng.grads)
	var loss float64
	for a := 0; a < t.opt.Accum; a++ {
		if err := ctx.Err(); err != nil {
			return StepResult{}, fmt.Errorf("train: step %d: %w", t.step+1, err)
		}
		if err := t.nextBatch(); err != nil {
			return StepResult{}, err
		}
		l, err := t.eng.forward(t.inputs, t.targets, 1/float64(t.opt.Accum))
		if err != nil {
			return StepResult{}, err
		}
		t.eng.backward()
		loss += l / float64(t.opt.Accum)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return StepResult{}, fmt.Errorf("train: step %d: loss is %v", t.step+1, loss)
	}
	norm := gradNorm(t.pool, t.eng.grads)
	gscale := 1.0
	if t.opt.ClipNorm > 0 && norm > t.opt.ClipNorm {
		gscale = t.opt.ClipNorm / norm
	}
	lr, wd := t.opt.schedule().At(t.step)
	t.adam.update(t.pool, t.eng.lay, t.eng.params, t.eng.grads, lr, wd, gscale)
	t.eng.wqStale = true
	t.step++
	return StepResult{Step: t.step, Loss: loss, LR: lr, GradNorm: norm, Tokens: t.opt.Accum * t.opt.Batch * t.opt.Seq}, nil
}

// Eval returns the mean loss over the validation split (its first
// EvalBatches batches when set), never touching the training position.
func (t *Trainer) Eval(ctx context.Context) (float64, error) {
	d := t.data
	if d.ValSeqs == 0 {
		return 0, fmt.Errorf("%w: no validation split (val_frac is 0)", ErrData)
	}
	B, s := t.opt.Batch, t.opt.Seq
	nb := (d.ValSeqs + B - 1) / B
	if t.opt.EvalBatches > 0 {
		nb = min(nb, t.opt.EvalBatches)
	}
	var sum float64
	var count int
	for bi := 0; bi < nb; bi++ {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("train: eval: %w", err)
		}
		rows := 0
		for b := 0; b < B; b++ {
			i := bi*B + b
			in, tg := t.inputs[b*s:(b+1)*s], t.targets[b*s:(b+1)*s]
			if i >= d.ValSeqs {
				clear(in)
				for k := range tg {
					tg[k] = -1
				}
				continue
			}
			if err := d.read(d.TrainSeqs+i, in, tg, t.cfg.VocabSize); err != nil {
				return 0, err
			}
			rows++
		}
		l, err := t.eng.forward(t.inputs, t.targets, 1)
		if err != nil {
			return 0, err
		}
		sum += l * float64(rows*s)
		count += rows * s
	}
	return sum / float64(count), nil
}
