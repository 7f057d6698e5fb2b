package core_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hakuban/hakuban/core"
)

// producer runs a tag exposer that answers every assignment with one state.
// It stops when ctx is done.
type producer struct {
	c  *core.TagExposeContract
	wg sync.WaitGroup
}

func startProducer(t *testing.T, ctx context.Context, ex *core.Exchange, tg string, capacity int) *producer {
	t.Helper()
	p := &producer{c: must[*core.TagExposeContract](t)(ex.ExposeTag(tag(tg), capacity))}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for s := range p.c.Sinks(ctx) {
			if err := s.Send(core.ObjectState{Data: []byte("v")}); err != nil && !errors.Is(err, core.ErrRevoked) {
				t.Errorf("send: %v", err)
			}
		}
	}()
	return p
}

func (p *producer) stop() {
	p.c.Close()
	p.wg.Wait()
}

// watchSync fails the test if a tag observer ever sees an unsynchronized
// state: during planned moves observers must see no gap.
func watchSync(t *testing.T, ctx context.Context, ex *core.Exchange, tg string) *sync.WaitGroup {
	obs := must[*core.TagObserveContract](t)(ex.ObserveTag(tag(tg)))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range obs.Events(ctx) {
			if !ev.Gone && !ev.State.Synchronized {
				t.Errorf("%v seen unsynchronized during a planned move", ev.Descriptor)
			}
		}
	}()
	return &wg
}

func TestRebalanceWhenExposerJoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := newExchange(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		watched := watchSync(t, ctx, ex, "r")
		a := startProducer(t, ctx, ex, "r", 1)
		const n = 300
		for i := range n {
			must[*core.ObjectObserveContract](t)(ex.ObserveObject(obj(i, "r")))
		}
		synctest.Wait()
		if a.c.Load() != n {
			t.Fatalf("a carries %d, want %d", a.c.Load(), n)
		}
		b := startProducer(t, ctx, ex, "r", 2)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		la, lb := a.c.Load(), b.c.Load()
		if la+lb != n {
			t.Fatalf("loads %d+%d != %d", la, lb, n)
		}
		// b has twice a's capacity: loads a/1 and b/2 end within the threshold.
		fa, fb := float64(la), float64(lb)/2
		if hi, lo := max(fa, fb), min(fa, fb); (hi-lo)/hi > 0.1 {
			t.Fatalf("not balanced: a=%d b=%d", la, lb)
		}
		// Every old sink was released after its successor wrote.
		if got := len(a.c.Assignments()) + len(b.c.Assignments()); got != n {
			t.Fatalf("%d live sinks for %d objects: handovers not finished", got, n)
		}
		st := ex.Snapshot().Counters
		if st.HandoverTTL != 0 || st.Handovers != st.Rebalances {
			t.Fatalf("counters %+v", st)
		}
		// Balanced means quiet: nothing moves any more.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if again := ex.Snapshot().Counters.Rebalances; again != st.Rebalances {
			t.Fatalf("objects kept moving: %d then %d moves", st.Rebalances, again)
		}
		cancel()
		a.stop()
		b.stop()
		watched.Wait()
	})
}

func TestRebalanceNoFlappingUnderChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := newExchange(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		base := startProducer(t, ctx, ex, "c", 1)
		const n = 200
		for i := range n {
			must[*core.ObjectObserveContract](t)(ex.ObserveObject(obj(i, "c")))
		}
		// Exposers come and go every 150 ms for a while.
		for range 20 {
			p := startProducer(t, ctx, ex, "c", 1)
			time.Sleep(150 * time.Millisecond)
			p.stop()
		}
		synctest.Wait()
		stable := startProducer(t, ctx, ex, "c", 1)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		moves := ex.Snapshot().Counters.Rebalances
		// Rate limit: at most MaxMovesPerInterval per interval, whatever the churn.
		maxMoves := uint64(core.DefaultConfig().MaxMovesPerInterval) * uint64((20*150*time.Millisecond+5*time.Second)/core.DefaultConfig().RebalanceInterval+1)
		if moves > maxMoves {
			t.Fatalf("%d moves exceed the rate limit %d", moves, maxMoves)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if again := ex.Snapshot().Counters.Rebalances; again != moves {
			t.Fatalf("flapping: %d moves after churn stopped, then %d", moves, again)
		}
		if l1, l2 := base.c.Load(), stable.c.Load(); l1+l2 != n || abs(l1-l2) > n/10 {
			t.Fatalf("final loads %d/%d", l1, l2)
		}
		cancel()
		base.stop()
		stable.stop()
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestGapFreeHandoverOldWritesUntilNewDoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := newExchange(t)
		d := obj("h", "h")
		old := must[*core.TagExposeContract](t)(ex.ExposeTag(tag("h"), 1))
		obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(d))
		oldSink := trySink(t, old)
		oldSink.Send(core.ObjectState{Data: []byte("old")})
		obs.TryNext()
		// A second object keeps old busier than a newcomer: one moves.
		must[*core.ObjectObserveContract](t)(ex.ObserveObject(obj("h2", "h")))
		trySink(t, old).Send(core.ObjectState{Data: []byte("x")})
		newer := must[*core.TagExposeContract](t)(ex.ExposeTag(tag("h"), 1))
		time.Sleep(core.DefaultConfig().RebalanceInterval + 10*time.Millisecond)
		synctest.Wait()
		newSink := trySink(t, newer)
		if newSink == nil {
			t.Fatal("no move to the new exposer")
		}
		moved := newSink.Descriptor()
		var oldOfMoved *core.ObjectStateSink
		for _, s := range old.Assignments() {
			if s.Descriptor().Equal(moved) {
				oldOfMoved = s
			}
		}
		if oldOfMoved == nil || oldOfMoved.Revoked() {
			t.Fatal("old exposer released before the new one wrote")
		}
		if newSink.Token() <= oldOfMoved.Token() {
			t.Fatal("tokens must increase per object")
		}
		// The old one may still write during the handover...
		if err := oldOfMoved.Send(core.ObjectState{Data: []byte("old again")}); err != nil {
			t.Fatalf("old exposer fenced too early: %v", err)
		}
		// ...until the new one writes; then it is fenced.
		if err := newSink.Send(core.ObjectState{Data: []byte("new")}); err != nil {
			t.Fatal(err)
		}
		if !oldOfMoved.Revoked() {
			t.Fatal("old sink not revoked after the new exposer wrote")
		}
		if err := oldOfMoved.Send(core.ObjectState{Data: []byte("zombie")}); !errors.Is(err, core.ErrRevoked) {
			t.Fatalf("old exposer not fenced: %v", err)
		}
		if cur, _ := newSink.Current(); string(cur.Data) != "new" || !cur.Synchronized {
			t.Fatalf("current %q", cur.Data)
		}
	})
}

func TestHandoverTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := newExchange(t)
		old := must[*core.TagExposeContract](t)(ex.ExposeTag(tag("h"), 1))
		var observers []*core.ObjectObserveContract
		for i := range 2 {
			observers = append(observers, must[*core.ObjectObserveContract](t)(ex.ObserveObject(obj(i, "h"))))
		}
		for _, s := range old.Assignments() {
			s.Send(core.ObjectState{Data: []byte("old")})
		}
		silent := must[*core.TagExposeContract](t)(ex.ExposeTag(tag("h"), 1))
		time.Sleep(core.DefaultConfig().RebalanceInterval + 10*time.Millisecond)
		synctest.Wait()
		if silent.Load() != 1 || len(old.Assignments()) != 2 {
			t.Fatalf("handover not started: new load %d, old sinks %d", silent.Load(), len(old.Assignments()))
		}
		time.Sleep(core.DefaultConfig().HandoverTimeout + 10*time.Millisecond)
		synctest.Wait()
		if len(old.Assignments()) != 1 {
			t.Fatal("old sink not released after the handover timeout")
		}
		stale := 0
		for _, o := range observers {
			if st, _ := o.Current(); !st.Synchronized {
				stale++
			}
		}
		if stale != 1 {
			t.Fatalf("%d objects unsynchronized after a timed-out handover, want 1", stale)
		}
	})
}

func TestHandoverRollbackWhenNewExposerLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := newExchange(t)
		old := must[*core.TagExposeContract](t)(ex.ExposeTag(tag("h"), 1))
		obs := must[*core.ObjectObserveContract](t)(ex.ObserveObject(obj(0, "h")))
		must[*core.ObjectObserveContract](t)(ex.ObserveObject(obj(1, "h")))
		for _, s := range old.Assignments() {
			s.Send(core.ObjectState{Data: []byte("old")})
		}
		obs.TryNext()
		newer := must[*core.TagExposeContract](t)(ex.ExposeTag(tag("h"), 1))
		time.Sleep(core.DefaultConfig().RebalanceInterval + 10*time.Millisecond)
		synctest.Wait()
		if newer.Load() != 1 {
			t.Fatal("no handover")
		}
		newer.Close()
		if old.Load() != 2 || len(old.Assignments()) != 2 {
			t.Fatalf("old exposer should keep both objects: load %d", old.Load())
		}
		for _, s := range old.Assignments() {
			if err := s.Send(core.ObjectState{Data: []byte("still old")}); err != nil {
				t.Fatal(err)
			}
		}
		if st, _ := obs.Current(); !st.Synchronized {
			t.Fatal("rollback desynchronized the object")
		}
	})
}
