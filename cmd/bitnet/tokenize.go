package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// newTokenizeCmd is
// bitnet tokenize --tokenizer FILE (--text TEXT | --file FILE) [--json] [--bos].
// Special tokens in the text (e.g. <|eot_id|>) are recognised; no BOS is
// added unless --bos is given.
func newTokenizeCmd() *cobra.Command {
	var (
		tokPath, text, file string
		asJSON, bos         bool
	)
	c := &cobra.Command{
		Use:   "tokenize --tokenizer FILE (--text TEXT | --file FILE) [--json] [--bos]",
		Short: "Tokenize text with a Hugging Face tokenizer.json",
		Long: `Print the token IDs of a text under a Hugging Face tokenizer.json (byte-level
BPE, exact LLaMA 3). Special tokens in the text are recognised; BOS is added
only with --bos.`,
		Example: `  bitnet tokenize --tokenizer testdata/tokenizer/opticks-bpe600.json --text "the light"
  bitnet tokenize --tokenizer tokenizer.json --file notes.txt --json --bos`,
		Args: noArgs,
	}
	f := c.Flags()
	f.StringVar(&tokPath, "tokenizer", "", "Hugging Face tokenizer.json (required)")
	f.StringVar(&text, "text", "", "text to tokenize")
	f.StringVar(&file, "file", "", "file whose contents to tokenize")
	f.BoolVar(&asJSON, "json", false, `print {"ids": [int, ...]}`)
	f.BoolVar(&bos, "bos", false, "prepend the BOS token")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if tokPath == "" {
			return errors.New("tokenize: --tokenizer is required")
		}
		if f.Changed("text") == f.Changed("file") {
			return errors.New("tokenize: give exactly one of --text and --file")
		}
		return tokenize(tokPath, text, file, f.Changed("file"), asJSON, bos, c.OutOrStdout())
	}
	return c
}

func tokenize(tokPath, text, file string, fileSet, asJSON, bos bool, stdout io.Writer) error {
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	input := text
	if fileSet {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("tokenize: %w", err)
		}
		input = string(b)
	}
	ids := make([]int, 0, len(input)/3+1)
	if bos {
		id, ok := tok.BOS()
		if !ok {
			return fmt.Errorf("tokenize: --bos: %s has no BOS token", tokPath)
		}
		ids = append(ids, id)
	}
	ids = tok.AppendEncode(ids, input, true)
	if asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			IDs []int `json:"ids"`
		}{ids})
	}
	var sb strings.Builder
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(strconv.Itoa(id))
	}
	sb.WriteByte('\n')
	_, err = io.WriteString(stdout, sb.String())
	return err
}
