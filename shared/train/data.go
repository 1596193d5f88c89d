package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// ErrData reports unusable training data: empty, too short for one
// sequence, malformed JSONL.
var ErrData = errors.New("train: bad data")

// tokenBytes is the size of one token id in a token file (uint32 LE).
const tokenBytes = 4

// textChunk is how much text is tokenised at a time: corpora stream from
// disk through chunks of about this size, cut at line ends.
const textChunk = 1 << 20

// maxJSONLine bounds one JSONL record.
const maxJSONLine = 64 << 20

// Tokenize streams the corpus at src (plain text, or JSONL with a "text"
// field per line when the name ends in .jsonl) through tok into a token file
// at dst (uint32 little-endian ids), written atomically. In JSONL every
// record is followed by sep when sep >= 0 (the EOS id, as a document
// separator). It returns the number of tokens written.
func Tokenize(ctx context.Context, src, dst string, tok *tokenizer.Tokenizer, sep int) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp*")
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	w := bufio.NewWriterSize(tmp, 1<<20)
	var n int64
	var buf [tokenBytes]byte
	emit := func(ids []int) error {
		for _, id := range ids {
			binary.LittleEndian.PutUint32(buf[:], uint32(id))
			if _, err := w.Write(buf[:]); err != nil {
				return err
			}
		}
		n += int64(len(ids))
		return nil
	}
	if strings.EqualFold(filepath.Ext(src), ".jsonl") {
		err = tokenizeJSONL(ctx, in, tok, sep, emit)
	} else {
		err = tokenizeText(ctx, in, tok, textChunk, emit)
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("train: tokenize %s: %w", src, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: %s has no tokens", ErrData, src)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	return n, nil
}

// tokenizeText tokenises r in chunks of about chunk bytes, cut after a
// newline that is followed by a non-space byte, so no whitespace run or word
// (which pre-tokenisers keep together) straddles two chunks.
func tokenizeText(ctx context.Context, r io.Reader, tok *tokenizer.Tokenizer, chunk int, emit func([]int) error) error {
	br := bufio.NewReaderSize(r, chunk)
	var carry []byte
	buf := make([]byte, chunk)
	var ids []int
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, rerr := io.ReadFull(br, buf)
		data := append(carry, buf[:k]...)
		eof := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !eof {
			return rerr
		}
		cut := len(data)
		if !eof {
			cut = 0
			for i := len(data) - 2; i >= 0; i-- {
				if data[i] == '\n' && !isSpace(data[i+1]) {
					cut = i + 1
					break
				}
			}
		}
		ids = tok.AppendEncode(ids[:0], string(data[:cut]), false)
		if err := emit(ids); err != nil {
			return err
		}
		carry = append(carry[:0:0], data[cut:]...)
		if eof {
			return nil
		}
	}
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\n' || b == '\t' || b == '\r' || b == '\v' || b == '\f'
}

func tokenizeJSONL(ctx context.Context, r io.Reader, tok *tokenizer.Tokenizer, sep int, emit func([]int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), maxJSONLine)
	var ids []int
	line := 0
	for sc.Scan() {
		line++
		if line%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("%w: line %d: %w", ErrData, line, err)
		}
		if rec.Text == nil {
			return fmt.Errorf("%w: line %d has no \"text\" field", ErrData, line)
		}
		ids = tok.AppendEncode(ids[:0], *rec.Text, false)
		if sep >= 0 {
			ids = append(ids, sep)
		}
		if err := emit(ids); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}

// Dataset is a token file cut into sequences of Seq+1 tokens (inputs and
// shifted targets) that overlap by one token. The last ValSeqs sequences are
// the validation split and never trained on. Sequences are read from disk
// on demand, so the corpus need not fit in memory.
type Dataset struct {
	f         *os.File
	tokens    int64
	seq       int
	TrainSeqs int
	ValSeqs   int
	buf       []byte
}

// OpenDataset opens a token file written by Tokenize, with sequences of seq
// tokens and a validation tail of valFrac of them (at least one when
// valFrac > 0).
func OpenDataset(path string, seq int, valFrac float64) (*Dataset, error) {
	if seq <= 0 {
		return nil, fmt.Errorf("%w: sequence length %d must be positive", ErrData, seq)
	}
	if !(valFrac >= 0 && valFrac < 1) {
		return nil, fmt.Errorf("%w: validation fraction %v must be in [0,1)", ErrData, valFrac)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("train: %w", err)
	}
	d := &Dataset{f: f, tokens: st.Size() / tokenBytes, seq: seq, buf: make([]byte, (seq+1)*tokenBytes)}
	nseq := int((d.tokens - 1) / int64(seq))
	if d.tokens < 1 {
		nseq = 0
	}
	if valFrac > 0 {
		d.ValSeqs = max(int(math.Ceil(valFrac*float64(nseq))), 1)
	}
	d.TrainSeqs = nseq - d.ValSeqs
	if d.TrainSeqs < 1 {
		f.Close()
		return nil, fmt.Errorf("%w: %d tokens make %d sequences of %d+1 tokens, need at least %d (one to train on, %d validation)", ErrData, d.tokens, nseq, seq, d.ValSeqs+1, d.ValSeqs)
	}
	return d, nil
}

// Tokens returns the number of tokens in the file.
func (d *Dataset) Tokens() int64 { return d.tokens }

// Close closes the token file.
func (d *Dataset) Close() error { return d.f.Close() }

// read fills inputs and targets (seq each) with sequence i (train sequences
// first, then validation), checking ids against vocab.
func (d *Dataset) read(i int, inputs, targets []int, vocab int) error {
	if _, err := d.f.ReadAt(d.buf, int64(i)*int64(d.seq)*tokenBytes); err != nil {
		return fmt.Errorf("train: read sequence %d: %w", i, err)
	}
	for k := 0; k <= d.seq; k++ {
		id := int(binary.LittleEndian.Uint32(d.buf[k*tokenBytes:]))
		if id >= vocab {
			return fmt.Errorf("%w: token id %d at position %d is out of range [0,%d)", ErrData, id, int64(i)*int64(d.seq)+int64(k), vocab)
		}
		if k < d.seq {
			inputs[k] = id
		}
		if k > 0 {
			targets[k-1] = id
		}
	}
	return nil
}

// permutation is the shuffled order of the training sequences in an epoch: a
// pure function of (seed, epoch), so a data position (epoch, index) is the
// whole RNG state a checkpoint needs.
func permutation(seed uint64, epoch, n int) []int {
	r := rand.New(rand.NewPCG(seed, uint64(epoch)+0x64617461)) // "data"
	return r.Perm(n)
}
