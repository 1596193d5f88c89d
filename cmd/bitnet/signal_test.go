package main

import (
	"bytes"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSecondInterruptExits: the first signal cancels, the second exits at
// once with status 130.
func TestSecondInterruptExits(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	cancelled := make(chan struct{})
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		onSignals(sigs, func() { close(cancelled) }, func(code int) { exited <- code }, &stderr)
	}()
	sigs <- os.Interrupt
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("first interrupt: not cancelled")
	}
	select {
	case code := <-exited:
		t.Fatalf("first interrupt: exited with %d", code)
	default:
	}
	sigs <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != 130 || !bytes.Contains(stderr.Bytes(), []byte("interrupted again")) {
			t.Errorf("second signal: exit %d, stderr %q; want 130 and a message", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second signal: no exit")
	}
	<-done
}
