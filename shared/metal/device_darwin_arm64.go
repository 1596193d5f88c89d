package metal

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"
	"golang.org/x/sys/unix"
)

// The Metal backend calls the Objective-C runtime through purego: no cgo,
// so the module cross-compiles for darwin from any machine. Every message
// goes through objc_msgSend with purego.SyscallN (integer and pointer
// arguments only; the two 24-byte MTLSize structs of a dispatch are passed
// by reference, as AAPCS64 passes composites larger than 16 bytes). Objects
// that Metal returns autoreleased live in an autorelease pool pushed and
// popped on one locked OS thread.

// rt is the Objective-C runtime and the Metal entry points, loaded once.
var rt struct {
	once                    sync.Once
	err                     error
	msgSend                 uintptr
	poolPush, poolPop       uintptr
	createDevice            uintptr
	classNSString, classOpt uintptr
}

// sel holds the selectors the backend sends.
var sel struct {
	alloc, init, release, retain, initWithBytes, utf8, localizedDescription   objc.SEL
	name, newCommandQueue, newLibrary, newFunction, newPipeline               objc.SEL
	maxThreads, execWidth, newBuffer, newBufferNoCopy, newBufferCopy          objc.SEL
	contents, commandBuffer, computeEncoder, setPipeline, setBuffer, setBytes objc.SEL
	setTGMem, dispatch, endEncoding, addCompleted, commit, status, errorSel   objc.SEL
	setFastMath, maxBufferLength, workingSet, unifiedMemory, maxTGMem         objc.SEL
}

func loadRuntime() error {
	rt.once.Do(func() {
		lib, err := purego.Dlopen("/usr/lib/libobjc.A.dylib", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			rt.err = fmt.Errorf("metal: libobjc: %w", err)
			return
		}
		if _, err := purego.Dlopen("/System/Library/Frameworks/Foundation.framework/Foundation", purego.RTLD_NOW|purego.RTLD_GLOBAL); err != nil {
			rt.err = fmt.Errorf("metal: Foundation: %w", err)
			return
		}
		mtl, err := purego.Dlopen("/System/Library/Frameworks/Metal.framework/Metal", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			rt.err = fmt.Errorf("metal: Metal.framework: %w", err)
			return
		}
		for _, s := range []struct {
			lib  uintptr
			name string
			p    *uintptr
		}{
			{lib, "objc_msgSend", &rt.msgSend},
			{lib, "objc_autoreleasePoolPush", &rt.poolPush},
			{lib, "objc_autoreleasePoolPop", &rt.poolPop},
			{mtl, "MTLCreateSystemDefaultDevice", &rt.createDevice},
		} {
			if *s.p, err = purego.Dlsym(s.lib, s.name); err != nil {
				rt.err = fmt.Errorf("metal: %s: %w", s.name, err)
				return
			}
		}
		rt.classNSString = uintptr(objc.GetClass("NSString"))
		rt.classOpt = uintptr(objc.GetClass("MTLCompileOptions"))
		if rt.classNSString == 0 || rt.classOpt == 0 {
			rt.err = errors.New("metal: NSString or MTLCompileOptions class missing")
			return
		}
		for _, s := range []struct {
			p    *objc.SEL
			name string
		}{
			{&sel.alloc, "alloc"}, {&sel.init, "init"}, {&sel.release, "release"}, {&sel.retain, "retain"},
			{&sel.initWithBytes, "initWithBytes:length:encoding:"}, {&sel.utf8, "UTF8String"},
			{&sel.localizedDescription, "localizedDescription"}, {&sel.name, "name"},
			{&sel.newCommandQueue, "newCommandQueue"}, {&sel.newLibrary, "newLibraryWithSource:options:error:"},
			{&sel.newFunction, "newFunctionWithName:"}, {&sel.newPipeline, "newComputePipelineStateWithFunction:error:"},
			{&sel.maxThreads, "maxTotalThreadsPerThreadgroup"}, {&sel.execWidth, "threadExecutionWidth"},
			{&sel.newBuffer, "newBufferWithLength:options:"},
			{&sel.newBufferNoCopy, "newBufferWithBytesNoCopy:length:options:deallocator:"},
			{&sel.newBufferCopy, "newBufferWithBytes:length:options:"}, {&sel.contents, "contents"},
			{&sel.commandBuffer, "commandBufferWithUnretainedReferences"}, {&sel.computeEncoder, "computeCommandEncoder"},
			{&sel.setPipeline, "setComputePipelineState:"}, {&sel.setBuffer, "setBuffer:offset:atIndex:"},
			{&sel.setBytes, "setBytes:length:atIndex:"}, {&sel.setTGMem, "setThreadgroupMemoryLength:atIndex:"},
			{&sel.dispatch, "dispatchThreadgroups:threadsPerThreadgroup:"}, {&sel.endEncoding, "endEncoding"},
			{&sel.addCompleted, "addCompletedHandler:"}, {&sel.commit, "commit"}, {&sel.status, "status"},
			{&sel.errorSel, "error"}, {&sel.setFastMath, "setFastMathEnabled:"},
			{&sel.maxBufferLength, "maxBufferLength"}, {&sel.workingSet, "recommendedMaxWorkingSetSize"},
			{&sel.unifiedMemory, "hasUnifiedMemory"}, {&sel.maxTGMem, "maxThreadgroupMemoryLength"},
		} {
			*s.p = objc.RegisterName(s.name)
		}
	})
	return rt.err
}

// send sends a message with integer and pointer arguments. Pointers
// converted to uintptr in its argument list stay on the heap and alive for
// the call (go:uintptrescapes, as for purego.SyscallN).
//
//go:uintptrescapes
func send(id uintptr, s objc.SEL, args ...uintptr) uintptr {
	a := make([]uintptr, 0, 2+len(args))
	a = append(a, id, uintptr(s))
	r, _, _ := purego.SyscallN(rt.msgSend, append(a, args...)...)
	return r
}

// withPool runs f on a locked OS thread inside an autorelease pool.
func withPool(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pool, _, _ := purego.SyscallN(rt.poolPush)
	defer purego.SyscallN(rt.poolPop, pool)
	f()
}

// nsString returns a new (+1) NSString holding s.
func nsString(s string) uintptr {
	b := []byte(s)
	if len(b) == 0 {
		b = []byte{0}
	}
	str := send(send(rt.classNSString, sel.alloc), sel.initWithBytes, uintptr(unsafe.Pointer(&b[0])), uintptr(len(s)), 4 /* NSUTF8StringEncoding */)
	runtime.KeepAlive(b)
	return str
}

// goString copies an NSString.
func goString(str uintptr) string {
	if str == 0 {
		return ""
	}
	p := send(str, sel.utf8)
	if p == 0 {
		return ""
	}
	c := ptr(p)
	var n int
	for *(*byte)(unsafe.Add(c, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(c), n))
}

// ptr converts an address that Objective-C returned (memory Go does not
// manage) to a pointer.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// errorText describes an NSError (autoreleased; call inside withPool).
func errorText(nserr uintptr) string {
	if nserr == 0 {
		return "unknown error"
	}
	return goString(send(nserr, sel.localizedDescription))
}

// device is the Metal Backend.
type device struct {
	id, queue, library uintptr
	pipelines          map[string]uintptr
	name               string
	page               int
	maxBuffer, working int64
}

// OpenDevice opens the system's default Metal device, compiles Source
// (fast math off: IEEE 754 products) and creates a pipeline for every
// kernel. It does not self-test; Open does.
func OpenDevice() (Backend, error) {
	if err := loadRuntime(); err != nil {
		return nil, err
	}
	d := &device{pipelines: map[string]uintptr{}, page: unix.Getpagesize()}
	var err error
	withPool(func() { err = d.open() })
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

var kernelDecl = regexp.MustCompile(`(?m)^kernel void (\w+)\(`)

func (d *device) open() error {
	r, _, _ := purego.SyscallN(rt.createDevice)
	if r == 0 {
		return fmt.Errorf("%w: no Metal device (MTLCreateSystemDefaultDevice returned nil)", ErrUnavailable)
	}
	d.id = r
	d.name = goString(send(d.id, sel.name))
	if send(d.id, sel.unifiedMemory)&0xff == 0 {
		return fmt.Errorf("metal: %s has no unified memory: the kernels map the CPU's weights", d.name)
	}
	d.maxBuffer = int64(send(d.id, sel.maxBufferLength))
	d.working = int64(send(d.id, sel.workingSet))
	if tg := send(d.id, sel.maxTGMem); tg < maxTGBytes {
		return fmt.Errorf("metal: %s offers %d bytes of threadgroup memory, the kernels use %d", d.name, tg, maxTGBytes)
	}
	if d.queue = send(d.id, sel.newCommandQueue); d.queue == 0 {
		return fmt.Errorf("metal: %s: no command queue", d.name)
	}
	opts := send(send(rt.classOpt, sel.alloc), sel.init)
	send(opts, sel.setFastMath, 0)
	src := nsString(Source())
	var nserr uintptr
	d.library = send(d.id, sel.newLibrary, src, opts, uintptr(unsafe.Pointer(&nserr)))
	send(src, sel.release)
	send(opts, sel.release)
	if d.library == 0 {
		return fmt.Errorf("metal: compiling the kernels on %s: %s", d.name, errorText(nserr))
	}
	for _, m := range kernelDecl.FindAllStringSubmatch(Source(), -1) {
		name := m[1]
		ns := nsString(name)
		fn := send(d.library, sel.newFunction, ns)
		send(ns, sel.release)
		if fn == 0 {
			return fmt.Errorf("metal: kernel %s missing from the compiled library", name)
		}
		nserr = 0
		pso := send(d.id, sel.newPipeline, fn, uintptr(unsafe.Pointer(&nserr)))
		send(fn, sel.release)
		if pso == 0 {
			return fmt.Errorf("metal: pipeline %s: %s", name, errorText(nserr))
		}
		d.pipelines[name] = pso
		if w := send(pso, sel.execWidth); w != simdWidth {
			return fmt.Errorf("metal: %s runs %s in SIMD groups of %d threads, the kernels need %d", d.name, name, w, simdWidth)
		}
		if mt, need := send(pso, sel.maxThreads), uintptr(threadsOf(name)); mt < need {
			return fmt.Errorf("metal: %s runs at most %d threads per threadgroup of %s, the kernel needs %d", d.name, mt, name, need)
		}
	}
	return nil
}

func (d *device) Name() string           { return d.name }
func (d *device) MaxBufferBytes() int64  { return d.maxBuffer }
func (d *device) WorkingSetBytes() int64 { return d.working }

// Close releases the pipelines, library, queue and device.
func (d *device) Close() error {
	withPool(func() {
		for _, p := range d.pipelines {
			send(p, sel.release)
		}
		d.pipelines = nil
		for _, id := range []*uintptr{&d.library, &d.queue, &d.id} {
			if *id != 0 {
				send(*id, sel.release)
				*id = 0
			}
		}
	})
	return nil
}

// buffer is an MTLBuffer. off is where the caller's bytes start in a
// no-copy buffer that covers whole pages.
type buffer struct {
	id     uintptr
	off    int
	b      []byte
	copied bool
}

func (b *buffer) Bytes() []byte { return b.b }
func (b *buffer) Copied() bool  { return b.copied }
func (b *buffer) Release() {
	if b.id != 0 {
		send(b.id, sel.release) // +1 from new*: no pool needed
		b.id, b.b = 0, nil
	}
}

// NewBuffer implements Backend: MTLStorageModeShared (options 0).
func (d *device) NewBuffer(n int) (Buffer, error) {
	id := send(d.id, sel.newBuffer, uintptr(max(n, 1)), 0)
	if id == 0 {
		return nil, fmt.Errorf("metal: no buffer of %d bytes", n)
	}
	p := send(id, sel.contents)
	return &buffer{id: id, b: unsafe.Slice((*byte)(ptr(p)), n), copied: true}, nil
}

// WrapBuffer implements Backend: newBufferWithBytesNoCopy over the whole
// pages holding b (the GPU reads the CPU's bytes in place), or a copy
// where Metal refuses the range.
func (d *device) WrapBuffer(b []byte) (Buffer, error) {
	if len(b) == 0 {
		return d.NewBuffer(0)
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	page := uintptr(d.page)
	base := p &^ (page - 1)
	end := (p + uintptr(len(b)) + page - 1) &^ (page - 1)
	if id := send(d.id, sel.newBufferNoCopy, base, end-base, 0, 0); id != 0 {
		return &buffer{id: id, off: int(p - base), b: b}, nil
	}
	id := send(d.id, sel.newBufferCopy, p, uintptr(len(b)), 0)
	runtime.KeepAlive(b)
	if id == 0 {
		return nil, fmt.Errorf("metal: no buffer of %d bytes", len(b))
	}
	q := send(id, sel.contents)
	return &buffer{id: id, b: unsafe.Slice((*byte)(ptr(q)), len(b)), copied: true}, nil
}

// mtlSize is MTLSize.
type mtlSize struct{ w, h, d uint64 }

// pending is a committed command buffer.
type pending struct {
	cb   uintptr
	done chan struct{}
}

// Submit implements Backend: one compute encoder, the dispatches in order,
// a completion handler that wakes Wait.
func (d *device) Submit(ds []Dispatch) (Pending, error) {
	p := &pending{done: make(chan struct{})}
	var err error
	withPool(func() { err = d.encode(ds, p) })
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (d *device) encode(ds []Dispatch, p *pending) error {
	cb := send(d.queue, sel.commandBuffer)
	if cb == 0 {
		return errors.New("metal: no command buffer")
	}
	enc := send(cb, sel.computeEncoder)
	if enc == 0 {
		return errors.New("metal: no compute encoder")
	}
	for _, x := range ds {
		pso, ok := d.pipelines[x.Kernel]
		if !ok {
			send(enc, sel.endEncoding)
			return fmt.Errorf("metal: no kernel %q", x.Kernel)
		}
		send(enc, sel.setPipeline, pso)
		for _, b := range x.Buffers {
			mb, ok := b.Buf.(*buffer)
			if !ok || mb.id == 0 {
				send(enc, sel.endEncoding)
				return fmt.Errorf("metal: %s: buffer %d is not a live Metal buffer", x.Kernel, b.Index)
			}
			send(enc, sel.setBuffer, mb.id, uintptr(mb.off+b.Offset), uintptr(b.Index))
		}
		for _, b := range x.Bytes {
			send(enc, sel.setBytes, uintptr(unsafe.Pointer(unsafe.SliceData(b.Data))), uintptr(len(b.Data)), uintptr(b.Index))
			runtime.KeepAlive(b.Data)
		}
		for i, n := range x.Threadgroup {
			send(enc, sel.setTGMem, uintptr((n+15)&^15), uintptr(i))
		}
		grid := &mtlSize{uint64(x.Grid[0]), uint64(x.Grid[1]), uint64(x.Grid[2])}
		group := &mtlSize{uint64(x.Group[0]), uint64(x.Group[1]), uint64(x.Group[2])}
		send(enc, sel.dispatch, uintptr(unsafe.Pointer(grid)), uintptr(unsafe.Pointer(group)))
		runtime.KeepAlive(grid)
		runtime.KeepAlive(group)
	}
	send(enc, sel.endEncoding)
	send(cb, sel.retain) // until Wait: the pool releases its autoreleased reference
	p.cb = cb
	done := p.done
	blk := objc.NewBlock(func(_ objc.Block, _ objc.ID) { close(done) })
	send(cb, sel.addCompleted, uintptr(blk))
	blk.Release() // addCompletedHandler: copied it
	send(cb, sel.commit)
	return nil
}

// Wait implements Pending: it blocks until the completion handler runs.
// Should the handler not run (it is called on a Metal thread through a
// purego callback), Wait also polls the command buffer's status every
// pollEvery, and gives up after waitLimit.
func (p *pending) Wait() error {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.Now().Add(waitLimit)
	var err error
wait:
	for {
		select {
		case <-p.done:
			break wait
		case <-tick.C:
			if send(p.cb, sel.status) >= 4 { // completed or error
				break wait
			}
			if time.Now().After(deadline) {
				err = fmt.Errorf("metal: command buffer not complete after %v", waitLimit)
				break wait
			}
		}
	}
	withPool(func() {
		if err == nil {
			if st := send(p.cb, sel.status); st != 4 { // MTLCommandBufferStatusCompleted
				err = fmt.Errorf("metal: command buffer status %d: %s", st, errorText(send(p.cb, sel.errorSel)))
			}
		}
		send(p.cb, sel.release)
	})
	return err
}

// Wait's fallbacks: a product takes milliseconds.
const (
	pollEvery = 250 * time.Millisecond
	waitLimit = 2 * time.Minute
)
