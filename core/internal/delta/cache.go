package delta

import (
	"container/list"
	"encoding/binary"
	"sync"
)

// entryOverhead is what one cached delta costs besides its bytes (map slot,
// list element, entry, key), counted against the cache bound so that many
// tiny deltas cannot grow memory without limit.
const entryOverhead = 128

// Cache computes each delta once and shares it: when several links need
// the delta from version A to version B of one object, the first caller
// computes it and the others (including concurrent ones, which wait) get the
// same bytes. K identifies (object, from version, to version); VersionKey
// turns versions into comparable strings for it.
//
// The cache holds at most its byte bound of deltas (plus entryOverhead per
// entry) and evicts the least recently used first. A delta larger than the
// bound is computed and returned but not kept. Deltas being computed are not
// counted. A Cache is safe for concurrent use; the zero value is not usable.
type Cache[K comparable] struct {
	maxBytes int64
	// encode computes a delta; it is Encode except in tests that count
	// calls.
	encode func(dst, from, to []byte) []byte

	mu      sync.Mutex
	entries map[K]*cacheEntry[K] // guarded by mu
	lru     list.List            // of *cacheEntry[K], most recent first; guarded by mu
	bytes   int64                // guarded by mu
	stats   CacheStats           // guarded by mu
}

// cacheEntry is one delta, present in entries from the first request. ready
// is closed once data is set; after that data never changes.
type cacheEntry[K comparable] struct {
	key   K
	ready chan struct{}
	data  []byte
	elem  *list.Element // in lru once ready and kept; guarded by Cache.mu
}

// CacheStats counts what a Cache did, for metrics.
type CacheStats struct {
	Hits      uint64 // requests answered from the cache or by waiting for a computation in progress
	Misses    uint64 // deltas computed
	Evictions uint64 // deltas dropped to respect the bound
	Entries   int    // deltas held now
	Bytes     int64  // bytes held now, overhead included
}

// NewCache returns a Cache holding at most maxBytes of deltas.
func NewCache[K comparable](maxBytes int64) *Cache[K] {
	return &Cache[K]{
		maxBytes: maxBytes,
		encode:   Encode,
		entries:  make(map[K]*cacheEntry[K]),
	}
}

// Delta returns the delta from from to to, computing it with Encode on the
// first request for key. Every caller with the same key must pass the same
// from and to. The returned slice is shared: callers must not modify it.
func (c *Cache[K]) Delta(key K, from, to []byte) []byte {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.stats.Hits++
		if e.elem != nil {
			c.lru.MoveToFront(e.elem)
		}
		c.mu.Unlock()
		<-e.ready
		return e.data
	}
	e := &cacheEntry[K]{key: key, ready: make(chan struct{})}
	c.entries[key] = e
	c.stats.Misses++
	c.mu.Unlock()

	// Compute without the lock. If encode panics, waiters must not hang:
	// remove the entry and release them with no data; the panic goes on.
	done := false
	defer func() {
		if !done {
			c.mu.Lock()
			delete(c.entries, key)
			c.mu.Unlock()
			close(e.ready)
		}
	}()
	data := c.encode(nil, from, to)
	done = true

	c.mu.Lock()
	e.data = data
	close(e.ready)
	size := int64(len(data)) + entryOverhead
	if size > c.maxBytes {
		delete(c.entries, key) // too large to keep
	} else {
		e.elem = c.lru.PushFront(e)
		c.bytes += size
		for c.bytes > c.maxBytes {
			c.evictOldestLocked()
		}
	}
	c.mu.Unlock()
	return data
}

// evictOldestLocked drops the least recently used delta. c.mu must be held
// and the lru list must not be empty.
func (c *Cache[K]) evictOldestLocked() {
	old := c.lru.Back().Value.(*cacheEntry[K])
	c.lru.Remove(old.elem)
	old.elem = nil
	delete(c.entries, old.key)
	c.bytes -= int64(len(old.data)) + entryOverhead
	c.stats.Evictions++
}

// Forget drops every delta for which match returns true, for example all
// deltas of an object that is no longer live. Deltas being computed are not
// affected. match runs without the cache's lock held.
func (c *Cache[K]) Forget(match func(K) bool) {
	c.mu.Lock()
	held := make([]*cacheEntry[K], 0, c.lru.Len())
	for el := c.lru.Front(); el != nil; el = el.Next() {
		held = append(held, el.Value.(*cacheEntry[K]))
	}
	c.mu.Unlock()

	drop := held[:0]
	for _, e := range held {
		if match(e.key) {
			drop = append(drop, e)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range drop {
		if e.elem == nil {
			continue // evicted meanwhile
		}
		c.lru.Remove(e.elem)
		e.elem = nil
		delete(c.entries, e.key)
		c.bytes -= int64(len(e.data)) + entryOverhead
	}
}

// Stats returns the cache's counters.
func (c *Cache[K]) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = c.lru.Len()
	s.Bytes = c.bytes
	return s
}

// VersionKey returns a compact string identifying a version (a sequence of
// int64), for use in cache keys. Distinct versions give distinct strings.
func VersionKey(v []int64) string {
	var buf [64]byte
	b := buf[:0]
	for _, x := range v {
		b = binary.AppendVarint(b, x)
	}
	return string(b)
}
