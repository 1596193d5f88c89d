// Package emulator runs package metal's kernels on the CPU, so that they
// are checked on machines without an Apple GPU (CI, Linux developers).
//
// Build compiles metal.Source(), the exact bytes a Mac compiles with
// newLibraryWithSource, as C++ (clang) against src/msl_emu.h, a header that
// maps the Metal built-ins the kernels use (thread and threadgroup
// positions, SIMD-group functions, threadgroup memory, barriers) onto a
// sequential emulation of threadgroups: every thread is a coroutine,
// SIMD-group functions and barriers release only when every participant
// reached them (see msl_emu.h for the exact rules and what is reported as
// an error). Start runs the binary as a metal.Backend, so metal.GPU drives
// it exactly as it drives Metal: the tests compare its results bit for bit
// with package kernels' generic path.
//
// What emulation cannot show: the Apple GPU's own floating-point behaviour
// (the kernels keep to integer arithmetic, correctly rounded int-to-float
// conversion and one float product, which IEEE 754 fixes), the Metal
// compiler's handling of the source (a Mac compiles it at start and the
// node's self-test compares its results with the CPU), and speed.
package emulator

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

//go:embed src/msl_emu.h src/main.cpp
var src embed.FS

// EnvClang names the C++ compiler Build uses (default: the first of
// clang++-19, clang++ found on PATH).
const EnvClang = "BITNET_CLANG"

// ErrNoCompiler reports that no clang was found.
var ErrNoCompiler = errors.New("emulator: no clang++ found (install Debian's clang-19 or set " + EnvClang + ")")

// flags are the compiler flags: MSL's char is signed, its integer
// arithmetic wraps, it reinterprets pointers freely and never contracts
// a*b+c unless asked.
var flags = []string{
	"-std=c++20", "-O2", "-fsigned-char", "-fwrapv", "-fno-strict-aliasing", "-ffp-contract=off",
	"-U_FORTIFY_SOURCE", "-Wall", "-Werror", "-Wno-unknown-attributes",
}

// Compiler returns the clang++ Build would use.
func Compiler() (string, error) {
	if c := os.Getenv(EnvClang); c != "" {
		return exec.LookPath(c)
	}
	for _, c := range []string{"clang++-19", "clang++"} {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", ErrNoCompiler
}

// Build compiles the emulator into dir (created if needed) and returns the
// binary's path. A binary built from the same sources, flags and compiler
// is reused.
func Build(ctx context.Context, dir string) (string, error) { return build(ctx, dir, nil) }

// build is Build with test kernels (test_kernels.inc, see main.cpp).
func build(ctx context.Context, dir string, testKernels []byte) (string, error) {
	cxx, err := Compiler()
	if err != nil {
		return "", err
	}
	ver, err := exec.CommandContext(ctx, cxx, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("emulator: %s --version: %w", cxx, err)
	}
	files := map[string][]byte{"kernels.metal.inc": []byte(metal.Source())}
	names := []string{"kernels.metal.inc", "msl_emu.h", "main.cpp"}
	if testKernels != nil {
		files["test_kernels.inc"] = testKernels
		names = append(names, "test_kernels.inc")
	}
	for _, f := range []string{"msl_emu.h", "main.cpp"} {
		b, err := src.ReadFile("src/" + f)
		if err != nil {
			return "", fmt.Errorf("emulator: embedded %s: %w", f, err)
		}
		files[f] = b
	}
	h := sha256.New()
	for _, f := range names {
		fmt.Fprintf(h, "%s %d\n", f, len(files[f]))
		h.Write(files[f])
	}
	fmt.Fprintf(h, "%s\n%s\n%s\n", cxx, ver, strings.Join(flags, " "))
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	out := filepath.Join(dir, "msl-emu-"+sum)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("emulator: %w", err)
		}
		if work, err = os.MkdirTemp(dir, "build-"); err != nil {
			return "", fmt.Errorf("emulator: %w", err)
		}
	}
	defer os.RemoveAll(work)
	for f, b := range files {
		if err := os.WriteFile(filepath.Join(work, f), b, 0o644); err != nil {
			return "", fmt.Errorf("emulator: %w", err)
		}
	}
	bin := filepath.Join(work, "emu")
	args := append(append([]string{}, flags...), "-I", work, filepath.Join(work, "main.cpp"), "-o", bin)
	cmd := exec.CommandContext(ctx, cxx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("emulator: compiling the kernels as C++ (%s): %w\n%s", cxx, err, stderr.String())
	}
	// Rename into place: concurrent builds (parallel test binaries) each
	// produce a complete binary.
	if err := os.Rename(bin, out); err != nil {
		return "", fmt.Errorf("emulator: %w", err)
	}
	return out, nil
}

var shared struct {
	once sync.Once
	bin  string
	err  error
}

// Shared builds the emulator once per process into the user cache
// directory (bitnet-mesh/msl-emu) and returns its path.
func Shared() (string, error) {
	shared.once.Do(func() {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		shared.bin, shared.err = Build(context.Background(), filepath.Join(dir, "bitnet-mesh", "msl-emu"))
	})
	return shared.bin, shared.err
}

// Order is the order in which the emulator runs the threads of a
// threadgroup between synchronisation points, and the threadgroups.
type Order uint32

// The orders. A kernel whose result depends on the order has a race.
const (
	Ascending Order = iota
	Descending
	Shuffled
)

// Option configures Start.
type Option func(*Backend)

// WithOrder sets the schedule (default Ascending); seed drives Shuffled.
func WithOrder(o Order, seed uint64) Option { return func(b *Backend) { b.order, b.seed = o, seed } }

// WithCopies makes WrapBuffer copy, as Metal does for memory it cannot
// map, so that the copy path is tested too.
func WithCopies() Option { return func(b *Backend) { b.copies = true } }

// Backend is a running emulator: a metal.Backend. Safe for concurrent use
// (dispatches run one at a time).
type Backend struct {
	order  Order
	seed   uint64
	copies bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	in     *bufio.Writer
	stdin  io.Closer
	out    *bufio.Reader
	stderr *bytes.Buffer
	err    error // the process failed: every later call fails
}

// Start runs the emulator binary bin (from Build).
func Start(bin string, opts ...Option) (*Backend, error) {
	b := &Backend{stderr: &bytes.Buffer{}}
	for _, o := range opts {
		o(b)
	}
	b.cmd = exec.Command(bin)
	b.cmd.Stderr = b.stderr
	w, err := b.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	r, err := b.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("emulator: start %s: %w", bin, err)
	}
	b.stdin, b.in, b.out = w, bufio.NewWriterSize(w, 1<<20), bufio.NewReaderSize(r, 1<<20)
	return b, nil
}

// Name implements metal.Backend.
func (b *Backend) Name() string { return "MSL emulator" }

// MaxBufferBytes implements metal.Backend.
func (b *Backend) MaxBufferBytes() int64 { return 1 << 34 }

// WorkingSetBytes implements metal.Backend: unknown.
func (b *Backend) WorkingSetBytes() int64 { return 0 }

type buffer struct {
	b      []byte
	copied bool
}

func (x *buffer) Bytes() []byte { return x.b }
func (x *buffer) Copied() bool  { return x.copied }
func (x *buffer) Release()      { x.b = nil }

// NewBuffer implements metal.Backend.
func (b *Backend) NewBuffer(n int) (metal.Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("emulator: buffer of %d bytes", n)
	}
	return &buffer{b: make([]byte, n), copied: true}, nil
}

// WrapBuffer implements metal.Backend: the buffer is p itself, as Metal's
// no-copy buffers are (unless WithCopies).
func (b *Backend) WrapBuffer(p []byte) (metal.Buffer, error) {
	if b.copies {
		return &buffer{b: bytes.Clone(p), copied: true}, nil
	}
	return &buffer{b: p}, nil
}

type done struct{ err error }

func (d done) Wait() error { return d.err }

// Submit implements metal.Backend: it runs ds now, in order.
func (b *Backend) Submit(ds []metal.Dispatch) (metal.Pending, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range ds {
		if err := b.dispatch(d); err != nil {
			return done{}, err
		}
	}
	return done{}, nil
}

func (b *Backend) dispatch(d metal.Dispatch) error {
	if b.err != nil {
		return b.err
	}
	put32 := func(v uint32) { _ = binary.Write(b.in, binary.LittleEndian, v) }
	put64 := func(v uint64) { _ = binary.Write(b.in, binary.LittleEndian, v) }
	put32(magic)
	put32(opDispatch)
	put32(uint32(len(d.Kernel)))
	b.in.WriteString(d.Kernel)
	for _, v := range d.Grid {
		put32(uint32(v))
	}
	for _, v := range d.Group {
		put32(uint32(v))
	}
	put32(uint32(b.order))
	put64(b.seed)
	put32(uint32(len(d.Buffers) + len(d.Bytes)))
	for _, x := range d.Buffers {
		bs := x.Buf.Bytes()
		if x.Offset < 0 || x.Len < 0 || x.Offset+x.Len > len(bs) {
			return fmt.Errorf("emulator: %s: buffer %d binds [%d, %d) of %d bytes", d.Kernel, x.Index, x.Offset, x.Offset+x.Len, len(bs))
		}
		var fl uint32
		if x.Write {
			fl = 1
		}
		put32(uint32(x.Index))
		put32(fl)
		put64(uint64(x.Len))
		b.in.Write(bs[x.Offset : x.Offset+x.Len])
	}
	for _, x := range d.Bytes {
		put32(uint32(x.Index))
		put32(0)
		put64(uint64(len(x.Data)))
		b.in.Write(x.Data)
	}
	put32(uint32(len(d.Threadgroup)))
	for i, n := range d.Threadgroup {
		put32(uint32(i))
		put32(uint32(n))
	}
	if err := b.in.Flush(); err != nil {
		return b.fail(d.Kernel, err)
	}
	st, err := b.read32()
	if err != nil {
		return b.fail(d.Kernel, err)
	}
	if st != 0 {
		msg, err := b.readMsg()
		if err != nil {
			return b.fail(d.Kernel, err)
		}
		return fmt.Errorf("emulator: %s: %s", d.Kernel, msg)
	}
	for _, x := range d.Buffers {
		if !x.Write {
			continue
		}
		var n uint64
		if err := binary.Read(b.out, binary.LittleEndian, &n); err != nil {
			return b.fail(d.Kernel, err)
		}
		if n != uint64(x.Len) {
			return b.fail(d.Kernel, fmt.Errorf("returned %d bytes for buffer %d, want %d", n, x.Index, x.Len))
		}
		if _, err := io.ReadFull(b.out, x.Buf.Bytes()[x.Offset:x.Offset+x.Len]); err != nil {
			return b.fail(d.Kernel, err)
		}
	}
	return nil
}

// Protocol constants (main.cpp).
const (
	magic      = 0x454c544d // "MTLE"
	opDispatch = 1
	opList     = 2
	opQuit     = 3
)

func (b *Backend) read32() (uint32, error) {
	var v uint32
	err := binary.Read(b.out, binary.LittleEndian, &v)
	return v, err
}

func (b *Backend) readMsg() (string, error) {
	n, err := b.read32()
	if err != nil {
		return "", err
	}
	if n > 1<<16 {
		return "", fmt.Errorf("message of %d bytes", n)
	}
	buf := make([]byte, n)
	_, err = io.ReadFull(b.out, buf)
	return string(buf), err
}

// fail records that the process broke (a kernel error makes it exit with
// a message on stderr) and returns the error with that message.
func (b *Backend) fail(kernel string, err error) error {
	_ = b.stdin.Close()
	werr := b.cmd.Wait()
	b.err = fmt.Errorf("emulator: %s: %w (%v): %s", kernel, err, werr, strings.TrimSpace(b.stderr.String()))
	return b.err
}

// Kernels lists the kernels compiled into the emulator.
func (b *Backend) Kernels() ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, b.err
	}
	_ = binary.Write(b.in, binary.LittleEndian, [2]uint32{magic, opList})
	if err := b.in.Flush(); err != nil {
		return nil, b.fail("list", err)
	}
	if st, err := b.read32(); err != nil || st != 0 {
		return nil, b.fail("list", fmt.Errorf("status %d: %v", st, err))
	}
	n, err := b.read32()
	if err != nil {
		return nil, b.fail("list", err)
	}
	var names []string
	for range n {
		s, err := b.readMsg()
		if err != nil {
			return nil, b.fail("list", err)
		}
		names = append(names, s)
	}
	return names, nil
}

// Close implements metal.Backend: it stops the process.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil
	}
	_ = binary.Write(b.in, binary.LittleEndian, [2]uint32{magic, opQuit})
	_ = b.in.Flush()
	_ = b.stdin.Close()
	err := b.cmd.Wait()
	b.err = errors.New("emulator: closed")
	if err != nil {
		return fmt.Errorf("emulator: %w: %s", err, strings.TrimSpace(b.stderr.String()))
	}
	return nil
}
