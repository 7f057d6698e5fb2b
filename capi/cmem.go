package main

/*
#include "shim.h"
*/
import "C"

import (
	"sync"
	"unsafe"
)

// C memory helpers. Everything C reads from the library lives in C memory
// (malloc), owned by a handle and released when it is dropped: no Go
// pointer is ever handed to C.
//
// Handle-owned memory goes through a small cache of freed blocks (blockAlloc
// / blockFree), because a received state's data copy is usually small and
// each malloc or free is a Go-to-C call (~40 ns here), a fifth of the cost
// of receiving a state. The cache is a fixed array in a global, so that it
// lives in the library's data segment, where LeakSanitizer looks for
// pointers: cached blocks are not reported as leaks, while a handle nobody
// dropped (whose memory is referenced only from the Go heap) still is.

var blockSizes = [...]int{64, 256, 1024, 4096}

// blockCacheMax bounds each class: at most ~5.3 MiB is kept in all.
const blockCacheMax = 1024

type blockClass struct {
	mu   sync.Mutex
	n    int
	free [blockCacheMax]unsafe.Pointer
}

var blockCache [len(blockSizes)]blockClass

func blockClassOf(n int) int {
	for i, s := range blockSizes {
		if n <= s {
			return i
		}
	}
	return -1
}

// blockAlloc returns C memory for at least n bytes (nil if malloc fails).
// Release it with blockFree(p, n), with the same n.
func blockAlloc(n int) unsafe.Pointer {
	c := blockClassOf(n)
	if c < 0 {
		return C.hakuban__malloc(C.size_t(n))
	}
	b := &blockCache[c]
	b.mu.Lock()
	if b.n > 0 {
		b.n--
		p := b.free[b.n]
		b.free[b.n] = nil
		b.mu.Unlock()
		return p
	}
	b.mu.Unlock()
	return C.hakuban__malloc(C.size_t(blockSizes[c]))
}

// blockFree releases memory from blockAlloc(n); nil is fine.
func blockFree(p unsafe.Pointer, n int) {
	if p == nil {
		return
	}
	if c := blockClassOf(n); c >= 0 {
		b := &blockCache[c]
		b.mu.Lock()
		if b.n < blockCacheMax {
			b.free[b.n] = p
			b.n++
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
	C.free(p)
}

// blockBytes copies b into C memory from blockAlloc(len(b)+1), with a NUL
// after it (so text can be handed out as a C string); nil if malloc fails.
func blockBytes(b []byte) unsafe.Pointer {
	p := blockAlloc(len(b) + 1)
	if p != nil {
		fill(p, b)
	}
	return p
}

// cBytes is blockBytes with plain malloc, for memory the caller frees
// (hakuban_string_free).
func cBytes(b []byte) unsafe.Pointer {
	p := C.hakuban__malloc(C.size_t(len(b) + 1))
	if p != nil {
		fill(p, b)
	}
	return p
}

func fill(p unsafe.Pointer, b []byte) {
	dst := unsafe.Slice((*byte)(p), len(b)+1)
	copy(dst, b)
	dst[len(b)] = 0
}

// cText is a Go string handed to C on demand: copied into C memory by the
// first accessor call, released when the owning handle is dropped. Guarded
// by the owner's mutex.
type cText struct {
	p *C.char
	n int
}

func (t *cText) get(s string) *C.char {
	if t.p == nil {
		t.p = (*C.char)(blockBytes(unsafe.Slice(unsafe.StringData(s), len(s))))
		t.n = len(s) + 1
	}
	return t.p
}

func (t *cText) free() {
	blockFree(unsafe.Pointer(t.p), t.n)
	t.p = nil
}

// cString copies s into a new malloc'd C string (freed by the receiver with
// free), nil when malloc fails.
func cString(s string) *C.char {
	return (*C.char)(cBytes(unsafe.Slice(unsafe.StringData(s), len(s))))
}

// goString reads a NUL-terminated C string into a Go string (a copy).
func goString(p *C.hakuban_cchar) string {
	return C.GoString((*C.char)(unsafe.Pointer(p)))
}

// cfree frees malloc'd C memory; nil is fine.
func cfree(p unsafe.Pointer) {
	if p != nil {
		C.free(p)
	}
}
