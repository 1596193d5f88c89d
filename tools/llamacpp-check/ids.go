package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// runIDs prints the ids of a text under a GGUF file's own tokenizer, without
// BOS, comma-separated like llama-tokenize --ids (without brackets).
func runIDs(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ids", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "", "model .gguf file (required)")
	textPath := fs.String("text", "", "text file (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *modelPath == "" || *textPath == "" {
		return fmt.Errorf("ids: -model and -text are required\n%s", usage)
	}
	text, err := os.ReadFile(*textPath)
	if err != nil {
		return fmt.Errorf("ids: %w", err)
	}
	_, tok, err := model.ReadGGUF(*modelPath)
	if err != nil {
		return fmt.Errorf("ids: %w", err)
	}
	if tok == nil {
		return fmt.Errorf("ids: %s has no tokenizer", *modelPath)
	}
	ids := tok.EncodeOrdinary(string(text))
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	_, err = fmt.Fprintln(stdout, strings.Join(s, ","))
	return err
}
