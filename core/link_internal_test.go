package core

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// chanTransport is a minimal in-memory transport for the link tests in this
// file: frames go through a buffered channel; closing either end ends both.
type chanTransport struct {
	in, out chan []byte
	done    chan struct{}
	once    *sync.Once
}

func chanPair() (a, b *chanTransport) {
	ab, ba := make(chan []byte, 64), make(chan []byte, 64)
	done, once := make(chan struct{}), &sync.Once{}
	return &chanTransport{in: ba, out: ab, done: done, once: once}, &chanTransport{in: ab, out: ba, done: done, once: once}
}

var errTransportClosed = errors.New("transport closed")

func (t *chanTransport) Read(ctx context.Context) ([]byte, error) {
	select {
	case f := <-t.in:
		return f, nil
	case <-t.done:
		return nil, errTransportClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *chanTransport) Write(ctx context.Context, frame []byte) error {
	select {
	case t.out <- append([]byte(nil), frame...):
		return nil
	case <-t.done:
		return errTransportClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *chanTransport) Close(wire.CloseCode, string) error { return t.CloseNow() }
func (t *chanTransport) CloseNow() error                    { t.once.Do(func() { close(t.done) }); return nil }

// testLink connects down (as downstream) to up (as upstream) and returns a
// function that breaks the link and waits for both ends to finish.
func testLink(t *testing.T, up, down *Exchange) (breakLink func()) {
	t.Helper()
	a, b := chanPair()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); up.runLink(ctx, a, roleDownstream, linkPeer{Name: "down"}) }()
	go func() { defer wg.Done(); down.runLink(ctx, b, roleUpstream, linkPeer{Name: "up"}) }()
	var once sync.Once
	stop := func() { once.Do(func() { a.CloseNow(); cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func newTestExchange(t *testing.T, name string) *Exchange {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = name
	ex, err := NewExchange(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func nextState(t *testing.T, c *ObjectObserveContract) ObjectState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for a state: %v", err)
	}
	return st
}

// nextStateWhere waits for a state satisfying f (states may be skipped:
// latest wins).
func nextStateWhere(t *testing.T, c *ObjectObserveContract, f func(ObjectState) bool) ObjectState {
	t.Helper()
	for {
		if st := nextState(t, c); f(st) {
			return st
		}
	}
}

func nextSink(t *testing.T, c interface {
	Next(context.Context) (*ObjectStateSink, error)
}) *ObjectStateSink {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for an assignment: %v", err)
	}
	return s
}

func TestLinkObserveThroughRouter(t *testing.T) {
	// exposer leaf → router ← observer leaf: the router is a plain exchange.
	router := newTestExchange(t, "router")
	exposer := newTestExchange(t, "exposer")
	observer := newTestExchange(t, "observer")
	testLink(t, router, exposer)
	testLink(t, router, observer)

	d := MustObjectDescriptor(map[string]any{"sensor": 1}, MustTagDescriptor("sensors"))
	exp, err := exposer.ExposeObject(d, 1)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := observer.ObserveObject(d)
	if err != nil {
		t.Fatal(err)
	}
	// Lazy exposing across the network: observed in another process, so
	// the exposer gets an assignment.
	sink := nextSink(t, exp)
	if err := sink.Send(ObjectState{Version: Version{1}, Format: []string{"raw"}, Data: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	st := nextState(t, obs)
	if string(st.Data) != "hello" || !st.Synchronized || st.Version.Compare(Version{1}) != 0 || st.FormatTop() != "raw" {
		t.Fatalf("observer got %+v", st)
	}
	// The assignment ends when the remote observer leaves.
	obs.Close()
	select {
	case <-sink.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("assignment not released after the remote observer left")
	}
}

func TestLinkTagObserveAndFailover(t *testing.T) {
	router := newTestExchange(t, "router")
	a := newTestExchange(t, "a")
	b := newTestExchange(t, "b")
	watcher := newTestExchange(t, "watcher")
	testLink(t, router, a)
	breakB := testLink(t, router, b)
	testLink(t, router, watcher)

	rooms := MustTagDescriptor("rooms")
	d := MustObjectDescriptor("kitchen", rooms)
	ea, _ := a.ExposeTag(rooms, 1)
	eb, _ := b.ExposeTag(rooms, 1)
	tags, _ := watcher.ObserveTag(rooms)
	obs, _ := watcher.ObserveObject(d)

	// Exactly one of the two processes is elected.
	var first *ObjectStateSink
	var second *TagExposeContract
	select {
	case <-ea.Ready():
		first, second = nextSink(t, ea), eb
	case <-eb.Ready():
		first, second = nextSink(t, eb), ea
	case <-time.After(10 * time.Second):
		t.Fatal("nobody elected")
	}
	first.Send(ObjectState{Data: []byte("first")})
	if st := nextStateWhere(t, obs, func(s ObjectState) bool { return string(s.Data) == "first" }); !st.Synchronized {
		t.Fatal("not synchronized")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := tags.Next(ctx)
	if err != nil || !ev.Descriptor.Equal(d) {
		t.Fatalf("tag observer: %+v %v", ev, err)
	}
	// The elected exposer's process goes away: failover to the other one.
	if second == eb {
		// a was elected; break a's link instead of b's.
		ea.Close()
	} else {
		breakB()
	}
	st := nextStateWhere(t, obs, func(s ObjectState) bool { return !s.Synchronized })
	if string(st.Data) != "first" {
		t.Fatalf("observer lost the last state: %+v", st)
	}
	s2 := nextSink(t, second)
	if cur, ok := s2.Current(); ok && string(cur.Data) != "first" {
		t.Fatalf("successor sees %q", cur.Data)
	}
	s2.Send(ObjectState{Data: []byte("second")})
	st = nextStateWhere(t, obs, func(s ObjectState) bool { return string(s.Data) == "second" })
	if !st.Synchronized {
		t.Fatal("not synchronized after failover")
	}
}

func TestLinkBreakDesynchronizesObservers(t *testing.T) {
	up := newTestExchange(t, "up")
	down := newTestExchange(t, "down")
	breakLink := testLink(t, up, down)
	d := MustObjectDescriptor("x")
	exp, _ := up.ExposeObject(d, 1)
	obs, _ := down.ObserveObject(d)
	// The exposer answers every assignment with its (unchanged) state.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	assignments := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for s := range exp.Sinks(ctx) {
			assignments++
			s.Send(ObjectState{Version: Version{7}, Data: []byte("x")})
		}
	}()
	defer wg.Wait()
	defer cancel()
	nextStateWhere(t, obs, func(s ObjectState) bool { return s.Synchronized })
	breakLink()
	st := nextStateWhere(t, obs, func(s ObjectState) bool { return !s.Synchronized })
	if st.Version.Compare(Version{7}) != 0 || string(st.Data) != "x" {
		t.Fatalf("after the link broke: %+v", st)
	}
	// The link comes back: the observer converges with no client action.
	testLink(t, up, down)
	st = nextStateWhere(t, obs, func(s ObjectState) bool { return s.Synchronized })
	if st.Version.Compare(Version{7}) != 0 {
		t.Fatalf("after reconnect: %+v", st)
	}
}

func TestLinkLeafExposerAndObserverStayLocal(t *testing.T) {
	// Within one leaf, with the upstream governing, the election still goes
	// through the upstream and ends at the local exposer.
	up := newTestExchange(t, "up")
	leaf := newTestExchange(t, "leaf")
	testLink(t, up, leaf)
	d := MustObjectDescriptor("local")
	exp, _ := leaf.ExposeObject(d, 1)
	obs, _ := leaf.ObserveObject(d)
	sink := nextSink(t, exp)
	sink.Send(ObjectState{Data: []byte("v")})
	if st := nextStateWhere(t, obs, func(s ObjectState) bool { return s.Synchronized }); string(st.Data) != "v" {
		t.Fatalf("got %q", st.Data)
	}
}
