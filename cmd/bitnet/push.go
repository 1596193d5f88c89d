package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
)

// runPush implements "bitnet push PATH --name NAME": upload a GGUF file or
// a Hugging Face directory as the model's next version and print NAME@N.
// With --quantize the files go to the quantizer as blobs and the printed
// version is its GGUF result.
func runPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bitnet push [--remote ADDR] PATH --name NAME [--quantize [--type tq2_0|tq1_0]] [--alias A]...")
		fs.PrintDefaults()
	}
	rf := addRemoteFlags(fs)
	name := fs.String("name", "", "model name (default: from PATH)")
	quantize := fs.Bool("quantize", false, "quantize to GGUF on the quantizer before storing")
	qtype := fs.String("type", "tq2_0", "quant type with --quantize: tq2_0 or tq1_0")
	desc := fs.String("description", "", "description of the new version")
	var aliases stringsFlag
	fs.Var(&aliases, "alias", "alias to point at the new version (repeatable)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("push: want one PATH (a .gguf file or a Hugging Face directory), got %d arguments", len(pos))
	}
	path := pos[0]
	if *name == "" {
		*name = defaultName(path)
	}
	target, err := parseQuantType(*qtype)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	ctx, c, done, err := rf.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	bar := newBar(stderr, rf.quiet)
	opts := &sdk.PushOptions{Progress: transferProgress(bar), Aliases: aliases, Description: *desc}
	if !*quantize {
		res, err := c.Registry().Push(ctx, *name, path, opts)
		bar.Finish()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, res.Ref)
		return err
	}
	if err := modelv1.CheckName(*name); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	lm, err := sdk.Inspect(path)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	up, err := c.Registry().Upload(ctx, lm, opts)
	bar.Finish()
	if err != nil {
		return fmt.Errorf("push %s: %w", path, err)
	}
	src := &quantizerv1.SourceFiles{Format: lm.Format}
	for _, f := range up.Files {
		src.Files = append(src.Files, &quantizerv1.SourceFile{Path: f.GetPath(), Sha256: f.GetSha256()})
	}
	job, err := quantizeAndWait(ctx, c, &quantizerv1.CreateJobRequest{
		Source: &quantizerv1.Source{Source: &quantizerv1.Source_Files{Files: src}},
		Target: target,
		Output: &quantizerv1.Output{Name: *name, Aliases: aliases, Description: *desc},
	}, stderr, rf.quiet)
	if err != nil {
		return fmt.Errorf("push %s: %w", path, err)
	}
	_, err = fmt.Fprintln(stdout, job.GetResult().Text())
	return err
}

// defaultName turns a path into a model name: the base name without a
// .gguf extension, lower-cased, other characters replaced by '-'.
func defaultName(path string) string {
	base := strings.TrimSuffix(filepath.Base(filepath.Clean(path)), ".gguf")
	b := []byte(strings.ToLower(base))
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			b[i] = '-'
		}
	}
	return strings.TrimLeft(string(b), "._-")
}
