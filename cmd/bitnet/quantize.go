package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
)

// maxCalibrationText is the API's limit on inline calibration text.
const maxCalibrationText = 1 << 20

// runQuantize implements "bitnet quantize REF": quantize a registry version
// on the quantizer, follow the job and print the resulting NAME@N.
func runQuantize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("quantize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bitnet quantize [--remote ADDR] NAME[@N|:ALIAS] [--type tq2_0|tq1_0] [--name NAME]")
		fs.PrintDefaults()
	}
	rf := addRemoteFlags(fs)
	qtype := fs.String("type", "tq2_0", "target type: tq2_0 or tq1_0")
	name := fs.String("name", "", "model that receives the result (default: the source's)")
	calib := fs.String("calibration", "", "text file for the perplexity and KL report (at most 1 MiB)")
	detach := fs.Bool("detach", false, "print the job ID and return without waiting")
	var aliases stringsFlag
	fs.Var(&aliases, "alias", "alias to point at the new version (repeatable)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("quantize: want one model reference NAME[@N|:ALIAS], got %d arguments", len(pos))
	}
	if _, err := modelv1.ParseRef(pos[0]); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if *name != "" {
		if err := modelv1.CheckName(*name); err != nil {
			return fmt.Errorf("quantize: --name: %w", err)
		}
	}
	target, err := parseQuantType(*qtype)
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	req := &quantizerv1.CreateJobRequest{
		Source: &quantizerv1.Source{Source: &quantizerv1.Source_Model{Model: pos[0]}},
		Target: target,
		Output: &quantizerv1.Output{Name: *name, Aliases: aliases},
	}
	if *calib != "" {
		text, err := readCalibration(*calib)
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
	if *detach {
		job, err := c.Quantizer().CreateJob(ctx, req)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, job.GetJobId())
		return err
	}
	job, err := quantizeAndWait(ctx, c, req, stderr, rf.quiet)
	if err != nil {
		return fmt.Errorf("quantize %s: %w", pos[0], err)
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
