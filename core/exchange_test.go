package core_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core"
)

// newExchange returns an exchange closed when the test ends.
func newExchange(t testing.TB, opts ...func(*core.Config)) *core.Exchange {
	t.Helper()
	cfg := core.DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	ex, err := core.NewExchange(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func tag(v any) core.TagDescriptor { return core.MustTagDescriptor(v) }

func obj(v any, tags ...string) core.ObjectDescriptor {
	ts := make([]core.TagDescriptor, len(tags))
	for i, s := range tags {
		ts[i] = tag(s)
	}
	return core.MustObjectDescriptor(v, ts...)
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// waitCtx bounds a blocking call in a test; it is a deadline for a wait that
// is expected to succeed, never a sleep.
func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// assigned returns the pending sink of an expose contract, or nil.
type sinkSource interface {
	TryNext() (*core.ObjectStateSink, bool, error)
}

func trySink(t testing.TB, c sinkSource) *core.ObjectStateSink {
	t.Helper()
	s, ok, err := c.TryNext()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return nil
	}
	return s
}

func objectSnap(t testing.TB, ex *core.Exchange, d core.ObjectDescriptor) (core.ObjectSnapshot, bool) {
	t.Helper()
	for _, o := range ex.Snapshot().Objects {
		if o.Descriptor.Equal(d) {
			return o, true
		}
	}
	return core.ObjectSnapshot{}, false
}

func TestLiveness(t *testing.T) {
	// Every combination of the four contracts, on one object with tag "t".
	// live: the object exists with observers; assigned: an exposer got a sink.
	for mask := range 16 {
		oo, oe, to, te := mask&1 != 0, mask&2 != 0, mask&4 != 0, mask&8 != 0
		name := fmt.Sprintf("objObserve=%v/objExpose=%v/tagObserve=%v/tagExpose=%v", oo, oe, to, te)
		t.Run(name, func(t *testing.T) {
			ex := newExchange(t)
			d := obj("x", "t")
			var oeC *core.ObjectExposeContract
			var teC *core.TagExposeContract
			if te {
				teC = must[*core.TagExposeContract](t)(ex.ExposeTag(tag("t"), 1))
			}
			if oe {
				oeC = must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
			}
			if to {
				must[*core.TagObserveContract](t)(ex.ObserveTag(tag("t")))
			}
			if oo {
				must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
			}
			wantLive := oo || (oe && to)
			snap, ok := objectSnap(t, ex, d)
			if live := ok && snap.Live; live != wantLive {
				t.Fatalf("live = %v, want %v", live, wantLive)
			}
			// Somebody gets an assignment iff the object is live and some
			// exposer can produce it; the object exposer is older only if
			// the tag exposer does not exist.
			gotSink := (oeC != nil && trySink(t, oeC) != nil) || (teC != nil && trySink(t, teC) != nil)
			if want := wantLive && (oe || te); gotSink != want {
				t.Fatalf("assigned = %v, want %v", gotSink, want)
			}
			// Tag contracts alone never create an object record.
			if !oo && !oe && ok {
				t.Fatalf("tag contracts alone created object %v", snap.Descriptor)
			}
		})
	}
}

func TestNoAssignmentWithoutObservers(t *testing.T) {
	ex := newExchange(t)
	d := obj("lazy")
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	if s := trySink(t, exp); s != nil {
		t.Fatal("assignment without observers")
	}
	if st := exp.Status(); st != core.StatusNoObservers {
		t.Fatalf("status %v", st)
	}
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	sink := trySink(t, exp)
	if sink == nil {
		t.Fatal("no assignment once observed")
	}
	if st := exp.Status(); st != core.StatusActive {
		t.Fatalf("status %v", st)
	}
	// The assignment ends when the last observer leaves.
	obs2 := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	obs.Close()
	if sink.Revoked() {
		t.Fatal("revoked while still observed")
	}
	obs2.Close()
	select {
	case <-sink.Done():
	default:
		t.Fatal("assignment survived the last observer")
	}
	if err := sink.Send(core.ObjectState{Data: []byte("x")}); !errors.Is(err, core.ErrRevoked) {
		t.Fatalf("send after release: %v", err)
	}
	// The object and its state are forgotten once nothing names it.
	exp.Close()
	if _, ok := objectSnap(t, ex, d); ok {
		t.Fatal("object not forgotten")
	}
}

func TestStateDeliveryAndCurrent(t *testing.T) {
	ex := newExchange(t)
	d := obj(map[string]any{"room": 12})
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	if st := obs.Status(); st != core.StatusStale {
		t.Fatalf("status before first state: %v", st)
	}
	sink := must[*core.ObjectStateSink](t)(exp.Next(waitCtx(t)))
	st, err := core.NewJSONState(map[string]int{"t": 21})
	if err != nil {
		t.Fatal(err)
	}
	st.Version = core.Version{1}
	if err := sink.Send(st); err != nil {
		t.Fatal(err)
	}
	got := must[core.ObjectState](t)(obs.Next(waitCtx(t)))
	var v map[string]int
	if _, err := got.DecodeJSON(&v); err != nil || v["t"] != 21 || !got.Synchronized || got.Version.Compare(core.Version{1}) != 0 {
		t.Fatalf("got %+v %v %v", got, v, err)
	}
	if obs.Status() != core.StatusActive {
		t.Fatalf("status %v", obs.Status())
	}
	// A late observer gets the current state at once.
	late := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	if s, ok, _ := late.TryNext(); !ok || string(s.Data) != string(st.Data) {
		t.Fatalf("late observer got %v %v", s, ok)
	}
	if cur, ok := sink.Current(); !ok || cur.Version.Compare(core.Version{1}) != 0 {
		t.Fatal("sink.Current")
	}
	// Wrong format is a clear error.
	bin := core.ObjectState{Format: []string{"bin"}}
	if _, err := bin.DecodeJSON(&v); !errors.Is(err, core.ErrWrongFormat) {
		t.Fatalf("DecodeJSON on bin: %v", err)
	}
}

func TestStaleVersionRefusedAndSameVersionNoop(t *testing.T) {
	ex := newExchange(t)
	d := obj("v")
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	sink := trySink(t, exp)
	if err := sink.Send(core.ObjectState{Version: core.Version{5, 1}, Data: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	obs.TryNext()
	for _, v := range []core.Version{{5}, {4, 9}, {5, 0}} {
		if err := sink.Send(core.ObjectState{Version: v, Data: []byte("old")}); !errors.Is(err, core.ErrStaleVersion) {
			t.Fatalf("send %v: %v", v, err)
		}
	}
	if err := sink.Send(core.ObjectState{Version: core.Version{5, 1}, Data: []byte("same")}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := obs.TryNext(); ok {
		t.Fatal("same version delivered again")
	}
	if cur, _ := obs.Current(); string(cur.Data) != "a" {
		t.Fatalf("same version replaced data: %q", cur.Data)
	}
	// Generated versions continue above the current one.
	if err := sink.Send(core.ObjectState{Data: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	got, _, _ := obs.TryNext()
	if got.Version.Compare(core.Version{5, 1}) <= 0 {
		t.Fatalf("generated version %v not above [5,1]", got.Version)
	}
}

func TestNextVersionHybridClock(t *testing.T) {
	now := time.UnixMicro(1_000_000)
	cases := []struct {
		cur, want core.Version
	}{
		{nil, core.Version{1_000_000}},
		{core.Version{999_999, 7}, core.Version{1_000_000}},
		{core.Version{1_000_000}, core.Version{1_000_001}},          // same microsecond
		{core.Version{5_000_000, 3}, core.Version{5_000_001}},       // clock behind the predecessor
		{core.Version{1<<63 - 1}, core.Version{1<<63 - 1, 0}},       // saturated
		{core.Version{1<<63 - 1, 4}, core.Version{1<<63 - 1, 4, 0}}, // saturated, longer
	}
	for _, c := range cases {
		got := core.NextVersion(c.cur, now)
		if got.Compare(c.want) != 0 || got.Compare(c.cur) <= 0 {
			t.Errorf("NextVersion(%v) = %v, want %v", c.cur, got, c.want)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	ordered := []core.Version{nil, {-1}, {1}, {1, 5}, {1, 6}, {2}, {2, 0}}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := ordered[i].Compare(ordered[j]); got != want {
				t.Errorf("%v vs %v = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestCapacityWeightedElection(t *testing.T) {
	ex := newExchange(t)
	caps := []int{1, 1, 2}
	var exps []*core.TagExposeContract
	for _, c := range caps {
		exps = append(exps, must[*core.TagExposeContract](t)(ex.ExposeTag(tag("w"), c)))
	}
	for i := range 400 {
		must[*core.ObjectObserveContract](t)(ex.ObserveObject(obj(i, "w")))
	}
	want := []int{100, 100, 200}
	for i, e := range exps {
		if got := e.Load(); got < want[i]-1 || got > want[i]+1 {
			t.Errorf("exposer %d (capacity %d): %d objects, want %d±1", i, caps[i], got, want[i])
		}
		if n := len(e.Assignments()); n != e.Load() {
			t.Errorf("exposer %d: %d sinks, load %d", i, n, e.Load())
		}
	}
}

func TestElectionTiesGoToLongestStanding(t *testing.T) {
	for range 20 { // same outcome every time: deterministic
		ex := newExchange(t)
		d := obj("tie", "t")
		first := must[*core.TagExposeContract](t)(ex.ExposeTag(tag("t"), 1))
		second := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
		must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
		if trySink(t, first) == nil || trySink(t, second) != nil {
			t.Fatal("tie not won by the first candidate")
		}
		ex.Close()
	}
}

func TestFailoverOnClose(t *testing.T) {
	ex := newExchange(t)
	d := obj("f")
	a := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	b := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	sa := trySink(t, a)
	if sa == nil || trySink(t, b) != nil {
		t.Fatal("a should be elected")
	}
	if b.Status() != core.StatusStandby {
		t.Fatalf("b status %v", b.Status())
	}
	if err := sa.Send(core.ObjectState{Data: []byte("from a")}); err != nil {
		t.Fatal(err)
	}
	first, _, _ := obs.TryNext()
	a.Close()
	// Observers keep the last state, marked not synchronized.
	st, ok, _ := obs.TryNext()
	if !ok || st.Synchronized || string(st.Data) != "from a" || st.Version.Compare(first.Version) != 0 {
		t.Fatalf("after failover observer got %+v ok=%v", st, ok)
	}
	// b is elected at once and can continue from the last state.
	sb := trySink(t, b)
	if sb == nil {
		t.Fatal("b not elected after a closed")
	}
	if cur, ok := sb.Current(); !ok || string(cur.Data) != "from a" {
		t.Fatal("successor cannot read the last state")
	}
	if err := sb.Send(core.ObjectState{Data: []byte("from b")}); err != nil {
		t.Fatal(err)
	}
	st, _, _ = obs.TryNext()
	if !st.Synchronized || string(st.Data) != "from b" || st.Version.Compare(first.Version) <= 0 {
		t.Fatalf("after b wrote: %+v", st)
	}
	// The revoked sink is fenced.
	if err := sa.Send(core.ObjectState{Data: []byte("zombie")}); !errors.Is(err, core.ErrRevoked) {
		t.Fatalf("revoked sink wrote: %v", err)
	}
	if err := sa.Desynchronize(); !errors.Is(err, core.ErrRevoked) {
		t.Fatalf("revoked sink desynchronized: %v", err)
	}
	if cur, _ := obs.Current(); string(cur.Data) != "from b" {
		t.Fatal("zombie write applied")
	}
	// No candidate left: the observer waits for an exposer.
	b.Close()
	if obs.Status() != core.StatusWaitingForExposer {
		t.Fatalf("status %v", obs.Status())
	}
}

func TestSyncFlagChangesDelivered(t *testing.T) {
	ex := newExchange(t)
	d := obj("sync")
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	sink := trySink(t, exp)
	sink.Send(core.ObjectState{Version: core.Version{1}, Data: []byte("x")})
	obs.TryNext()
	if err := sink.Desynchronize(); err != nil {
		t.Fatal(err)
	}
	st, ok, _ := obs.TryNext()
	if !ok || st.Synchronized || st.Version.Compare(core.Version{1}) != 0 || st.LastSynchronized.IsZero() {
		t.Fatalf("desync not delivered: %+v %v", st, ok)
	}
	if obs.Status() != core.StatusStale {
		t.Fatalf("status %v", obs.Status())
	}
	// Same version again: fresh again, same data.
	sink.Send(core.ObjectState{Version: core.Version{1}, Data: []byte("ignored")})
	st, ok, _ = obs.TryNext()
	if !ok || !st.Synchronized || string(st.Data) != "x" {
		t.Fatalf("resync not delivered: %+v %v", st, ok)
	}
}

func TestLatestWinsSlowObserver(t *testing.T) {
	ex := newExchange(t)
	d := obj("fast")
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	sink := trySink(t, exp)
	data := make([]byte, 64)
	var before, after runtimeMem
	before.read()
	const n = 1_000_000
	for i := 1; i <= n; i++ {
		if err := sink.Send(core.ObjectState{Version: core.Version{int64(i)}, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	after.read()
	// One pending state, the newest; nothing queued behind it.
	st, ok, _ := obs.TryNext()
	if !ok || st.Version.Compare(core.Version{n}) != 0 {
		t.Fatalf("got %v, want version [%d]", st.Version, n)
	}
	if _, ok, _ := obs.TryNext(); ok {
		t.Fatal("a backlog was kept")
	}
	// A backlog of 1M states would hold >64 MB live; allow a few MB of noise.
	if grown := int64(after.live) - int64(before.live); grown > 8<<20 {
		t.Fatalf("live heap grew by %d bytes while the observer slept", grown)
	}
}

func TestVersionsNeverGoBackwardsForObserver(t *testing.T) {
	ex := newExchange(t)
	d := obj("mono")
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	sink := must[*core.ObjectStateSink](t)(exp.Next(waitCtx(t)))
	const n = 20000
	go func() {
		for i := 1; i <= n; i++ {
			sink.Send(core.ObjectState{Version: core.Version{int64(i)}, Data: []byte("x")})
		}
	}()
	var last core.Version
	ctx := waitCtx(t)
	seen := 0
	for last.Compare(core.Version{n}) != 0 {
		st, err := obs.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Version.Compare(last) <= 0 {
			t.Fatalf("version went from %v to %v", last, st.Version)
		}
		last = st.Version
		seen++
	}
	t.Logf("observer saw %d of %d versions", seen, n)
}

func TestCloseWakesWaiters(t *testing.T) {
	ex := newExchange(t)
	d := obj("w")
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	tobs := must[*core.TagObserveContract](t)(ex.ObserveTag(tag("t")))
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(obj("other"), 1))
	const waiters = 4
	errs := make(chan error, 3*waiters)
	var started sync.WaitGroup
	for range waiters {
		started.Add(3)
		go func() { started.Done(); _, err := obs.Next(context.Background()); errs <- err }()
		go func() { started.Done(); _, err := tobs.Next(context.Background()); errs <- err }()
		go func() { started.Done(); _, err := exp.Next(context.Background()); errs <- err }()
	}
	started.Wait()
	obs.Close()
	tobs.Close()
	exp.Close()
	for range 3 * waiters {
		select {
		case err := <-errs:
			if !errors.Is(err, core.ErrClosed) {
				t.Fatalf("waiter returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter was not woken by Close")
		}
	}
	// Closing the exchange closes everything made on it.
	obs2 := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	done := make(chan error, 1)
	go func() { _, err := obs2.Next(context.Background()); done <- err }()
	ex.Close()
	if err := <-done; !errors.Is(err, core.ErrClosed) {
		t.Fatalf("exchange close: %v", err)
	}
	if _, err := ex.ObserveObject(d); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("contract on closed exchange: %v", err)
	}
}

func TestNextTimeoutAndContext(t *testing.T) {
	ex := newExchange(t)
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(obj("t")))
	if _, err := obs.NextTimeout(0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("try: %v", err)
	}
	if _, err := obs.NextTimeout(time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := obs.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if core.ErrorCode(context.DeadlineExceeded) != core.CodeTimeout {
		t.Fatal("timeout code")
	}
}

func TestTagObserveEvents(t *testing.T) {
	ex := newExchange(t)
	tobs := must[*core.TagObserveContract](t)(ex.ObserveTag(tag("room")))
	texp := must[*core.TagExposeContract](t)(ex.ExposeTag(tag("room"), 1))
	d1, d2 := obj(1, "room"), obj(2, "room", "other")
	o1 := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d1))
	must[*core.ObjectObserveContract](t)(ex.ObserveObject(d2))
	if tobs.Status() != core.StatusActive {
		t.Fatalf("status %v", tobs.Status())
	}
	sinks := map[string]*core.ObjectStateSink{}
	for s := range texp.Sinks(ctxWithCancel(t)) {
		sinks[s.Descriptor().Key()] = s
		if len(sinks) == 2 {
			break
		}
	}
	// No event before a state exists.
	if _, ok, _ := tobs.TryNext(); ok {
		t.Fatal("event without state")
	}
	for i, d := range []core.ObjectDescriptor{d1, d2} {
		for v := 1; v <= 3; v++ { // latest wins per object
			sinks[d.Key()].Send(core.ObjectState{Version: core.Version{int64(v)}, Data: []byte{byte(i)}})
		}
	}
	got := map[string]core.Version{}
	for range 2 {
		ev := must[core.ObjectEvent](t)(tobs.Next(waitCtx(t)))
		got[ev.Descriptor.Key()] = ev.State.Version
	}
	if len(got) != 2 || got[d1.Key()].Compare(core.Version{3}) != 0 || got[d2.Key()].Compare(core.Version{3}) != 0 {
		t.Fatalf("got %v", got)
	}
	if _, ok, _ := tobs.TryNext(); ok {
		t.Fatal("more than one event per object")
	}
	if n := len(tobs.Current()); n != 2 {
		t.Fatalf("Current has %d objects", n)
	}
	// The object disappears when its observer leaves.
	o1.Close()
	ev := must[core.ObjectEvent](t)(tobs.Next(waitCtx(t)))
	if !ev.Gone || !ev.Descriptor.Equal(d1) {
		t.Fatalf("got %+v, want d1 gone", ev)
	}
	if !sinks[d1.Key()].Revoked() {
		t.Fatal("d1 still assigned")
	}
}

func ctxWithCancel(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

func TestTagObserverSeesExposedObjects(t *testing.T) {
	// An object expose contract plus a tag observer make the object live;
	// the exposer is asked to produce it; closing the tag observer ends it.
	ex := newExchange(t)
	d := obj("sensor-7", "sensors")
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	if trySink(t, exp) != nil {
		t.Fatal("assigned before anyone observes")
	}
	tobs := must[*core.TagObserveContract](t)(ex.ObserveTag(tag("sensors")))
	sink := trySink(t, exp)
	if sink == nil {
		t.Fatal("tag observer did not make the exposed object live")
	}
	sink.Send(core.ObjectState{Data: []byte("on")})
	ev := must[core.ObjectEvent](t)(tobs.Next(waitCtx(t)))
	if !ev.Descriptor.Equal(d) || string(ev.State.Data) != "on" {
		t.Fatalf("event %+v", ev)
	}
	tobs.Close()
	if !sink.Revoked() {
		t.Fatal("assignment kept after the tag observer left")
	}
	if snap, ok := objectSnap(t, ex, d); !ok || snap.Live || snap.Version != nil {
		t.Fatalf("object should be known (exposed) but not live, state forgotten: %+v", snap)
	}
}

func TestBadInput(t *testing.T) {
	ex := newExchange(t)
	if _, err := core.ParseObjectDescriptor([]byte(`{"a":`)); !errors.Is(err, core.ErrInvalidDescriptor) {
		t.Errorf("invalid JSON: %v", err)
	}
	big := make([]byte, 70000)
	for i := range big {
		big[i] = 'a'
	}
	big[0], big[len(big)-1] = '"', '"'
	if _, err := core.ParseObjectDescriptor(big); !errors.Is(err, core.ErrDescriptorTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	tags := make([]core.TagDescriptor, 65)
	for i := range tags {
		tags[i] = tag(i)
	}
	if _, err := core.NewObjectDescriptor("x", tags...); !errors.Is(err, core.ErrTooManyTags) {
		t.Errorf("too many tags: %v", err)
	}
	for _, c := range []int{0, -1} {
		if _, err := ex.ExposeObject(obj("x"), c); !errors.Is(err, core.ErrInvalidCapacity) {
			t.Errorf("capacity %d: %v", c, err)
		}
		if _, err := ex.ExposeTag(tag("x"), c); !errors.Is(err, core.ErrInvalidCapacity) {
			t.Errorf("tag capacity %d: %v", c, err)
		}
	}
	if _, err := ex.ObserveObject(core.ObjectDescriptor{}); !errors.Is(err, core.ErrInvalidDescriptor) {
		t.Errorf("zero descriptor: %v", err)
	}
	if _, err := ex.ObserveTag(core.TagDescriptor{}); !errors.Is(err, core.ErrInvalidDescriptor) {
		t.Errorf("zero tag: %v", err)
	}
	// A smaller configured limit applies at the call that passes the descriptor.
	small := newExchange(t, func(c *core.Config) { c.Limits.MaxSize = 8 })
	if _, err := small.ObserveObject(obj("0123456789")); !errors.Is(err, core.ErrDescriptorTooLarge) {
		t.Errorf("configured limit: %v", err)
	}
	// Tags too, for both kinds of tag contract.
	if _, err := small.ObserveTag(tag("0123456789")); !errors.Is(err, core.ErrDescriptorTooLarge) {
		t.Errorf("configured limit, tag observe: %v", err)
	}
	if _, err := small.ExposeTag(tag("0123456789"), 1); !errors.Is(err, core.ErrDescriptorTooLarge) {
		t.Errorf("configured limit, tag expose: %v", err)
	}
	if _, err := small.ObserveTag(tag("short")); err != nil {
		t.Errorf("a tag within the limit: %v", err)
	}
	// Sends after close.
	d := obj("closing")
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	sink := trySink(t, exp)
	exp.Close()
	if err := sink.Send(core.ObjectState{}); !errors.Is(err, core.ErrRevoked) {
		t.Errorf("send after close: %v", err)
	}
	if _, ok, err := exp.TryNext(); ok || !errors.Is(err, core.ErrClosed) {
		t.Errorf("TryNext after close: %v %v", ok, err)
	}
	if err := exp.Close(); err != nil {
		t.Errorf("double close: %v", err)
	}
	bad := core.DefaultConfig()
	bad.RebalanceThreshold = 0
	if _, err := core.NewExchange(bad); !errors.Is(err, core.ErrInvalidConfig) {
		t.Errorf("bad config: %v", err)
	}
	// The name goes into handshakes (as the connectors' and listeners'
	// default): one they cannot carry is refused here, not at every
	// connection attempt.
	for _, name := range []string{strings.Repeat("n", 257), "bad\xff"} {
		bad := core.DefaultConfig()
		bad.Name = name
		if _, err := core.NewExchange(bad); !errors.Is(err, core.ErrInvalidConfig) {
			t.Errorf("name %q: %v", name[:min(len(name), 8)], err)
		}
	}
}

func TestErrorCodesTable(t *testing.T) {
	seen := map[core.Code]bool{}
	names := map[string]bool{}
	for _, c := range core.Codes() {
		if seen[c.Code] || names[c.Name] {
			t.Fatalf("duplicate code %d %s", c.Code, c.Name)
		}
		seen[c.Code], names[c.Name] = true, true
		if (c.Code < 0) != (c.Err != nil) {
			t.Fatalf("code %s: error iff negative", c.Name)
		}
		if c.Err != nil && core.ErrorCode(fmt.Errorf("wrapped: %w", c.Err)) != c.Code {
			t.Fatalf("ErrorCode(%v) != %d", c.Err, c.Code)
		}
	}
}

func TestSnapshotOfEmptyExchangeHasEmptyLists(t *testing.T) {
	js, err := newExchange(t).SnapshotJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"objects":[]`, `"tags":[]`, `"contracts":[]`, `"links":[]`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("snapshot lacks %s: %s", want, js)
		}
	}
}

func TestSnapshot(t *testing.T) {
	ex := newExchange(t)
	d := obj(map[string]any{"b": 1, "a": 2}, "t")
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 3))
	must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	trySink(t, exp).Send(core.ObjectState{Version: core.Version{7}, Data: []byte("1234")})
	s := ex.Snapshot()
	if len(s.Objects) != 1 || len(s.Contracts) != 2 || len(s.Tags) != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	o := s.Objects[0]
	if !o.Live || !o.Observed || o.Exposer != exp.ID() || o.Size != 4 || !o.Synchronized || o.Version.Compare(core.Version{7}) != 0 {
		t.Fatalf("object %+v", o)
	}
	if c := s.Contracts[0]; c.ID != exp.ID() || c.Capacity != 3 || c.Load != 1 || c.Status != "active" {
		t.Fatalf("contract %+v", s.Contracts[0])
	}
	js, err := ex.SnapshotJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"status":"active"`, `"descriptor"`, `{"a":2,"b":1}`, `"synchronized":true`} {
		if !strings.Contains(string(js), want) {
			t.Fatalf("snapshot JSON lacks %s: %s", want, js)
		}
	}
}

func TestNotifyHook(t *testing.T) {
	ex := newExchange(t)
	d := obj("n")
	exp := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	var mu sync.Mutex
	calls := 0
	obs.SetNotify(func() {
		// Hooks run without the exchange's lock: calling back must not deadlock.
		obs.Status()
		mu.Lock()
		calls++
		mu.Unlock()
	})
	sink := trySink(t, exp)
	for range 10 {
		sink.Send(core.ObjectState{Data: []byte("x")})
	}
	mu.Lock()
	if calls != 1 {
		t.Fatalf("%d notifications for one pending state", calls)
	}
	mu.Unlock()
	obs.TryNext()
	sink.Send(core.ObjectState{Data: []byte("y")})
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Fatalf("%d notifications after consuming", calls)
	}
}

// runtimeMem reads the live heap after a full collection.
type runtimeMem struct{ live uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.live = ms.HeapAlloc
}

func TestCloseAfterExchangeClose(t *testing.T) {
	// Every contract closes again without harm after its exchange closed
	// (the exchange forgets tags and objects on the first close).
	ex := newExchange(t)
	d := obj("x", "t")
	oo := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
	oe := must[*core.ObjectExposeContract](t)(ex.ExposeObject(d, 1))
	to := must[*core.TagObserveContract](t)(ex.ObserveTag(tag("t")))
	te := must[*core.TagExposeContract](t)(ex.ExposeTag(tag("t"), 1))
	ex.Close()
	for _, c := range []interface{ Close() error }{te, to, oe, oo, te, to, oe, oo} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if st := te.Status(); st != core.StatusClosed {
		t.Fatalf("status %v", st)
	}
}
