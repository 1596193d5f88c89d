package jobs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"
)

type rec struct {
	id, key string
	seq     uint64
	done    bool
}

func (r *rec) JobID() string  { return r.id }
func (r *rec) JobKey() string { return r.key }
func (r *rec) JobSeq() uint64 { return r.seq }
func (r *rec) Terminal() bool { return r.done }

var errInvalid = errors.New("invalid argument")

// fill adds n jobs j1..jn, the odd ones finished.
func fill(t *Table[*rec], n int) []*rec {
	var out []*rec
	for i := 1; i <= n; i++ {
		r := &rec{id: fmt.Sprintf("j%d", i), key: fmt.Sprintf("k%d", i), seq: t.NextSeq(), done: i%2 == 1}
		t.Add(r)
		out = append(out, r)
	}
	return out
}

func ids(rs []*rec) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.id)
	}
	return out
}

func TestTableQueue(t *testing.T) {
	tb := NewTable[*rec](errInvalid)
	rs := fill(tb, 3)
	for _, r := range rs {
		tb.Enqueue(r)
	}
	tb.Unqueue(rs[1])
	if got := tb.Queued(); got != 2 {
		t.Fatalf("got %d queued, want 2", got)
	}
	var order []string
	for {
		r, ok := tb.Dequeue()
		if !ok {
			break
		}
		order = append(order, r.id)
	}
	if !slices.Equal(order, []string{"j1", "j3"}) {
		t.Errorf("got dequeue order %v, want [j1 j3]", order)
	}
	// Take wakes another worker while jobs are left.
	w := NewWorkers()
	tb.Enqueue(rs[0])
	tb.Enqueue(rs[1])
	if r, ok := tb.Take(w); !ok || r != rs[0] || len(w.wake) != 1 {
		t.Errorf("Take with one left: got %v %v, %d wake-ups; want j1 and one", r, ok, len(w.wake))
	}
	<-w.wake
	if r, ok := tb.Take(w); !ok || r != rs[1] || len(w.wake) != 0 {
		t.Errorf("Take of the last: got %v %v, %d wake-ups; want j2 and none", r, ok, len(w.wake))
	}
	tb.Enqueue(rs[0])
	tb.ClearQueue()
	if _, ok := tb.Dequeue(); ok {
		t.Error("dequeue after ClearQueue: got a job, want none")
	}
	if r, ok := tb.Get("j2"); !ok || r != rs[1] {
		t.Errorf("Get(j2): got %v, %v", r, ok)
	}
	if r, ok := tb.ByKey("k3"); !ok || r != rs[2] {
		t.Errorf("ByKey(k3): got %v, %v", r, ok)
	}
	// A job taken back with a high sequence number keeps NextSeq above it.
	tb.Add(&rec{id: "old", seq: 40})
	if got := tb.NextSeq(); got != 41 {
		t.Errorf("NextSeq after Add(seq 40): got %d, want 41", got)
	}
}

func TestTablePage(t *testing.T) {
	tb := NewTable[*rec](errInvalid)
	fill(tb, 5)
	all := func(*rec) bool { return true }
	var got [][]string
	token := ""
	for {
		page, next, err := tb.Page(2, token, all)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(page))
		if next == "" {
			break
		}
		token = next
	}
	if want := [][]string{{"j5", "j4"}, {"j3", "j2"}, {"j1"}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pages: got %v, want %v", got, want)
	}
	page, next, err := tb.Page(0, "", func(r *rec) bool { return !r.done })
	if err != nil || next != "" || !slices.Equal(ids(page), []string{"j4", "j2"}) {
		t.Errorf("filtered: got %v %q %v, want [j4 j2]", ids(page), next, err)
	}
	for _, tt := range []struct {
		size  int
		token string
	}{{-1, ""}, {1, "!"}, {1, "0"}} {
		if _, _, err := tb.Page(tt.size, tt.token, all); !errors.Is(err, errInvalid) {
			t.Errorf("Page(%d, %q): got %v, want an error wrapping errInvalid", tt.size, tt.token, err)
		}
	}
}

func TestTableEvict(t *testing.T) {
	tb := NewTable[*rec](errInvalid)
	rs := fill(tb, 5) // j1, j3, j5 finished
	var forgot []string
	tb.Evict(3, func(r *rec) { forgot = append(forgot, r.id) })
	if want := []string{"j1", "j3"}; !slices.Equal(forgot, want) {
		t.Errorf("evicted %v, want %v (the oldest finished)", forgot, want)
	}
	if got := ids(tb.All()); !slices.Equal(got, []string{"j2", "j4", "j5"}) {
		t.Errorf("left %v, want [j2 j4 j5]", got)
	}
	if _, ok := tb.Get("j1"); ok {
		t.Error("Get(j1) after eviction: found, want gone")
	}
	if _, ok := tb.ByKey("k1"); ok {
		t.Error("ByKey(k1) after eviction: found, want gone")
	}
	rs[1].done, rs[3].done = true, true
	tb.Evict(1, nil) // a nil forget is fine
	if got := ids(tb.All()); !slices.Equal(got, []string{"j5"}) {
		t.Errorf("left %v, want [j5]", got)
	}
}

func TestWorkers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	queue := []int{}
	var ran []int
	w := NewWorkers()
	w.Start(ctx, 2, func() (func(), bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(queue) == 0 {
			return nil, false
		}
		n := queue[0]
		queue = queue[1:]
		if len(queue) > 0 {
			w.Signal()
		}
		return func() {
			mu.Lock()
			ran = append(ran, n)
			mu.Unlock()
		}, true
	})
	mu.Lock()
	queue = append(queue, 1, 2, 3)
	mu.Unlock()
	w.Signal()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(ran)
		mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d jobs run, want 3", n)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	w.Wait() // returns: the workers stopped with the context
	slices.Sort(ran)
	if !slices.Equal(ran, []int{1, 2, 3}) {
		t.Errorf("ran %v, want [1 2 3]", ran)
	}
}

func TestNewID(t *testing.T) {
	a, err := NewID("qj-")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewID("qj-")
	if !regexp.MustCompile(`^qj-[0-9a-f]{16}$`).MatchString(a) || a == b {
		t.Errorf("got IDs %q and %q, want two different qj- plus 16 hex digits", a, b)
	}
}

func TestAppendLog(t *testing.T) {
	var log []LogEntry
	t0 := time.Unix(1700000000, 0)
	for i := range MaxLogEntries + 5 {
		log = AppendLog(log, t0.Add(time.Duration(i)*time.Second), "line %d", i)
	}
	if len(log) != MaxLogEntries {
		t.Fatalf("got %d lines, want %d", len(log), MaxLogEntries)
	}
	if got, want := log[0].Message, "line 5"; got != want {
		t.Errorf("got oldest %q, want %q", got, want)
	}
	if got, want := log[len(log)-1].Message, fmt.Sprintf("line %d", MaxLogEntries+4); got != want {
		t.Errorf("got newest %q, want %q", got, want)
	}
	pb := LogProto(log[:2])
	if len(pb) != 2 || pb[1].GetMessage() != "line 6" || !pb[1].GetTime().AsTime().Equal(t0.Add(6*time.Second)) {
		t.Errorf("got %v, want lines 5 and 6 with their times", pb)
	}
}
