package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
)

// maxCalibrationText is the API's limit on inline calibration text.
const maxCalibrationText = 1 << 20

// newQuantizeCmd is "bitnet quantize REF": quantize a registry version on
// the quantizer, follow the job and print the resulting NAME@N.
func newQuantizeCmd(env config.Lookup) *cobra.Command {
	var (
		qtype, name, calib string
		detach             bool
		aliases            []string
	)
	c := &cobra.Command{
		Use:   "quantize NAME[@N|:ALIAS] [--type tq2_0|tq1_0|i2_s] [--name NAME] [flags]",
		Short: "Quantize a registry model to GGUF TQ2_0/TQ1_0/I2_S on the quantizer",
		Long: `Quantize a registry version to GGUF TQ2_0 (or TQ1_0, or bitnet.cpp's I2_S) on the quantizer service,
follow the job's progress and print the new version NAME@N. The report gives
the perplexity and KL divergence before and after on calibration text.`,
		Example: `  bitnet quantize opticks@1
  bitnet quantize opticks --type tq1_0 --name opticks-tq1 --alias prod
  bitnet quantize opticks@1 --calibration notes.txt --detach
  bitnet quantize opticks --type i2_s --name opticks-i2s`,
		Args: exactArgs("model reference NAME[@N|:ALIAS]"),
	}
	resolve := bindClient(c, env)
	f := c.Flags()
	f.StringVar(&qtype, "type", "tq2_0", "target type: tq2_0, tq1_0 or i2_s (bitnet.cpp's); linears the type cannot hold fall back per tensor (see the report)")
	f.StringVar(&name, "name", "", "model that receives the result (default: the source's)")
	f.StringVar(&calib, "calibration", "", "text file for the perplexity and KL report (at most 1 MiB)")
	f.BoolVar(&detach, "detach", false, "print the job ID and return without waiting")
	f.StringArrayVar(&aliases, "alias", nil, "alias to point at the new version (repeatable)")
	_ = c.RegisterFlagCompletionFunc("type", fixedCompletion("tq2_0", "tq1_0", "i2_s"))
	c.RunE = func(c *cobra.Command, args []string) error {
		rf, err := resolve()
		if err != nil {
			return err
		}
		return quantize(c.Context(), rf, args[0], qtype, name, calib, detach, aliases, c.OutOrStdout(), c.ErrOrStderr())
	}
	return c
}

func quantize(ctx context.Context, rf client, ref, qtype, name, calib string, detach bool, aliases []string, stdout, stderr io.Writer) error {
	if _, err := modelv1.ParseRef(ref); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if name != "" {
		if err := modelv1.CheckName(name); err != nil {
			return fmt.Errorf("quantize: --name: %w", err)
		}
	}
	target, err := parseQuantType(qtype)
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	req := &quantizerv1.CreateJobRequest{
		Source: &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: ref}},
		Target: target,
		Output: &quantizerv1.Output{Name: name, Aliases: aliases},
	}
	if calib != "" {
		text, err := readCalibration(calib)
		if err != nil {
			return fmt.Errorf("quantize: %w", err)
		}
		req.Calibration = &quantizerv1.Calibration{TextSource: &quantizerv1.Calibration_Text{Text: text}}
	}
	ctx, c, done, err := rf.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	if detach {
		job, err := c.Quantizer().CreateJob(ctx, req)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, job.GetJobId())
		return err
	}
	job, err := quantizeAndWait(ctx, c, req, stderr, rf.quiet)
	if err != nil {
		return fmt.Errorf("quantize %s: %w", ref, err)
	}
	_, err = fmt.Fprintln(stdout, job.GetResult().Text())
	return err
}

func readCalibration(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--calibration: %w", err)
	}
	if st.Size() > maxCalibrationText {
		return "", fmt.Errorf("--calibration %s: %d bytes, at most %d", path, st.Size(), maxCalibrationText)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--calibration: %w", err)
	}
	return string(b), nil
}
