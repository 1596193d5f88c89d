// Command llamacpp-check makes small BitNet GGUF files with the project's
// writer and scores text with the project's engine the way llama.cpp's
// llama-perplexity does, so check.sh can compare the two programs on the
// same files. It never builds or runs llama.cpp itself.
//
//	go run ./tools/llamacpp-check models -out DIR [-hf HFDIR] [-tokenizer FILE]
//	go run ./tools/llamacpp-check ppl -model FILE -text FILE -ctx N [-json]
//	go run ./tools/llamacpp-check ids -model FILE -text FILE
//
// models writes DIR/{tq2_0,tq1_0,tq2_0-scale,tq2_0-noffn}.gguf from a Hugging
// Face directory (e.g. a short `bitnet train` run; master weights are
// ternarised with absmean at load) or, without -hf, from random weights of
// the default small shape (hidden 256, 2 layers, 4 heads, 2 KV heads, FFN
// 512). The "noffn" file has every ffn_down zeroed: its output does not
// depend on the FFN activation (relu2 in BitNet b1.58 2B4T, SiLU in some
// llama.cpp builds), so it isolates the rest of the mapping.
//
// ppl follows llama-perplexity's protocol: the text is tokenized with BOS
// (when the model has one), cut into chunks of -ctx tokens, each chunk's first
// token is replaced by BOS, and only the tokens of the second half of each
// chunk are scored. It prints llama-perplexity's "Final estimate" line.
//
// ids prints a text's token ids under the GGUF file's own tokenizer, to
// compare with llama-tokenize --ids.
//
// models -bitnetcpp writes DIR/i2_s.gguf (bitnet.cpp's I2_S type and
// bitnet-b1.58 architecture) and DIR/f32.gguf (every tensor F32) for
// check-bitnetcpp.sh; same compares two models' weights (ternary codes and
// scales exactly); gen prints a greedy continuation's raw bytes, as
// llama-cli --temp 0 does.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "llamacpp-check:", err)
		os.Exit(1)
	}
}

const usage = "usage: llamacpp-check models -out DIR [-hf HFDIR -tokenizer FILE -seed N -bitnetcpp] | ppl -model FILE -text FILE -ctx N [-json -head-f32=false] | ids -model FILE -text FILE | same -a MODEL -b MODEL [-tol X] | gen -model FILE -prompt TEXT [-n N -ids]"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "models":
		return runModels(args[1:], stdout, stderr)
	case "ppl":
		return runPPL(ctx, args[1:], stdout, stderr)
	case "ids":
		return runIDs(args[1:], stdout, stderr)
	case "same":
		return runSame(args[1:], stdout, stderr)
	case "gen":
		return runGen(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q\n%s", args[0], usage)
	}
}
