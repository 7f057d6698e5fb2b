package core

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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
	closed  *closeRecord
}

// closeRecord keeps the first close code and reason of a transport pair.
type closeRecord struct {
	code   wire.CloseCode
	reason string
}

func chanPair() (a, b *chanTransport) {
	ab, ba := make(chan []byte, 64), make(chan []byte, 64)
	done, once, rec := make(chan struct{}), &sync.Once{}, &closeRecord{}
	return &chanTransport{in: ba, out: ab, done: done, once: once, closed: rec}, &chanTransport{in: ab, out: ba, done: done, once: once, closed: rec}
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

func (t *chanTransport) Close(code wire.CloseCode, reason string) error {
	t.once.Do(func() { t.closed.code, t.closed.reason = code, reason; close(t.done) })
	return nil
}

func (t *chanTransport) CloseNow() error { return t.Close(0, "") }

// testLink connects down (as downstream) to up (as upstream) and returns a
// function that breaks the link and waits for both ends to finish.
func testLink(t testing.TB, up, down *Exchange) (breakLink func()) {
	return testLinkFeatures(t, up, down, 0)
}

// linker connects down (as downstream) to up and returns a function that
// breaks the link.
type linker func(t testing.TB, up, down *Exchange) (breakLink func())

// linkScenarios run over every transport kind (see transportKinds).
var linkScenarios = []struct {
	name string
	run  func(t *testing.T, link linker)
}{
	{"ObserveThroughRouter", linkObserveThroughRouter},
	{"TagObserveAndFailover", linkTagObserveAndFailover},
	{"BreakDesynchronizesObservers", linkBreakDesynchronizesObservers},
	{"LeafElectionGoesThroughUpstream", linkLeafElectionGoesThroughUpstream},
	{"ThreeStackedRouters", linkThreeStackedRouters},
	{"TwoLeavesDirectly", linkTwoLeavesDirectly},
	{"CapacityWeightedAcrossExchanges", linkCapacityWeightedAcrossExchanges},
	{"InterestBasedRouting", linkInterestBasedRouting},
	{"StatusFollowsUpstreamExposer", linkStatusFollowsUpstreamExposer},
}

// TestLinks runs the link scenarios over the in-memory pipe and over real
// loopback WebSockets, with every payload encoding enabled.
func TestLinks(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			for _, sc := range linkScenarios {
				t.Run(sc.name, func(t *testing.T) {
					sc.run(t, func(tb testing.TB, up, down *Exchange) func() {
						a, b := k.pair(t, linkTiming{pingInterval: time.Second, pingTimeout: 5 * time.Second})
						return runLinkPair(tb, a, b, up, down, wire.AllFeatures)
					})
				})
			}
		})
	}
}

// testLinkFeatures is testLink with payload encodings both sides accept.
func testLinkFeatures(t testing.TB, up, down *Exchange, features wire.Features) (breakLink func()) {
	t.Helper()
	a, b := chanPair()
	return runLinkPair(t, a, b, up, down, features)
}

// runLinkPair runs a link over the transports a (up's end) and b (down's).
func runLinkPair(t testing.TB, a, b transport, up, down *Exchange, features wire.Features) (breakLink func()) {
	return runLinkPairAs(t, a, b, up, down, features, nil)
}

// runLinkPairAs is runLinkPair where up gives the link permissions perms.
// Both ends speak wire.ProtocolMinor, as after a real handshake.
func runLinkPairAs(t testing.TB, a, b transport, up, down *Exchange, features wire.Features, perms *Permissions) (breakLink func()) {
	return runLinkPairMinor(t, a, b, up, down, features, perms, wire.ProtocolMinor)
}

// runLinkPairMinor is runLinkPairAs with the negotiated minor version.
func runLinkPairMinor(t testing.TB, a, b transport, up, down *Exchange, features wire.Features, perms *Permissions, minor uint32) (breakLink func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		up.runLink(ctx, a, roleDownstream, linkPeer{Name: down.cfg.Name, Features: features, Perms: perms, Minor: minor})
	}()
	go func() {
		defer wg.Done()
		down.runLink(ctx, b, roleUpstream, linkPeer{Name: up.cfg.Name, Features: features, Minor: minor})
	}()
	var once sync.Once
	stop := func() { once.Do(func() { a.CloseNow(); cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func newTestExchange(t testing.TB, name string) *Exchange {
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

func nextState(t testing.TB, c *ObjectObserveContract) ObjectState {
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
func nextStateWhere(t testing.TB, c *ObjectObserveContract, f func(ObjectState) bool) ObjectState {
	t.Helper()
	for {
		if st := nextState(t, c); f(st) {
			return st
		}
	}
}

func nextSink(t testing.TB, c interface {
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

func linkObserveThroughRouter(t *testing.T, testLink linker) {
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

func linkTagObserveAndFailover(t *testing.T, testLink linker) {
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
	// A version far ahead of any clock: the successor must still go above
	// it, which it can only do if it learns the last state (SPEC §2.2).
	first.Send(ObjectState{Version: Version{1 << 60}, Data: []byte("first")})
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
	if cur, ok := s2.Current(); !ok || string(cur.Data) != "first" || cur.Version.Compare(Version{1 << 60}) != 0 {
		t.Fatalf("successor in another exchange cannot read the last state: %+v %v", cur, ok)
	}
	s2.Send(ObjectState{Data: []byte("second")})
	st = nextStateWhere(t, obs, func(s ObjectState) bool { return string(s.Data) == "second" })
	if !st.Synchronized {
		t.Fatal("not synchronized after failover")
	}
}

func linkBreakDesynchronizesObservers(t *testing.T, testLink linker) {
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

func linkLeafElectionGoesThroughUpstream(t *testing.T, testLink linker) {
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

func linkThreeStackedRouters(t *testing.T, testLink linker) {
	// leafA → r3 → r2 → r1 ← leafB: states cross three routers each way.
	r1 := newTestExchange(t, "r1")
	r2 := newTestExchange(t, "r2")
	r3 := newTestExchange(t, "r3")
	testLink(t, r1, r2)
	testLink(t, r2, r3)
	exposer := newTestExchange(t, "exposer")
	observer := newTestExchange(t, "observer")
	testLink(t, r3, exposer)
	testLink(t, r1, observer)
	d := MustObjectDescriptor("deep", MustTagDescriptor("t"))
	exp, _ := exposer.ExposeTag(MustTagDescriptor("t"), 1)
	obs, _ := observer.ObserveObject(d)
	sink := nextSink(t, exp)
	sink.Send(ObjectState{Data: []byte("through three routers")})
	if st := nextStateWhere(t, obs, func(s ObjectState) bool { return s.Synchronized }); string(st.Data) != "through three routers" {
		t.Fatalf("got %q", st.Data)
	}
	sink.Desynchronize()
	nextStateWhere(t, obs, func(s ObjectState) bool { return !s.Synchronized })
}

func linkTwoLeavesDirectly(t *testing.T, testLink linker) {
	// No router: the observer's process connects straight to the exposer's.
	exposer := newTestExchange(t, "exposer")
	observer := newTestExchange(t, "observer")
	testLink(t, exposer, observer)
	d := MustObjectDescriptor(42)
	exp, _ := exposer.ExposeObject(d, 1)
	obs, _ := observer.ObserveObject(d)
	nextSink(t, exp).Send(ObjectState{Data: []byte("direct")})
	if st := nextState(t, obs); string(st.Data) != "direct" {
		t.Fatalf("got %q", st.Data)
	}
	// And the other way round: the upstream observes what the leaf exposes.
	d2 := MustObjectDescriptor(43)
	exp2, _ := observer.ExposeObject(d2, 1)
	obs2, _ := exposer.ObserveObject(d2)
	nextSink(t, exp2).Send(ObjectState{Data: []byte("upward")})
	if st := nextState(t, obs2); string(st.Data) != "upward" {
		t.Fatalf("got %q", st.Data)
	}
}

func linkCapacityWeightedAcrossExchanges(t *testing.T, testLink linker) {
	router := newTestExchange(t, "router")
	small := newTestExchange(t, "small")
	big := newTestExchange(t, "big")
	testLink(t, router, small)
	testLink(t, router, big)
	tg := MustTagDescriptor("w")
	es, _ := small.ExposeTag(tg, 1)
	eb, _ := big.ExposeTag(tg, 3)
	// Wait until the router knows both candidates before observing.
	waitFor(t, func() bool {
		s := router.Snapshot()
		return len(s.Tags) == 1 && s.Tags[0].Exposers == 2
	})
	const n = 200
	for i := range n {
		if _, err := router.ObserveObject(MustObjectDescriptor(i, tg)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return es.Load()+eb.Load() == n })
	if ls, lb := es.Load(), eb.Load(); ls < 45 || ls > 55 || lb < 145 || lb > 155 {
		t.Fatalf("loads %d/%d, want about 50/150", ls, lb)
	}
}

func linkInterestBasedRouting(t *testing.T, testLink linker) {
	router := newTestExchange(t, "router")
	exposer := newTestExchange(t, "exposer")
	observer := newTestExchange(t, "observer")
	idle := newTestExchange(t, "idle")
	testLink(t, router, exposer)
	testLink(t, router, observer)
	testLink(t, router, idle)
	d := MustObjectDescriptor("busy")
	exp, _ := exposer.ExposeObject(d, 1)
	obs, _ := observer.ObserveObject(d)
	// The idle leaf declares interest in something else entirely.
	other, _ := idle.ObserveObject(MustObjectDescriptor("unrelated"))
	defer other.Close()
	sink := nextSink(t, exp)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 100 {
		data := make([]byte, 1000) // incompressible, so bytes reflect states
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		sink.Send(ObjectState{Version: Version{int64(i + 1)}, Data: data})
	}
	nextStateWhere(t, obs, func(s ObjectState) bool { return s.Version.Compare(Version{100}) == 0 })
	in := idle.linkBytesIn()
	obsIn := observer.linkBytesIn()
	if obsIn < 1000 {
		t.Fatalf("observer received only %d bytes", obsIn)
	}
	if in > 200 {
		t.Fatalf("the idle leaf received %d bytes for an object it does not use", in)
	}
}

func linkStatusFollowsUpstreamExposer(t *testing.T, testLink linker) {
	// An observer two routers away reports waiting_for_exposer whenever no
	// exposer is elected anywhere, as it would next to the exposer, and
	// stale only while an elected exposer has not written a fresh state
	// (SPEC §4; ObjectUnexposed and ObjectExposed, protocol 1.1).
	r1 := newTestExchange(t, "r1")
	r2 := newTestExchange(t, "r2")
	leaf := newTestExchange(t, "leaf")
	testLink(t, r1, r2)
	testLink(t, r2, leaf)
	d := MustObjectDescriptor("status")
	obs, _ := leaf.ObserveObject(d)
	statusOf := func(c *ObjectObserveContract, want Status) {
		t.Helper()
		waitFor(t, func() bool { return c.Status() == want })
	}
	statusOf(obs, StatusWaitingForExposer)

	exp, _ := r1.ExposeObject(d, 1)
	nextSink(t, exp).Send(ObjectState{Version: Version{1}, Data: []byte("one")})
	nextStateWhere(t, obs, func(s ObjectState) bool { return s.Synchronized })
	statusOf(obs, StatusActive)

	// The exposer goes: the state stays, unsynchronized, and nobody can
	// expose the object.
	exp.Close()
	if st := nextStateWhere(t, obs, func(s ObjectState) bool { return !s.Synchronized }); string(st.Data) != "one" {
		t.Fatalf("after the exposer left: %+v", st)
	}
	statusOf(obs, StatusWaitingForExposer)
	if s := r1Status(t, r1, d); s != StatusWaitingForExposer {
		t.Fatalf("next to the exposer the status is %v", s)
	}

	// A leaf that starts observing now gets the held state, and the same
	// status.
	late := newTestExchange(t, "late")
	testLink(t, r2, late)
	obsLate, _ := late.ObserveObject(d)
	if st := nextState(t, obsLate); string(st.Data) != "one" || st.Synchronized {
		t.Fatalf("late observer got %+v", st)
	}
	statusOf(obsLate, StatusWaitingForExposer)

	// A new exposer is elected: stale until it writes, then active.
	exp2, _ := r1.ExposeObject(d, 1)
	sink2 := nextSink(t, exp2)
	statusOf(obs, StatusStale)
	statusOf(obsLate, StatusStale)
	sink2.Send(ObjectState{Version: Version{2}, Data: []byte("two")})
	for _, c := range []*ObjectObserveContract{obs, obsLate} {
		nextStateWhere(t, c, func(s ObjectState) bool { return s.Synchronized && string(s.Data) == "two" })
		statusOf(c, StatusActive)
	}
}

// r1Status is the status of a fresh observer of d at ex.
func r1Status(t *testing.T, ex *Exchange, d ObjectDescriptor) Status {
	t.Helper()
	c, err := ex.ObserveObject(d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Status()
}

// TestLinkStatusWithVersion10Peer: over a link that negotiated protocol
// 1.0 nothing tells the downstream that the upstream has no exposer, so
// its observers see the state go stale (what 1.0 peers could report), and
// the link keeps working.
func TestLinkStatusWithVersion10Peer(t *testing.T) {
	up := newTestExchange(t, "up")
	down := newTestExchange(t, "down")
	a, b := chanPair()
	runLinkPairMinor(t, a, b, up, down, 0, nil, 0)
	d := MustObjectDescriptor("old")
	exp, _ := up.ExposeObject(d, 1)
	obs, _ := down.ObserveObject(d)
	nextSink(t, exp).Send(ObjectState{Version: Version{1}, Data: []byte("x")})
	nextStateWhere(t, obs, func(s ObjectState) bool { return s.Synchronized })
	exp.Close()
	nextStateWhere(t, obs, func(s ObjectState) bool { return !s.Synchronized })
	// Anything up sent about d before the state of another object has
	// been handled by then (a link keeps the order of its messages).
	d2 := MustObjectDescriptor("barrier")
	exp2, _ := up.ExposeObject(d2, 1)
	obs2, _ := down.ObserveObject(d2)
	nextSink(t, exp2).Send(ObjectState{Version: Version{1}, Data: []byte("b")})
	nextState(t, obs2)
	if s := obs.Status(); s != StatusStale {
		t.Fatalf("status behind a 1.0 link: %v, want stale", s)
	}
}

// TestLinkExposerMessagesOnTheWire: a raw 1.1 downstream observing an
// object hears ObjectUnexposed after the unsynchronized state when the
// exposer goes, and ObjectExposed before the next exposer's state.
func TestLinkExposerMessagesOnTheWire(t *testing.T) {
	router := newTestExchange(t, "router")
	a, b := chanPair()
	done := make(chan error, 1)
	go func() {
		done <- router.runLink(context.Background(), a, roleDownstream, linkPeer{Name: "raw", Minor: wire.MinorExposer})
	}()
	t.Cleanup(func() { a.CloseNow(); <-done })
	d := MustObjectDescriptor("wire")
	exp, _ := router.ExposeObject(d, 1)
	b.out <- wire.Append(wire.Append(nil, &wire.DeclareObject{ID: 1, JSON: []byte(`"wire"`)}), &wire.ObjectObserve{Object: 1})
	nextSink(t, exp).Send(ObjectState{Version: Version{1}, Data: []byte("one")})
	var seen []string
	record := func(until func(wire.Message) bool) func(wire.Message) bool {
		return func(m wire.Message) bool {
			switch m := m.(type) {
			case *wire.ObjectLive, *wire.ObjectUnexposed, *wire.ObjectExposed:
				seen = append(seen, m.Type().String())
			case *wire.State:
				seen = append(seen, fmt.Sprintf("State %v %v", m.Version, m.Synchronized))
			case *wire.Sync:
				seen = append(seen, fmt.Sprintf("Sync %v %v", m.Version, m.Synchronized))
			}
			return until(m)
		}
	}
	is := func(typ wire.Type) func(wire.Message) bool {
		return func(m wire.Message) bool { return m.Type() == typ }
	}
	readUntil(t, b, record(is(wire.TypeState)))
	exp.Close()
	readUntil(t, b, record(is(wire.TypeObjectUnexposed)))
	exp2, _ := router.ExposeObject(d, 1)
	sink := nextSink(t, exp2)
	sink.Send(ObjectState{Version: Version{2}, Data: []byte("two")})
	readUntil(t, b, record(is(wire.TypeState)))
	want := []string{"ObjectLive", "State [1] true", "Sync [1] false", "ObjectUnexposed", "ObjectExposed", "State [2] true"}
	if !slices.Equal(seen, want) {
		t.Fatalf("messages:\n got %q\nwant %q", seen, want)
	}
}

// TestLinkExposerMessagesNeedVersion11: ObjectUnexposed from an upstream
// on a link that negotiated 1.0 is a protocol violation.
func TestLinkExposerMessagesNeedVersion11(t *testing.T) {
	leaf := newTestExchange(t, "leaf")
	a, b := chanPair()
	done := make(chan error, 1)
	go func() { done <- leaf.runLink(context.Background(), a, roleUpstream, linkPeer{Name: "old-router"}) }()
	b.out <- wire.Append(wire.Append(nil, &wire.DeclareObject{ID: 1, JSON: []byte(`"x"`)}), &wire.ObjectUnexposed{Object: 1})
	select {
	case err := <-done:
		if err == nil || a.closed.code != wire.CloseProtocolViolation {
			t.Fatalf("closed with %v (err %v), want a protocol violation", a.closed.code, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("link not closed")
	}
}

// waitFor polls cond until it holds, failing after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// linkBytesIn sums the bytes received over the exchange's links.
func (ex *Exchange) linkBytesIn() uint64 {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var n uint64
	for l := range ex.links {
		n += l.bytesIn.Load()
	}
	return n
}

func TestLinkBadInputClosesOnlyThatLink(t *testing.T) {
	declare := wire.Append(nil, &wire.DeclareObject{ID: 1, JSON: []byte(`"x"`)})
	state := wire.Append(nil, &wire.State{Object: 1, Version: []int64{1}, Data: []byte("abc")})
	cases := []struct {
		name  string
		frame []byte
		code  wire.CloseCode
	}{
		{"garbage", []byte{0xde, 0xad, 0xbe, 0xef, 0x01}, wire.CloseProtocolViolation},
		{"truncated", state[:len(state)-2], wire.CloseProtocolViolation},
		{"empty", []byte{}, wire.CloseProtocolViolation},
		{"oversized", make([]byte, wire.DefaultLimits().MaxFrame+1), wire.CloseLimitExceeded},
		{"wrong direction", wire.Append(slices.Clone(declare), &wire.Assign{Object: 1, Token: 1}), wire.CloseProtocolViolation},
		{"undeclared object", wire.Append(nil, &wire.ObjectObserve{Object: 9}), wire.CloseProtocolViolation},
		{"invalid descriptor", wire.Append(nil, &wire.DeclareObject{ID: 1, JSON: []byte(`{"a":1,"a":2}`)}), wire.CloseProtocolViolation},
		{"undeclared tag", wire.Append(nil, &wire.DeclareObject{ID: 1, JSON: []byte(`"x"`), Tags: []uint32{7}}), wire.CloseProtocolViolation},
	}
	router := newTestExchange(t, "router")
	exposer := newTestExchange(t, "exposer")
	observer := newTestExchange(t, "observer")
	testLink(t, router, exposer)
	testLink(t, router, observer)
	d := MustObjectDescriptor("survivor")
	exp, _ := exposer.ExposeObject(d, 1)
	obs, _ := observer.ObserveObject(d)
	sink := nextSink(t, exp)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := chanPair()
			done := make(chan error, 1)
			go func() { done <- router.runLink(context.Background(), a, roleDownstream, linkPeer{Name: "evil"}) }()
			b.out <- c.frame
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("link survived bad input")
				}
				if a.closed.code != c.code || a.closed.reason == "" {
					t.Fatalf("closed with %v %q (err %v), want %v with a reason", a.closed.code, a.closed.reason, err, c.code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("link not closed")
			}
			// The other links keep working.
			sink.Send(ObjectState{Version: Version{int64(i + 1)}, Data: []byte("still here")})
			nextStateWhere(t, obs, func(s ObjectState) bool { return s.Version.Compare(Version{int64(i + 1)}) == 0 })
		})
	}
}

func TestLinkDescriptorLimit(t *testing.T) {
	router := newTestExchange(t, "router")
	a, b := chanPair()
	done := make(chan error, 1)
	local := wire.DefaultLimits()
	local.MaxObjects = 16
	go func() {
		done <- router.runLink(context.Background(), a, roleDownstream, linkPeer{Name: "greedy", Local: local})
	}()
	var frame []byte
	for i := range 17 {
		frame = wire.Append(frame, &wire.DeclareObject{ID: uint32(i + 1), JSON: []byte(fmt.Sprint(i))})
	}
	b.out <- frame
	if err := <-done; !errors.Is(err, wire.ErrTooLarge) || a.closed.code != wire.CloseLimitExceeded {
		t.Fatalf("err %v, close %v", err, a.closed.code)
	}
}

// jsonDocument returns a JSON document of about size bytes: records whose
// values change with seed where mutate(i) says so.
func jsonDocument(size int, mutate func(i int) bool, seed int) []byte {
	var b []byte
	b = append(b, '[')
	for i := 0; len(b) < size; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		v := i * 7919
		if mutate(i) {
			v += seed
		}
		b = fmt.Appendf(b, `{"id":%d,"name":"sensor-%05d","room":"r%d","value":%d}`, i, i, i%37, v)
	}
	return append(b, ']')
}

// deltaScenario sends versions of a ~100 KB document in which 1% of the
// records change each time, and returns the bytes the exposer's link sent
// per version after the first.
func deltaScenario(t testing.TB, versions int) (perVersion float64, full int) {
	up := newTestExchange(t, "exposer")
	down := newTestExchange(t, "observer")
	testLinkFeatures(t, up, down, wire.AllFeatures)
	d := MustObjectDescriptor("doc")
	exp, _ := up.ExposeObject(d, 1)
	obs, _ := down.ObserveObject(d)
	sink := nextSink(t, exp)
	send := func(v int) []byte {
		doc := jsonDocument(100_000, func(i int) bool { return (i*31+v*17)%100 == 0 }, v)
		sink.Send(ObjectState{Version: Version{int64(v)}, Data: doc})
		return doc
	}
	first := send(1)
	full = len(first)
	if st := nextStateWhere(t, obs, func(s ObjectState) bool { return s.Version.Compare(Version{1}) == 0 }); string(st.Data) != string(first) {
		t.Fatal("first document corrupted")
	}
	before := up.linkBytesOut()
	for v := 2; v <= versions+1; v++ {
		doc := send(v)
		// Wait for each version so every one crosses the link.
		st := nextStateWhere(t, obs, func(s ObjectState) bool { return s.Version.Compare(Version{int64(v)}) == 0 })
		if string(st.Data) != string(doc) {
			t.Fatalf("version %d corrupted", v)
		}
	}
	return float64(up.linkBytesOut()-before) / float64(versions), full
}

func TestLinkDeltas(t *testing.T) {
	per, full := deltaScenario(t, 20)
	if per > 0.03*float64(full) {
		t.Fatalf("%.0f bytes per version for a %d-byte document: more than 3%%", per, full)
	}
	t.Logf("%.0f bytes per version, %.2f%% of %d", per, 100*per/float64(full), full)
}

func BenchmarkLinkDelta(b *testing.B) {
	per, full := deltaScenario(b, b.N)
	b.ReportMetric(per, "wire-bytes/version")
	b.ReportMetric(100*per/float64(full), "%-of-full")
}

// linkBytesOut sums the bytes sent over the exchange's links.
func (ex *Exchange) linkBytesOut() uint64 {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var n uint64
	for l := range ex.links {
		n += l.bytesOut.Load()
	}
	return n
}

func TestLinkCloseCodes(t *testing.T) {
	for _, c := range []struct {
		name  string
		cause error
		code  wire.CloseCode
	}{
		{"user closed", errNormalClose, closeNormal},
		{"shutdown", nil, wire.CloseGoingAway},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := newTestExchange(t, "leaf")
			a, _ := chanPair()
			ctx, cancel := context.WithCancelCause(context.Background())
			done := make(chan error, 1)
			go func() { done <- ex.runLink(ctx, a, roleUpstream, linkPeer{Name: "up"}) }()
			cancel(c.cause)
			<-done
			if a.closed.code != c.code {
				t.Fatalf("closed with %v, want %v", a.closed.code, c.code)
			}
		})
	}
}

// readUntil reads frames from t until a message satisfies f, failing after
// 10 s.
func readUntil(t *testing.T, tr *chanTransport, f func(wire.Message) bool) wire.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		frame, err := tr.Read(ctx)
		if err != nil {
			t.Fatalf("reading from the router: %v", err)
		}
		msgs, err := wire.Decode(frame, wire.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if f(m) {
				return m
			}
		}
	}
}

func TestLinkFencedAndStaleWritesAreAnswered(t *testing.T) {
	// A raw downstream (this test) exposes "x"; the router elects it and
	// then answers a write with a wrong token (fenced) and a stale version
	// with an Error, keeps the link, and applies the right write.
	router := newTestExchange(t, "router")
	a, b := chanPair()
	done := make(chan error, 1)
	go func() { done <- router.runLink(context.Background(), a, roleDownstream, linkPeer{Name: "raw"}) }()
	t.Cleanup(func() { a.CloseNow(); <-done })
	b.out <- wire.Append(wire.Append(nil, &wire.DeclareObject{ID: 1, JSON: []byte(`"x"`)}), &wire.ObjectExpose{Object: 1, Capacity: 1})
	obs, err := router.ObserveObject(MustObjectDescriptor("x"))
	if err != nil {
		t.Fatal(err)
	}
	assign := readUntil(t, b, func(m wire.Message) bool { _, ok := m.(*wire.Assign); return ok }).(*wire.Assign)

	isError := func(code wire.ErrorCode) func(wire.Message) bool {
		return func(m wire.Message) bool { e, ok := m.(*wire.Error); return ok && e.Code == code && e.Ref == 1 }
	}
	b.out <- wire.Append(nil, &wire.State{Object: 1, Version: []int64{5}, Token: assign.Token + 1, Data: []byte("zombie")})
	readUntil(t, b, isError(wire.ErrorFenced))
	b.out <- wire.Append(nil, &wire.State{Object: 1, Version: []int64{5}, Token: assign.Token, Data: []byte("ok")})
	if st := nextState(t, obs); string(st.Data) != "ok" {
		t.Fatalf("router applied %q", st.Data)
	}
	b.out <- wire.Append(nil, &wire.State{Object: 1, Version: []int64{4}, Token: assign.Token, Data: []byte("old")})
	readUntil(t, b, isError(wire.ErrorStaleVersion))
	if cur, _ := obs.Current(); string(cur.Data) != "ok" {
		t.Fatalf("stale write applied: %q", cur.Data)
	}
}

// TestLinkPeerThatStopsReadingNeverBlocksSend: a downstream observes an
// object and then stops reading. The exposer's Send, which writes frames
// itself while the connection takes them at once (link.flushInline),
// never blocks on it; the link holds only the newest state, which the peer
// gets once it reads again.
func TestLinkPeerThatStopsReadingNeverBlocksSend(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			ex := newTestExchange(t, "leaf")
			a, b := k.pair(t, linkTiming{})
			done := make(chan error, 1)
			go func() { done <- ex.runLink(context.Background(), a, roleDownstream, linkPeer{Name: "raw"}) }()
			t.Cleanup(func() { a.CloseNow(); <-done })
			ctx := testCtx(t)
			observe := wire.Append(wire.Append(nil, &wire.DeclareObject{ID: 1, JSON: []byte(`"x"`)}), &wire.ObjectObserve{Object: 1})
			if err := b.Write(ctx, observe); err != nil {
				t.Fatal(err)
			}
			exp, err := ex.ExposeObject(MustObjectDescriptor("x"), 1)
			if err != nil {
				t.Fatal(err)
			}
			sink := within(t, 5*time.Second, "assignment", func() *ObjectStateSink {
				s, err := exp.Next(ctx)
				if err != nil {
					t.Error(err)
				}
				return s
			})
			// 40 MB: far more than socket buffers (or the pipe) hold.
			const n, size = 10000, 4096
			within(t, 10*time.Second, "10,000 Sends to a peer that does not read", func() error {
				for i := 1; i <= n; i++ {
					data := make([]byte, size)
					data[0] = byte(i)
					if err := sink.Send(ObjectState{Version: Version{int64(i)}, Data: data}); err != nil {
						return err
					}
				}
				return nil
			})
			// The peer reads again: it gets the last version; most of the
			// others were replaced on the link before they went out.
			states := 0
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			for {
				frame, err := b.Read(rctx)
				if err != nil {
					t.Fatalf("reading after %d states: %v", states, err)
				}
				msgs, err := wire.Decode(frame, wire.DefaultLimits())
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					if s, ok := m.(*wire.State); ok {
						states++
						if s.Version[0] == n {
							if states >= n {
								t.Errorf("all %d states went out: nothing was replaced while the peer did not read", states)
							}
							return
						}
					}
				}
			}
		})
	}
}

// TestLinkFanOutIsolatesStalledPeers: a state fanned out to more links
// than maxInlineHooks goes through the exchange's flushers. Every peer
// that reads gets the newest version; as many peers as there are flushers
// stopped reading and hold nobody up (nor Send), and they get the newest
// version when they read again.
func TestLinkFanOutIsolatesStalledPeers(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			ex := newTestExchange(t, "router")
			ctx := testCtx(t)
			stalled := flusherCount()
			peers := stalled + 2*maxInlineHooks
			var ends []transport
			for range peers {
				a, b := k.pair(t, linkTiming{})
				done := make(chan error, 1)
				go func() { done <- ex.runLink(context.Background(), a, roleDownstream, linkPeer{Name: "raw"}) }()
				t.Cleanup(func() { a.CloseNow(); <-done })
				observe := wire.Append(wire.Append(nil, &wire.DeclareObject{ID: 1, JSON: []byte(`"x"`)}), &wire.ObjectObserve{Object: 1})
				if err := b.Write(ctx, observe); err != nil {
					t.Fatal(err)
				}
				ends = append(ends, b)
			}
			exp, err := ex.ExposeObject(MustObjectDescriptor("x"), 1)
			if err != nil {
				t.Fatal(err)
			}
			sink, err := exp.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The first peers do not read. Each version goes out once the
			// reading peers have the previous one, so that every version is
			// a fan-out to all of them (a pending contract makes no hook).
			const n, size = 400, 16 << 10
			within(t, 20*time.Second, "a fan-out of every version while peers do not read", func() error {
				for v := int64(1); v <= n; v++ {
					if err := sink.Send(ObjectState{Version: Version{v}, Data: make([]byte, size)}); err != nil {
						return err
					}
					for i := stalled; i < peers; i++ {
						if got := readUntilVersion(ctx, ends[i], v); got != v {
							return fmt.Errorf("peer %d: version %d, want %d", i, got, v)
						}
					}
				}
				return nil
			})
			for i := range stalled {
				if v := readUntilVersion(ctx, ends[i], n); v != n {
					t.Errorf("stalled peer %d, reading again: last version %d, want %d", i, v, n)
				}
			}
		})
	}
}

// readUntilVersion reads states of object 1 from tr until version want or a
// later one, returning the last version seen (short of want on error or
// timeout).
func readUntilVersion(ctx context.Context, tr transport, want int64) int64 {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var last int64
	for last < want {
		frame, err := tr.Read(ctx)
		if err != nil {
			return last
		}
		msgs, err := wire.Decode(frame, wire.DefaultLimits())
		if err != nil {
			return last
		}
		for _, m := range msgs {
			if s, ok := m.(*wire.State); ok && len(s.Version) > 0 {
				last = s.Version[0]
			}
		}
	}
	return last
}

// TestLinkRemembersWhatThePeerHoldsPerObject: what a link remembers the
// peer holds is, per object, the version the peer sent for that object,
// whatever states follow for other objects. After failover the leaf gets
// A@10 as the state to continue from, then B@11 for an object it observes;
// the leaf's A@11 must then reach the upstream as a state (a delta from
// A@10). Were A's version taken from the next state received (the decoder
// reuses its State), the leaf would take the upstream to hold A@11 already
// and send only a Sync, and A@11 would never arrive.
func TestLinkRemembersWhatThePeerHoldsPerObject(t *testing.T) {
	up := newTestExchange(t, "up")
	down := newTestExchange(t, "down")
	testLinkFeatures(t, up, down, wire.AllFeatures)
	a, b := MustObjectDescriptor("a"), MustObjectDescriptor("b")
	upA, _ := up.ExposeObject(a, 1)
	upB, _ := up.ExposeObject(b, 1)
	observeUp, _ := up.ObserveObject(a)
	obsB, _ := down.ObserveObject(b)
	doc1 := jsonDocument(20_000, func(int) bool { return false }, 1)
	if err := nextSink(t, upA).Send(ObjectState{Version: Version{10}, Data: doc1}); err != nil {
		t.Fatal(err)
	}
	nextStateWhere(t, observeUp, func(s ObjectState) bool { return s.Version.Compare(Version{10}) == 0 })

	// Fail A over to the leaf, which gets A@10 to continue from.
	downA, _ := down.ExposeObject(a, 1)
	upA.Close()
	sink := nextSink(t, downA)
	waitFor(t, func() bool {
		cur, ok := sink.Current()
		return ok && cur.Version.Compare(Version{10}) == 0
	})
	// Then a state of another object.
	if err := nextSink(t, upB).Send(ObjectState{Version: Version{11}, Data: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	nextStateWhere(t, obsB, func(s ObjectState) bool { return s.Version.Compare(Version{11}) == 0 })

	doc2 := jsonDocument(20_000, func(i int) bool { return i%500 == 0 }, 2)
	before := down.linkBytesOut()
	if err := sink.Send(ObjectState{Version: Version{11}, Data: doc2}); err != nil {
		t.Fatal(err)
	}
	st := nextStateWhere(t, observeUp, func(s ObjectState) bool { return s.Version.Compare(Version{11}) >= 0 })
	if string(st.Data) != string(doc2) {
		t.Fatal("A@11 arrived corrupted")
	}
	if sent := down.linkBytesOut() - before; sent >= uint64(len(doc2))/10 {
		t.Errorf("A@11 took %d bytes for a %d-byte document: not sent as a delta from A@10", sent, len(doc2))
	}
}
