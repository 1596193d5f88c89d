package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// runTokenize implements
// bitnet tokenize --tokenizer FILE (--text TEXT | --file FILE) [--json] [--bos].
// Special tokens in the text (e.g. <|eot_id|>) are recognised; no BOS is
// added unless --bos is given.
func runTokenize(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tokPath := fs.String("tokenizer", "", "Hugging Face tokenizer.json (required)")
	text := fs.String("text", "", "text to tokenize")
	file := fs.String("file", "", "file whose contents to tokenize")
	asJSON := fs.Bool("json", false, `print {"ids": [int, ...]}`)
	bos := fs.Bool("bos", false, "prepend the BOS token")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bitnet tokenize --tokenizer FILE (--text TEXT | --file FILE) [--json] [--bos]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("tokenize: unexpected argument %q", fs.Arg(0))
	}
	if *tokPath == "" {
		return errors.New("tokenize: --tokenizer is required")
	}
	textSet, fileSet := false, false
	fs.Visit(func(f *flag.Flag) {
		textSet = textSet || f.Name == "text"
		fileSet = fileSet || f.Name == "file"
	})
	if textSet == fileSet {
		return errors.New("tokenize: give exactly one of --text and --file")
	}
	tok, err := tokenizer.Load(*tokPath)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	input := *text
	if fileSet {
		b, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("tokenize: %w", err)
		}
		input = string(b)
	}
	ids := make([]int, 0, len(input)/3+1)
	if *bos {
		id, ok := tok.BOS()
		if !ok {
			return fmt.Errorf("tokenize: --bos: %s has no BOS token", *tokPath)
		}
		ids = append(ids, id)
	}
	ids = tok.AppendEncode(ids, input, true)
	if *asJSON {
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
