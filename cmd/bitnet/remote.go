package main

// Shared plumbing of the client commands (push, pull, models, nodes,
// quantize, generate --remote): their settings, dialling the SDK, and
// progress bars on stderr.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/certs"
	"github.com/bitnet-mesh/bitnet-mesh/shared/progress"
)

// client is the connection settings of a mesh client command
// (config.Client: --remote, --timeout, --quiet).
type client struct {
	addr    string
	quiet   bool
	timeout time.Duration
	apiKey  string
	useTLS  bool
	tls     certs.Files // CA, Cert, Key (client certificate), ServerName
}

// bindClient generates the client settings' flags on c; the returned
// function resolves them after parsing.
func bindClient(c *cobra.Command, env config.Lookup) func() (client, error) {
	set := config.Bind(c, config.Client...)
	return func() (client, error) {
		v, err := set.Resolve(env)
		if err != nil {
			return client{}, fmt.Errorf("%s: %w", c.Name(), err)
		}
		return clientFrom(v), nil
	}
}

// clientFrom reads the client settings from resolved values.
func clientFrom(v *config.Values) client {
	return client{
		addr: config.Remote.Get(v), quiet: config.Quiet.Get(v), timeout: config.Timeout.Get(v),
		apiKey: config.APIKey.Get(v), useTLS: config.TLS.Get(v),
		tls: certs.Files{CA: config.TLSCA.Get(v), Cert: config.TLSCert.Get(v), Key: config.TLSKey.Get(v), ServerName: config.TLSServerName.Get(v)},
	}
}

// options are the SDK options of the client settings: user agent, API
// key, TLS (with a client certificate for mTLS).
func (r client) options() ([]sdk.Option, error) {
	opts := []sdk.Option{sdk.WithUserAgent("bitnet-cli/" + version)}
	if r.apiKey != "" {
		opts = append(opts, sdk.WithAPIKey(r.apiKey))
	}
	if r.useTLS || r.tls.Enabled() || r.tls.ServerName != "" {
		cfg, err := sdk.TLSFiles(r.tls.CA, r.tls.Cert, r.tls.Key, r.tls.ServerName)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert and --tls-key: %w", err)
		}
		opts = append(opts, sdk.WithTLS(cfg))
	}
	return opts, nil
}

// dial connects to the mesh; the returned cancel ends the --timeout context.
func (r client) dial(ctx context.Context) (context.Context, *sdk.Client, context.CancelFunc, error) {
	cancel := func() {}
	if r.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
	}
	opts, err := r.options()
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	c, err := sdk.Dial(ctx, r.addr, opts...)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, c, func() { c.Close(); cancel() }, nil
}

// newBar returns a progress bar on stderr: redrawn in place on a terminal,
// periodic lines otherwise, nothing with --quiet.
func newBar(stderr io.Writer, quiet bool) *progress.Bar {
	return progress.New(stderr, progress.WithQuiet(quiet))
}

// hashBarMin is the smallest file whose hashing gets a bar.
const hashBarMin = 64 << 20

// transferProgress draws one bar per file and phase of a push or pull.
func transferProgress(bar *progress.Bar) sdk.ProgressFunc {
	cur := ""
	return func(p sdk.Progress) {
		if p.Op == sdk.OpHash && p.Total < hashBarMin {
			return // hashing a small file takes no visible time
		}
		key := p.Op + " " + p.File
		if key != cur {
			cur = key
			bar.Start(key, p.Total, progress.UnitBytes)
		}
		bar.Set(p.Done)
		if p.Skipped {
			bar.Message("(already there)")
		}
		if p.Done >= p.Total {
			bar.Finish()
		}
	}
}

// jobProgress draws a quantizer job's phases as bars.
func jobProgress(bar *progress.Bar) func(*quantizerv1.Job) {
	phase := ""
	return func(j *quantizerv1.Job) {
		if sdk.Terminal(j.GetState()) {
			bar.Finish() // the command reports the outcome
			return
		}
		p := j.GetProgress()
		label := "job " + j.GetJobId() + " " + strings.ToLower(strings.TrimPrefix(j.GetState().String(), "JOB_STATE_"))
		if p.GetPhase() != "" {
			label = "job " + j.GetJobId() + " " + p.GetPhase()
		}
		if label != phase {
			phase = label
			unit := p.GetUnit()
			if unit == "bytes" {
				unit = progress.UnitBytes
			}
			bar.Start(label, int64(p.GetTotal()), unit)
		}
		bar.Set(int64(p.GetDone()))
		if p.GetMessage() != "" {
			bar.Message(p.GetMessage())
		}
	}
}

// parseQuantType maps --type to the API's enum.
func parseQuantType(s string) (modelv1.QuantType, error) {
	switch strings.ToLower(s) {
	case "tq2_0", "":
		return modelv1.QuantType_QUANT_TYPE_TQ2_0, nil
	case "tq1_0":
		return modelv1.QuantType_QUANT_TYPE_TQ1_0, nil
	case "i2_s":
		return modelv1.QuantType_QUANT_TYPE_I2_S, nil
	}
	return 0, fmt.Errorf("--type %q: want tq2_0, tq1_0 or i2_s", s)
}

// quantizeAndWait creates a quantizer job, follows it with a progress bar
// and prints a short quality summary; it returns the finished job.
func quantizeAndWait(ctx context.Context, c *sdk.Client, req *quantizerv1.CreateJobRequest, stderr io.Writer, quiet bool) (*quantizerv1.Job, error) {
	job, err := c.Quantizer().CreateJob(ctx, req)
	if err != nil {
		return nil, err
	}
	bar := newBar(stderr, quiet)
	final, err := c.Quantizer().Watch(ctx, job.GetJobId(), jobProgress(bar))
	bar.Finish()
	if err != nil {
		return final, err
	}
	if r := final.GetReport(); r != nil && !quiet {
		fmt.Fprintf(stderr, "quantized %d linears, %s -> %s", len(r.GetLinears()),
			progress.FormatBytes(int64(r.GetSourceSizeBytes())), progress.FormatBytes(int64(r.GetResultSizeBytes())))
		if r.GetCalibrationTokens() > 0 {
			fmt.Fprintf(stderr, ", perplexity %.3f -> %.3f, mean KL %.4f over %d tokens",
				r.GetPerplexityBefore(), r.GetPerplexityAfter(), r.GetMeanKl(), r.GetCalibrationTokens())
		}
		fmt.Fprintln(stderr)
	}
	if final.GetResult().GetName() == "" {
		return final, fmt.Errorf("job %s succeeded without a result version", final.GetJobId())
	}
	return final, nil
}
