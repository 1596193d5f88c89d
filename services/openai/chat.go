package openai

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
	"github.com/bitnet-mesh/bitnet-mesh/shared/sampling"
)

func present(raw []byte) bool {
	s := strings.TrimSpace(string(raw))
	return s != "" && s != "null" && s != "[]" && s != "{}"
}

// chatGenerateRequest validates a chat request and converts it.
func chatGenerateRequest(c *chatRequest) (*inferencev1.GenerateRequest, error) {
	maxTokens := c.MaxTokens
	if c.MaxCompletionTokens != nil {
		maxTokens = c.MaxCompletionTokens
	}
	req, err := baseRequest(&c.samplingParams, maxTokens, untilFull)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Param == "max_tokens" && c.MaxCompletionTokens != nil {
			e.Param, e.Message = "max_completion_tokens", strings.Replace(e.Message, "max_tokens", "max_completion_tokens", 1)
		}
		return nil, err
	}
	switch {
	case present(c.Tools) || present(c.Functions):
		return nil, unsupported("tools", ": this server does not do function calling")
	case len(c.Messages) == 0:
		return nil, invalid("messages", "messages must be a non-empty list")
	}
	for _, m := range c.Modalities {
		if m != "text" {
			return nil, unsupported("modalities", fmt.Sprintf(" (%q): only text", m))
		}
	}
	for i, m := range c.Messages {
		param := fmt.Sprintf("messages[%d]", i)
		var role inferencev1.Role
		switch m.Role {
		case "system", "developer":
			role = inferencev1.Role_ROLE_SYSTEM
		case "user":
			role = inferencev1.Role_ROLE_USER
		case "assistant":
			role = inferencev1.Role_ROLE_ASSISTANT
			if present(m.ToolCalls) {
				return nil, unsupported(param+".tool_calls", ": this server does not do function calling")
			}
		case "tool", "function":
			return nil, unsupported(param+".role", fmt.Sprintf(" (%q): this server does not do function calling", m.Role))
		case "":
			return nil, invalid(param+".role", "%s.role is required", param)
		default:
			return nil, invalid(param+".role", "%s.role %q: want system, developer, user or assistant", param, m.Role)
		}
		if m.Content.other != "" {
			return nil, unsupported(param+".content", fmt.Sprintf(" (a %q part): only text content", m.Content.other))
		}
		req.Messages = append(req.Messages, &inferencev1.ChatMessage{Role: role, Content: m.Content.text})
	}
	if c.TopLogprobs != nil {
		if *c.TopLogprobs < 0 || *c.TopLogprobs > sampling.MaxTopLogprobs {
			return nil, invalid("top_logprobs", "top_logprobs %d: want 0 to %d", *c.TopLogprobs, sampling.MaxTopLogprobs)
		}
		if *c.TopLogprobs > 0 && !c.Logprobs {
			return nil, invalid("top_logprobs", "top_logprobs needs logprobs: true")
		}
		req.TopLogprobs = uint32(*c.TopLogprobs)
	}
	req.Logprobs = c.Logprobs
	if req.ChatTemplateArgs, err = templateArgs(c.ChatTemplateKwargs); err != nil {
		return nil, err
	}
	return req, nil
}

func (h *Handler) chat(w http.ResponseWriter, r *http.Request) error {
	var c chatRequest
	if err := h.decode(w, r, &c); err != nil {
		return err
	}
	req, err := chatGenerateRequest(&c)
	if err != nil {
		return err
	}
	if c.User != "" {
		logging.FromContext(r.Context(), h.cfg.log).Debug("openai chat", zap.String("user", c.User), zap.String("model", c.Model))
	}
	rn, err := h.start(r, req)
	if err != nil {
		return err
	}
	rn.setHeaders(w)
	id, created := requestID(r, "chatcmpl-"), h.cfg.now().Unix()
	if c.Stream {
		h.streamChat(w, rn, &c, id, created)
		return nil
	}
	var text strings.Builder
	var lps []tokenLogprob
	var last *inferencev1.GenerateResponse
	for {
		msg, err := rn.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		text.WriteString(msg.GetText())
		if c.Logprobs {
			lps = append(lps, chatLogprobsOf(msg.GetLogprobs())...)
		}
		last = msg
	}
	choice := chatChoice{Message: assistantMessage{Role: "assistant", Content: text.String()}, FinishReason: finishReason(last.GetFinishReason())}
	if c.Logprobs {
		choice.Logprobs = &chatLogprobs{Content: lps}
	}
	writeJSON(w, http.StatusOK, chatCompletion{
		ID: id, Object: "chat.completion", Created: created, Model: c.Model, SystemFingerprint: fingerprint(rn.kernel),
		Choices: []chatChoice{choice}, Usage: usageOf(last), Bitnet: rn.meta(last),
	})
	return nil
}

func (h *Handler) streamChat(w http.ResponseWriter, rn *run, c *chatRequest, id string, created int64) {
	s := startSSE(w)
	chunk := func(choices []chunkChoice) chatChunk {
		return chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: c.Model, SystemFingerprint: fingerprint(rn.kernel), Choices: choices}
	}
	empty := ""
	if s.send(chunk([]chunkChoice{{Delta: chatDelta{Role: "assistant", Content: &empty}}})) != nil {
		return
	}
	for {
		msg, err := rn.next()
		if errors.Is(err, io.EOF) {
			return // the node ended without a final message: fail() was not possible
		}
		if err != nil {
			s.fail(err)
			return
		}
		text := msg.GetText()
		if text != "" || (c.Logprobs && len(msg.GetLogprobs()) > 0) {
			ch := chunkChoice{Delta: chatDelta{Content: &text}}
			if c.Logprobs {
				ch.Logprobs = &chatLogprobs{Content: chatLogprobsOf(msg.GetLogprobs())}
			}
			if s.send(chunk([]chunkChoice{ch})) != nil {
				return
			}
		}
		if msg.GetFinishReason() == inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED {
			continue
		}
		reason := finishReason(msg.GetFinishReason())
		if s.send(chunk([]chunkChoice{{Delta: chatDelta{}, FinishReason: &reason}})) != nil {
			return
		}
		final := chunk([]chunkChoice{})
		final.Usage = includedUsage(c.StreamOptions, msg)
		s.end(final, final.Usage != nil)
		return
	}
}
