package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// embedAffixes sets c.EmbedPrefix and c.EmbedSuffix of an embedding model
// from the post_processor of its tokenizer.json (a TemplateProcessing,
// alone or in a Sequence: the special tokens around "$A" in "single"), the
// way the Hugging Face tokenizer frames a text. Without one: the Qwen3
// models end with <|endoftext|> (what BitNet's converter makes llama.cpp
// append) and Gemma3 models start with BOS.
func embedAffixes(path string, c *Config, tok *tokenizer.Tokenizer) error {
	pre, suf, found, err := templateAffixes(path)
	if err != nil {
		return fmt.Errorf("model: %s: post_processor: %w", path, err)
	}
	if !found {
		switch c.Family() {
		case FamilyQwen3:
			if id, ok := tok.TokenID("<|endoftext|>"); ok {
				suf = []int{id}
			}
		case FamilyGemma3:
			if c.BOSTokenID >= 0 {
				pre = []int{c.BOSTokenID}
			} else if id, ok := tok.BOS(); ok {
				pre = []int{id}
			}
		}
	}
	c.EmbedPrefix, c.EmbedSuffix = pre, suf
	return c.Validate()
}

// templateProcessing is the part of a tokenizers TemplateProcessing (or a
// Sequence of processors) that frames a single text.
type templateProcessing struct {
	Type       string               `json:"type"`
	Processors []templateProcessing `json:"processors"`
	Single     []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
}

// templateAffixes reads tokenizer.json's post_processor without holding
// the rest of the file (the vocabulary can be tens of megabytes).
func templateAffixes(path string) (pre, suf []int, found bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, false, err
	}
	defer f.Close()
	dec := json.NewDecoder(io.LimitReader(f, 1<<30))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, false, fmt.Errorf("not a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, false, err
		}
		if key, _ := t.(string); key != "post_processor" {
			if err := skipValue(dec); err != nil {
				return nil, nil, false, err
			}
			continue
		}
		var tp *templateProcessing
		if err := dec.Decode(&tp); err != nil {
			return nil, nil, false, err
		}
		return tp.affixes()
	}
	return nil, nil, false, nil
}

// skipValue consumes one JSON value token by token.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

func (tp *templateProcessing) affixes() (pre, suf []int, found bool, err error) {
	if tp == nil {
		return nil, nil, false, nil
	}
	if tp.Type == "Sequence" {
		for i := range tp.Processors {
			if pre, suf, found, err = tp.Processors[i].affixes(); found || err != nil {
				return pre, suf, found, err
			}
		}
		return nil, nil, false, nil
	}
	if tp.Type != "TemplateProcessing" {
		return nil, nil, false, nil
	}
	seen := false
	for _, piece := range tp.Single {
		switch {
		case piece.Sequence != nil:
			if seen {
				return nil, nil, false, errors.New("TemplateProcessing single has two sequences")
			}
			seen = true
		case piece.SpecialToken != nil:
			st, ok := tp.SpecialTokens[piece.SpecialToken.ID]
			if !ok {
				return nil, nil, false, fmt.Errorf("special token %q has no ids", piece.SpecialToken.ID)
			}
			if seen {
				suf = append(suf, st.IDs...)
			} else {
				pre = append(pre, st.IDs...)
			}
		}
	}
	if !seen {
		return nil, nil, false, errors.New("TemplateProcessing single has no sequence")
	}
	return pre, suf, true, nil
}
