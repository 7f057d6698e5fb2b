package main

import (
	"strings"
	"sync"
	"testing"
)

// val is a table value for the tests.
type val struct {
	entry
	v any
}

func v(x any) *val { return &val{v: x} }

// got unwraps a table value (nil stays nil).
func got(x any) any {
	if x == nil {
		return nil
	}
	return x.(*val).v
}

func TestTableLifecycle(t *testing.T) {
	var tb table
	h := tb.add(kindObjectState, v("a"))
	if h == 0 || kind(h>>56) != kindObjectState {
		t.Fatalf("bad handle %#x", h)
	}
	if x := got(tb.get(h, kindObjectState)); x != "a" {
		t.Fatalf("get = %v", x)
	}
	if x := tb.get(h, kindExchange); x != nil {
		t.Fatalf("wrong kind found %v", x)
	}
	if x := got(tb.remove(h, kindObjectState)); x != "a" {
		t.Fatalf("remove = %v", x)
	}
	if x := tb.remove(h, kindObjectState); x != nil {
		t.Fatal("double remove succeeded")
	}
	if x := tb.get(h, kindObjectState); x != nil {
		t.Fatal("stale handle found")
	}
	// The slot is reused with a new generation: the old handle stays dead.
	h2 := tb.add(kindObjectState, v("b"))
	if uint32(h2) != uint32(h) || h2 == h {
		t.Fatalf("slot not reused with a new generation: %#x then %#x", h, h2)
	}
	if got(tb.get(h, kindObjectState)) != nil || got(tb.get(h2, kindObjectState)) != "b" {
		t.Fatal("generations confused")
	}
	if tb.count() != 1 {
		t.Fatalf("count = %d", tb.count())
	}
}

func TestTableExplain(t *testing.T) {
	var tb table
	h := tb.add(kindTagDescriptor, v(1))
	stale := tb.add(kindTagDescriptor, v(2))
	tb.remove(stale, kindTagDescriptor)
	for _, c := range []struct {
		h    uint64
		k    kind
		want string
	}{
		{0, kindExchange, "0 is never a handle (expected an exchange handle)"},
		{h, kindExchange, "it is a tag descriptor handle, not an exchange handle"},
		{stale, kindTagDescriptor, "stale tag descriptor handle (already dropped)"},
		{h + 1000, kindTagDescriptor, "unknown tag descriptor handle"},
		{h + 1<<32, kindTagDescriptor, "unknown tag descriptor handle"}, // a future generation
		{0xfe << 56, kindTagDescriptor, "not a handle of this library"},
	} {
		if got := tb.explain(c.h, c.k); !strings.Contains(got, c.want) {
			t.Errorf("explain(%#x, %s) = %q, want %q", c.h, c.k, got, c.want)
		}
	}
}

func TestTableRetiresWornOutSlots(t *testing.T) {
	var tb table
	h := tb.add(kindSink, v(1))
	tb.gens[0] = genMax // pretend the slot was reused 2^24 times
	tb.remove(h, kindSink)
	h = tb.add(kindSink, v(2))
	h2 := tb.add(kindSink, v(3))
	tb.remove(h, kindSink)
	tb.remove(h2, kindSink)
	if tb.gens[0] != 0 {
		t.Fatalf("slot 0 generation %d, want retired (0)", tb.gens[0])
	}
	for i := 0; i < 10; i++ {
		if h := tb.add(kindSink, v(i)); uint32(h) == 1 {
			t.Fatal("a retired slot was reused")
		}
	}
}

func TestTableConcurrent(t *testing.T) {
	var tb table
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []uint64
			for i := 0; i < 5000; i++ {
				h := tb.add(kindObjectState, v(i))
				mine = append(mine, h)
				if got(tb.get(h, kindObjectState)) != i {
					t.Error("lost my value")
					return
				}
				if i%3 == 0 {
					victim := mine[len(mine)/2]
					if got(tb.remove(victim, kindObjectState)) != nil {
						mine = append(mine[:len(mine)/2], mine[len(mine)/2+1:]...)
					}
				}
			}
			for _, h := range mine {
				if got(tb.remove(h, kindObjectState)) == nil {
					t.Error("a live handle was gone")
				}
			}
		}()
	}
	wg.Wait()
	if n := tb.count(); n != 0 {
		t.Fatalf("%d handles left", n)
	}
}

func TestTableFillsPages(t *testing.T) {
	var tb table
	var hs []uint64
	for i := 0; i < 3*pageSize+5; i++ {
		hs = append(hs, tb.add(kindExchange, v(i)))
	}
	for i, h := range hs {
		if got(tb.get(h, kindExchange)) != i {
			t.Fatalf("handle %d lost", i)
		}
	}
}
