package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
)

// newPushCmd is "bitnet push PATH --name NAME": upload a GGUF file or a
// Hugging Face directory as the model's next version and print NAME@N.
// With --quantize the files go to the quantizer as blobs and the printed
// version is its GGUF result.
func newPushCmd(env config.Lookup) *cobra.Command {
	var (
		name, qtype, desc string
		quantize, all     bool
		aliases           []string
	)
	c := &cobra.Command{
		Use:   "push PATH [--name NAME] [--quantize [--type tq2_0|tq1_0|i2_s]] [--alias A]... [flags]",
		Short: "Upload a GGUF file or Hugging Face directory to the registry (--quantize: as GGUF TQ2_0)",
		Long: `Upload a GGUF file or a Hugging Face directory as the next version of a model
and print its reference NAME@N. With --quantize the quantizer converts the
upload to GGUF TQ2_0 (or TQ1_0) and the printed version is its result.

Of a directory, push sends the model's files: config.json, the weights
(model.safetensors, or the shards of model.safetensors.index.json), the
tokenizer and its config, generation_config.json, a chat template, README.md
and LICENSE. What training leaves beside them (checkpoint.safetensors,
train.tokens, loss.svg) stays local unless --all.`,
		Example: `  bitnet push ./model.gguf --name tiny
  bitnet push /tmp/opticks --name opticks --quantize --alias prod
  bitnet push --remote mesh.example:50051 ./bitnet-2b --type tq1_0 --quantize`,
		Args: exactArgs("PATH (a .gguf file or a Hugging Face directory)"),
	}
	resolve := bindClient(c, env)
	f := c.Flags()
	f.StringVar(&name, "name", "", "model name (default: from PATH)")
	f.BoolVar(&quantize, "quantize", false, "quantize to GGUF on the quantizer before storing")
	f.StringVar(&qtype, "type", "tq2_0", "quant type with --quantize: tq2_0, tq1_0 or i2_s")
	f.StringVar(&desc, "description", "", "description of the new version")
	f.StringArrayVar(&aliases, "alias", nil, "alias to point at the new version (repeatable)")
	f.BoolVar(&all, "all", false, "push every file of the directory, not only the model's (checkpoints, token caches, plots too)")
	_ = c.RegisterFlagCompletionFunc("type", fixedCompletion("tq2_0", "tq1_0", "i2_s"))
	c.RunE = func(c *cobra.Command, args []string) error {
		rf, err := resolve()
		if err != nil {
			return err
		}
		opts := pushOpts{name: name, qtype: qtype, desc: desc, quantize: quantize, all: all, aliases: aliases}
		return push(c.Context(), rf, args[0], opts, c.OutOrStdout(), c.ErrOrStderr())
	}
	return c
}

// pushOpts are push's flags.
type pushOpts struct {
	name, qtype, desc string
	quantize, all     bool
	aliases           []string
}

func push(ctx context.Context, rf client, path string, o pushOpts, stdout, stderr io.Writer) error {
	name, desc, aliases := o.name, o.desc, o.aliases
	if name == "" {
		name = defaultName(path)
	}
	target, err := parseQuantType(o.qtype)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	ctx, c, done, err := rf.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	bar := newBar(stderr, rf.quiet)
	opts := &sdk.PushOptions{Progress: transferProgress(bar), Aliases: aliases, Description: desc, AllFiles: o.all}
	if !o.quantize {
		res, err := c.Registry().Push(ctx, name, path, opts)
		bar.Finish()
		if err != nil {
			return err
		}
		leftOut(stderr, res.LeftOut, rf.quiet)
		_, err = fmt.Fprintln(stdout, res.Ref)
		return err
	}
	if err := modelv1.CheckName(name); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	var iopts []sdk.InspectOption
	if o.all {
		iopts = append(iopts, sdk.AllFiles())
	}
	lm, err := sdk.Inspect(path, iopts...)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	leftOut(stderr, lm.Skipped, rf.quiet)
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
		Output: &quantizerv1.Output{Name: name, Aliases: aliases, Description: desc},
	}, stderr, rf.quiet)
	if err != nil {
		return fmt.Errorf("push %s: %w", path, err)
	}
	_, err = fmt.Fprintln(stdout, job.GetResult().Text())
	return err
}

// leftOut says which files of the directory push did not send.
func leftOut(stderr io.Writer, files []string, quiet bool) {
	if len(files) > 0 && !quiet {
		fmt.Fprintf(stderr, "left out (not model files; --all pushes them): %s\n", strings.Join(files, ", "))
	}
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
