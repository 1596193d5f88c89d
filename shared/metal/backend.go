package metal

// Backend runs the kernels of Source: the Metal device of a Mac
// (OpenDevice), or the emulator (package emulator) in tests. GPU drives
// either the same way, so the emulator checks the host side too: buffer
// layouts, bindings, grid sizes and tails.
type Backend interface {
	// Name describes the device ("Apple M2 Pro", "emulator").
	Name() string
	// NewBuffer returns a zeroed buffer of n bytes that the CPU and the
	// device share (MTLStorageModeShared).
	NewBuffer(n int) (Buffer, error)
	// WrapBuffer returns a buffer over b, without copying where the device
	// can map b's pages (Buffer.Copied reports which). The caller keeps b
	// alive and unchanged while the buffer is in use.
	WrapBuffer(b []byte) (Buffer, error)
	// Submit encodes ds, in order, into one command buffer and commits it;
	// Wait on the result blocks until the device has run them all.
	Submit(ds []Dispatch) (Pending, error)
	// MaxBufferBytes is the largest buffer the device creates.
	MaxBufferBytes() int64
	// WorkingSetBytes is the memory the device can use without paging
	// (recommendedMaxWorkingSetSize), 0 when unknown.
	WorkingSetBytes() int64
	// Close releases the device; buffers must be released first.
	Close() error
}

// Buffer is memory the CPU and the device share.
type Buffer interface {
	// Bytes is the CPU's view of the buffer.
	Bytes() []byte
	// Copied reports whether the device holds a copy (memory beyond the
	// CPU's) rather than a mapping of the caller's bytes.
	Copied() bool
	// Release frees the buffer (a no-copy buffer leaves the bytes alone).
	Release()
}

// Pending is a committed command buffer.
type Pending interface {
	// Wait blocks until the command buffer completed and reports its error.
	Wait() error
}

// Dispatch is one kernel launch.
type Dispatch struct {
	Kernel string
	// Grid is the number of threadgroups; Group the threads of each.
	Grid, Group [3]int
	// Buffers are bound at [[buffer(Index)]]; Bytes are small constant
	// arguments (setBytes) bound the same way.
	Buffers []Binding
	Bytes   []Bytes
	// Threadgroup[i] is the size of [[threadgroup(i)]] memory in bytes.
	Threadgroup []int
}

// Binding binds Len bytes of Buf from Offset.
type Binding struct {
	Index       int
	Buf         Buffer
	Offset, Len int
	// Write marks a buffer the kernel writes (the emulator returns it;
	// Metal ignores it).
	Write bool
}

// Bytes is a constant argument.
type Bytes struct {
	Index int
	Data  []byte
}
