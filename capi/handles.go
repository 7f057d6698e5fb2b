package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// kind tells what a handle names. It is stored in the handle itself, so a
// handle of the wrong kind is refused before the table is even read.
type kind uint8

// Handle kinds. Never renumber one: handles are opaque, but a program that
// prints one should see the same layout in every version.
const (
	kindExchange kind = 1 + iota
	kindObjectDescriptor
	kindTagDescriptor
	kindObjectState
	kindObjectObserve
	kindObjectExpose
	kindTagObserve
	kindTagExpose
	kindSink
	kindConnector
	kindListener
	kindLast = kindListener
)

var kindNames = [...]string{
	kindExchange:         "exchange",
	kindObjectDescriptor: "object descriptor",
	kindTagDescriptor:    "tag descriptor",
	kindObjectState:      "object state",
	kindObjectObserve:    "object observe contract",
	kindObjectExpose:     "object expose contract",
	kindTagObserve:       "tag observe contract",
	kindTagExpose:        "tag expose contract",
	kindSink:             "object state sink",
	kindConnector:        "connector",
	kindListener:         "listener",
}

func (k kind) String() string {
	if k >= 1 && k <= kindLast {
		return kindNames[k]
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// A handle is a uint64:
//
//	bits 56..63  kind
//	bits 32..55  generation of the slot (1 .. 2^24-1)
//	bits  0..31  slot index + 1 (so 0 is never a handle)
//
// A slot's generation grows every time its handle is dropped, so a stale
// copy of the handle no longer matches; a slot whose generation would wrap
// is retired for good instead of being reused, so a stale handle can never
// come back to life (ABA).
const (
	pageBits = 12
	pageSize = 1 << pageBits
	maxPages = 1 << 14 // up to 64 Mi handles alive at once
	genBits  = 24
	genMax   = 1<<genBits - 1
)

// table is the library's handle table: it maps handles to Go values, so
// that C holds only integers (no Go pointer is ever handed to C, and a bad
// handle is an error code instead of a crash).
//
// Lookups take no lock: the slots live in fixed pages that are never freed
// or moved, and each slot holds an atomic pointer to an immutable entry.
// Adding and removing take mu, which also guards gens and free.
type table struct {
	pages [maxPages]atomic.Pointer[page]

	mu   sync.Mutex
	gens []uint32 // generation the next handle of each slot gets; 0 = retired
	free []uint32 // free slot indexes, oldest first (FIFO spreads reuse)
	head int      // free[head:] are the free slots
	live int
}

type page [pageSize]atomic.Pointer[entry]

// entry is embedded in every value the table holds (so adding one costs no
// extra allocation); obj points back to the value itself. h never changes
// once the entry is published.
type entry struct {
	h   uint64
	obj any
}

func (e *entry) ent() *entry { return e }

// handleObj is a value the table can hold: anything embedding entry.
type handleObj interface{ ent() *entry }

// handles is the process-wide table. The C ABI has no context argument, so
// the table is necessarily global; everything else hangs off it.
var handles table

func (t *table) slot(idx uint32) *atomic.Pointer[entry] {
	p := t.pages[idx>>pageBits].Load()
	if p == nil {
		return nil
	}
	return &p[idx&(pageSize-1)]
}

// add stores obj and returns its new handle, or 0 when the table is full.
// A value is added once.
func (t *table) add(k kind, obj handleObj) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var idx uint32
	if t.head < len(t.free) {
		idx = t.free[t.head]
		t.head++
		if t.head >= 1024 && t.head*2 >= len(t.free) {
			n := copy(t.free, t.free[t.head:])
			t.free = t.free[:n]
			t.head = 0
		}
	} else {
		n := len(t.gens)
		if n >= maxPages*pageSize {
			return 0
		}
		idx = uint32(n)
		if idx&(pageSize-1) == 0 {
			t.pages[idx>>pageBits].Store(new(page))
		}
		t.gens = append(t.gens, 1)
	}
	h := uint64(k)<<56 | uint64(t.gens[idx])<<32 | uint64(idx+1)
	e := obj.ent()
	e.h, e.obj = h, obj
	t.slot(idx).Store(e)
	t.live++
	return h
}

// get returns the value of h if h is a live handle of kind k, else nil.
// It takes no lock.
func (t *table) get(h uint64, k kind) any {
	if kind(h>>56) != k {
		return nil
	}
	idx := uint32(h) - 1 // 0 wraps to 2^32-1, out of range
	if idx>>pageBits >= maxPages {
		return nil
	}
	s := t.slot(idx)
	if s == nil {
		return nil
	}
	e := s.Load()
	if e == nil || e.h != h {
		return nil
	}
	return e.obj
}

// remove invalidates h and returns its value, or nil if h is not a live
// handle of kind k. Exactly one of concurrent removes of h succeeds.
func (t *table) remove(h uint64, k kind) any {
	if kind(h>>56) != k {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	idx := uint32(h) - 1
	if int64(idx) >= int64(len(t.gens)) {
		return nil
	}
	s := t.slot(idx)
	e := s.Load()
	if e == nil || e.h != h {
		return nil
	}
	s.Store(nil)
	if g := t.gens[idx] + 1; g > genMax {
		t.gens[idx] = 0 // retired: never handed out again
	} else {
		t.gens[idx] = g
		t.free = append(t.free, idx)
	}
	t.live--
	return e.obj
}

// explain says why h is not a live handle of kind k (for the error message).
func (t *table) explain(h uint64, k kind) string {
	if h == 0 {
		return fmt.Sprintf("invalid handle 0: 0 is never a handle (expected %s %s handle)", article(k), k)
	}
	hk := kind(h >> 56)
	if hk < 1 || hk > kindLast {
		return fmt.Sprintf("invalid handle %#x: not a handle of this library", h)
	}
	if hk != k {
		return fmt.Sprintf("invalid handle %#x: it is %s %s handle, not %s %s handle", h, article(hk), hk, article(k), k)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	idx := uint32(h) - 1
	gen := uint32(h>>32) & genMax
	if int64(idx) >= int64(len(t.gens)) || gen == 0 {
		return fmt.Sprintf("invalid handle %#x: unknown %s handle", h, k)
	}
	if cur := t.gens[idx]; cur == 0 || gen < cur {
		return fmt.Sprintf("invalid handle %#x: stale %s handle (already dropped)", h, k)
	}
	// gen >= cur: never handed out yet (or made valid meanwhile, by a
	// forger racing us; then it is still not the caller's).
	return fmt.Sprintf("invalid handle %#x: unknown %s handle", h, k)
}

func article(k kind) string {
	if s := k.String(); s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an"
	}
	return "a"
}

// count returns the number of live handles (for tests).
func (t *table) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live
}
