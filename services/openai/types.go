package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// fieldError is a field's own decoding error (its UnmarshalJSON).
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + " " + e.msg }

// stringList is a string or a list of strings (stop).
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*s = nil
		return nil
	}
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return &fieldError{"stop", "must be a string or a list of strings"}
	}
	*s = many
	return nil
}

// content is a message's content: a string, a list of parts, or null.
type content struct {
	text  string
	parts int    // parts given (0 for a string)
	other string // the first non-text part's type
}

func (c *content) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	if json.Unmarshal(b, &c.text) == nil {
		return nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return &fieldError{"content", "must be a string or a list of content parts"}
	}
	var texts []string
	for _, p := range parts {
		if p.Type != "text" || p.Text == nil {
			if c.other == "" {
				c.other = p.Type
			}
			continue
		}
		texts = append(texts, *p.Text)
	}
	c.text, c.parts = strings.Join(texts, "\n"), len(parts)
	return nil
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    content         `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  json.RawMessage `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type responseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict *bool           `json:"strict"`
	} `json:"json_schema"`
}

// extension is the "bitnet" request field.
type extension struct {
	Require      []string `json:"require"`
	PreferKernel string   `json:"prefer_kernel"`
}

// sampling are the parameters chat and completions share.
type samplingParams struct {
	Model            string          `json:"model"`
	MaxTokens        *int64          `json:"max_tokens"`
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	N                *int64          `json:"n"`
	Stream           bool            `json:"stream"`
	StreamOptions    *streamOptions  `json:"stream_options"`
	Stop             stringList      `json:"stop"`
	Seed             *int64          `json:"seed"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	LogitBias        json.RawMessage `json:"logit_bias"`
	User             string          `json:"user"`
	ResponseFormat   *responseFormat `json:"response_format"`
	Bitnet           *extension      `json:"bitnet"`
	// vLLM's extra sampling parameters.
	TopK              *int64   `json:"top_k"`
	MinP              *float64 `json:"min_p"`
	RepetitionPenalty *float64 `json:"repetition_penalty"`
}

type chatRequest struct {
	samplingParams
	Messages            []chatMessage   `json:"messages"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Logprobs            bool            `json:"logprobs"`
	TopLogprobs         *int64          `json:"top_logprobs"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	Functions           json.RawMessage `json:"functions"`
	Modalities          []string        `json:"modalities"`
	ChatTemplateKwargs  json.RawMessage `json:"chat_template_kwargs"`
}

// prompt is a completion prompt: a string, one string in a list, token
// IDs, or one list of token IDs in a list.
type prompt struct {
	text string
	ids  []uint32
	set  bool
}

func (p *prompt) UnmarshalJSON(b []byte) error {
	p.set = true
	if json.Unmarshal(b, &p.text) == nil {
		return nil
	}
	var texts []string
	if json.Unmarshal(b, &texts) == nil {
		if len(texts) != 1 {
			return &fieldError{"prompt", fmt.Sprintf("is a list of %d prompts: only one prompt per request is supported", len(texts))}
		}
		p.text = texts[0]
		return nil
	}
	if json.Unmarshal(b, &p.ids) == nil {
		return nil
	}
	var lists [][]uint32
	if err := json.Unmarshal(b, &lists); err != nil {
		return &fieldError{"prompt", "must be a string, a list with one string, a list of token IDs, or a list with one list of token IDs"}
	}
	if len(lists) != 1 {
		return &fieldError{"prompt", fmt.Sprintf("is a list of %d prompts: only one prompt per request is supported", len(lists))}
	}
	p.ids = lists[0]
	return nil
}

type completionRequest struct {
	samplingParams
	Prompt   prompt  `json:"prompt"`
	Echo     bool    `json:"echo"`
	Logprobs *int64  `json:"logprobs"`
	Suffix   *string `json:"suffix"`
	BestOf   *int64  `json:"best_of"`
}

// Responses.

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type topLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type tokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []topLogprob `json:"top_logprobs"`
}

type chatLogprobs struct {
	Content []tokenLogprob `json:"content"`
}

type assistantMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type chatChoice struct {
	Index        int              `json:"index"`
	Message      assistantMessage `json:"message"`
	Logprobs     *chatLogprobs    `json:"logprobs"`
	FinishReason string           `json:"finish_reason"`
}

// meta is the "bitnet" response field: where and how the request ran.
type meta struct {
	Node    string          `json:"node"`
	Kernel  string          `json:"kernel"`
	Model   string          `json:"model"`
	Timings json.RawMessage `json:"timings,omitempty"`
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []chatChoice `json:"choices"`
	Usage             usage        `json:"usage"`
	Bitnet            *meta        `json:"bitnet,omitempty"`
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chunkChoice struct {
	Index        int           `json:"index"`
	Delta        chatDelta     `json:"delta"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	Usage             *usage        `json:"usage"`
}

type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

type completionChoice struct {
	Text         string              `json:"text"`
	Index        int                 `json:"index"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

type completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []completionChoice `json:"choices"`
	Usage             *usage             `json:"usage,omitempty"`
	Bitnet            *meta              `json:"bitnet,omitempty"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type modelList struct {
	Object string        `json:"object"`
	Data   []modelObject `json:"data"`
}
