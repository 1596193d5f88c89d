package openai

import (
	"errors"
	"io"
	"net/http"
	"strings"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
)

// maxCompletionLogprobs is the legacy API's limit on logprobs.
const maxCompletionLogprobs = 5

func completionGenerateRequest(c *completionRequest) (*inferencev1.GenerateRequest, error) {
	req, err := baseRequest(&c.samplingParams, c.MaxTokens, 16)
	if err != nil {
		return nil, err
	}
	switch {
	case !c.Prompt.set:
		return nil, invalid("prompt", "you must provide a prompt")
	case c.Prompt.text == "" && len(c.Prompt.ids) == 0:
		return nil, invalid("prompt", "the prompt is empty")
	case c.Suffix != nil && *c.Suffix != "":
		return nil, unsupported("suffix", "")
	case c.BestOf != nil && *c.BestOf != 1:
		return nil, unsupported("best_of", " above 1")
	case c.Logprobs != nil && (*c.Logprobs < 0 || *c.Logprobs > maxCompletionLogprobs):
		return nil, invalid("logprobs", "logprobs %d: want 0 to %d", *c.Logprobs, maxCompletionLogprobs)
	case c.Logprobs != nil && c.Echo:
		return nil, unsupported("echo with logprobs", ": the prompt's log probabilities are not computed")
	}
	req.Prompt, req.PromptTokenIds, req.Echo = c.Prompt.text, c.Prompt.ids, c.Echo
	if c.Logprobs != nil {
		req.Logprobs, req.TopLogprobs = true, uint32(*c.Logprobs)
	}
	return req, nil
}

// completionLogprobsOf converts log probabilities to the legacy shape;
// offset is the characters of text before them.
func completionLogprobsOf(lps []*inferencev1.TokenLogprob, offset int, into *completionLogprobs) {
	for _, l := range lps {
		into.Tokens = append(into.Tokens, l.GetToken())
		into.TokenLogprobs = append(into.TokenLogprobs, lp(l.GetLogprob()))
		top := map[string]float64{}
		for _, a := range l.GetTopLogprobs() {
			if _, dup := top[a.GetToken()]; !dup {
				top[a.GetToken()] = lp(a.GetLogprob())
			}
		}
		into.TopLogprobs = append(into.TopLogprobs, top)
		into.TextOffset = append(into.TextOffset, offset)
		offset += runeLen(l.GetToken())
	}
}

func (h *Handler) completions(w http.ResponseWriter, r *http.Request) error {
	var c completionRequest
	if err := h.decode(w, r, &c); err != nil {
		return err
	}
	req, err := completionGenerateRequest(&c)
	if err != nil {
		return err
	}
	rn, err := h.start(r, req)
	if err != nil {
		return err
	}
	rn.setHeaders(w)
	id, created := requestID(r, "cmpl-"), h.cfg.now().Unix()
	if c.Stream {
		h.streamCompletion(w, rn, &c, id, created)
		return nil
	}
	var text strings.Builder
	var logprobs *completionLogprobs
	if c.Logprobs != nil {
		logprobs = &completionLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	}
	var last *inferencev1.GenerateResponse
	for {
		msg, err := rn.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if logprobs != nil {
			completionLogprobsOf(msg.GetLogprobs(), runeLen(text.String()), logprobs)
		}
		text.WriteString(msg.GetText())
		last = msg
	}
	reason := finishReason(last.GetFinishReason())
	u := usageOf(last)
	writeJSON(w, http.StatusOK, completion{
		ID: id, Object: "text_completion", Created: created, Model: c.Model, SystemFingerprint: fingerprint(rn.kernel),
		Choices: []completionChoice{{Text: text.String(), Logprobs: logprobs, FinishReason: &reason}}, Usage: &u, Bitnet: rn.meta(last),
	})
	return nil
}

func (h *Handler) streamCompletion(w http.ResponseWriter, rn *run, c *completionRequest, id string, created int64) {
	s := startSSE(w)
	chunk := func(choices []completionChoice) completion {
		return completion{ID: id, Object: "text_completion", Created: created, Model: c.Model, SystemFingerprint: fingerprint(rn.kernel), Choices: choices}
	}
	offset := 0
	for {
		msg, err := rn.next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.fail(err)
			return
		}
		ch := completionChoice{Text: msg.GetText()}
		if c.Logprobs != nil {
			ch.Logprobs = &completionLogprobs{}
			completionLogprobsOf(msg.GetLogprobs(), offset, ch.Logprobs)
		}
		offset += runeLen(msg.GetText())
		final := msg.GetFinishReason() != inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED
		if final {
			reason := finishReason(msg.GetFinishReason())
			ch.FinishReason = &reason
		}
		if ch.Text != "" || final || ch.Logprobs != nil {
			if s.send(chunk([]completionChoice{ch})) != nil {
				return
			}
		}
		if !final {
			continue
		}
		last := chunk([]completionChoice{})
		last.Usage = includedUsage(c.StreamOptions, msg)
		s.end(last, last.Usage != nil)
		return
	}
}
