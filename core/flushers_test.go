package core

import (
	"slices"
	"testing"
)

// TestFlushersQueue: every link queued is handed out once, in order, while
// links keep being queued during the draining (a fan-out that outruns the
// flushers, which compacts the queue), and a link queued twice before it
// is flushed is handed out once.
func TestFlushersQueue(t *testing.T) {
	f := &flushers{wake: make(chan struct{}, 1)}
	links := make([]*link, 5000)
	for i := range links {
		links[i] = &link{}
	}
	var got []*link
	next := 0
	for round := 0; len(got) < len(links); round++ {
		// Queue up to three links (one of them twice), take two.
		for range 3 {
			if next < len(links) {
				f.add(links[next])
				f.add(links[next])
				next++
			}
		}
		for range 2 {
			if l := f.next(); l != nil {
				got = append(got, l)
			}
		}
		if round > 3*len(links) {
			t.Fatalf("%d of %d links handed out", len(got), len(links))
		}
	}
	for i, l := range got {
		if l != links[i] {
			t.Fatalf("link %d handed out at position %d", slices.Index(links, l), i)
		}
	}
	if l := f.next(); l != nil {
		t.Fatal("a link handed out twice")
	}
	if len(f.queue) != 0 || f.head != 0 {
		t.Fatalf("drained queue holds %d entries from %d", len(f.queue), f.head)
	}
	for i, l := range links {
		if l.flushQueued {
			t.Fatalf("link %d still marked queued", i)
		}
	}
	if cap(f.queue) > 4096 {
		t.Errorf("queue array of %d for a backlog of at most %d", cap(f.queue), len(links))
	}
}
