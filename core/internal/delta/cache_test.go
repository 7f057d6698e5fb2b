package delta

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type testKey struct {
	object   uint64
	from, to string
}

// countingCache returns a cache whose encoder counts its calls and, when
// gate is not nil, waits for it to close before computing.
func countingCache(maxBytes int64, gate chan struct{}) (*Cache[testKey], *atomic.Int64) {
	c := NewCache[testKey](maxBytes)
	var calls atomic.Int64
	c.encode = func(dst, from, to []byte) []byte {
		calls.Add(1)
		if gate != nil {
			<-gate
		}
		return Encode(dst, from, to)
	}
	return c, &calls
}

func TestCacheComputesOncePerKey(t *testing.T) {
	gate := make(chan struct{})
	c, calls := countingCache(1<<20, gate)
	from := jsonDoc(10<<10, 1)
	to := mutateDigits(from, 0.01, 2)
	key := testKey{1, VersionKey([]int64{1}), VersionKey([]int64{2})}

	const n = 32
	results := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.Delta(key, from, to)
		}()
	}
	// Let every goroutine reach the cache before the computation ends.
	waitFor(t, func() bool { return c.Stats().Hits+c.Stats().Misses == n })
	close(gate)
	wg.Wait()

	if got := calls.Load(); got != 1 {
		t.Fatalf("%d concurrent requests computed the delta %d times, want 1", n, got)
	}
	for i, r := range results {
		if &r[0] != &results[0][0] {
			t.Fatalf("request %d got its own copy, want the shared delta", i)
		}
	}
	if got, err := Apply(nil, from, results[0], len(to)); err != nil || !bytes.Equal(got, to) {
		t.Fatalf("shared delta does not apply: %v", err)
	}
	// A later request is a hit too; another key is computed.
	c.Delta(key, from, to)
	c.Delta(testKey{2, key.from, key.to}, from, to)
	if got := calls.Load(); got != 2 {
		t.Fatalf("encoder calls = %d, want 2 (one per key)", got)
	}
	if s := c.Stats(); s.Misses != 2 || s.Hits != n || s.Entries != 2 {
		t.Fatalf("stats = %+v, want 2 misses, %d hits, 2 entries", s, n)
	}
}

func TestCacheBound(t *testing.T) {
	from := randomBytes(4<<10, 1) // random: deltas are about 4 KiB each
	to := randomBytes(4<<10, 2)
	one := int64(len(Encode(nil, from, to))) + entryOverhead
	c, calls := countingCache(3*one, nil)
	key := func(i int) testKey { return testKey{object: uint64(i)} }

	for i := range 3 {
		c.Delta(key(i), from, to)
	}
	if s := c.Stats(); s.Entries != 3 || s.Bytes != 3*one || s.Evictions != 0 {
		t.Fatalf("after 3 deltas: %+v, want 3 entries of %d bytes", s, one)
	}
	c.Delta(key(0), from, to) // 0 becomes the most recently used
	c.Delta(key(3), from, to) // evicts 1, the least recently used
	if s := c.Stats(); s.Entries != 3 || s.Bytes > 3*one || s.Evictions != 1 {
		t.Fatalf("after a 4th delta: %+v, want 3 entries and 1 eviction", s)
	}
	before := calls.Load()
	c.Delta(key(0), from, to)
	c.Delta(key(2), from, to)
	c.Delta(key(3), from, to)
	if calls.Load() != before {
		t.Fatal("a delta that should still be cached was computed again")
	}
	c.Delta(key(1), from, to)
	if calls.Load() != before+1 {
		t.Fatal("the evicted delta was not computed again")
	}

	// Larger than the whole bound: returned, not kept, nothing evicted.
	small, _ := countingCache(one/2, nil)
	if d := small.Delta(key(9), from, to); len(d) == 0 {
		t.Fatal("oversized delta not returned")
	}
	if s := small.Stats(); s.Entries != 0 || s.Bytes != 0 {
		t.Fatalf("oversized delta kept: %+v", s)
	}
}

func TestCacheManySmallEntriesBounded(t *testing.T) {
	c, _ := countingCache(64<<10, nil)
	for i := range 5000 {
		c.Delta(testKey{object: uint64(i)}, nil, nil)
	}
	if s := c.Stats(); s.Bytes > 64<<10 || s.Entries > (64<<10)/entryOverhead {
		t.Fatalf("stats %+v exceed the 64 KiB bound", s)
	}
}

func TestCacheForget(t *testing.T) {
	c, calls := countingCache(1<<20, nil)
	for obj := range 4 {
		for v := range 3 {
			c.Delta(testKey{uint64(obj), VersionKey([]int64{int64(v)}), VersionKey([]int64{int64(v + 1)})}, nil, []byte("x"))
		}
	}
	c.Forget(func(k testKey) bool { return k.object == 2 })
	if s := c.Stats(); s.Entries != 9 {
		t.Fatalf("after forgetting one object of 4: %d entries, want 9", s.Entries)
	}
	before := calls.Load()
	c.Delta(testKey{1, VersionKey([]int64{0}), VersionKey([]int64{1})}, nil, []byte("x"))
	c.Delta(testKey{2, VersionKey([]int64{0}), VersionKey([]int64{1})}, nil, []byte("x"))
	if calls.Load() != before+1 {
		t.Fatal("Forget dropped the wrong deltas")
	}
}

func TestCachePanicReleasesWaiters(t *testing.T) {
	gate := make(chan struct{})
	c := NewCache[int](1 << 20)
	c.encode = func(dst, from, to []byte) []byte {
		<-gate
		panic("boom")
	}
	var waiterDone atomic.Bool
	go func() {
		defer func() { recover() }()
		c.Delta(1, nil, nil)
	}()
	waitFor(t, func() bool { return c.Stats().Misses == 1 })
	go func() {
		c.Delta(1, nil, nil) // waits for the computation above
		waiterDone.Store(true)
	}()
	waitFor(t, func() bool { return c.Stats().Hits == 1 })
	close(gate)
	waitFor(t, waiterDone.Load)
	c.encode = Encode
	if d := c.Delta(1, nil, []byte("x")); len(d) == 0 {
		t.Fatal("the key stayed broken after a failed computation")
	}
}

func TestVersionKey(t *testing.T) {
	seen := map[string][]int64{}
	for _, v := range [][]int64{nil, {0}, {0, 0}, {1}, {-1}, {1, 5}, {15}, {1 << 40, -3}, {-1 << 63}} {
		k := VersionKey(v)
		if prev, ok := seen[k]; ok {
			t.Fatalf("versions %v and %v share key %q", prev, v, k)
		}
		seen[k] = v
	}
}

// waitFor polls cond until it holds, failing the test after 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func ExampleCache() {
	type key struct {
		object   string
		from, to string
	}
	cache := NewCache[key](64 << 20)
	v1 := []byte(`{"temperature":21.5,"humidity":40}`)
	v2 := []byte(`{"temperature":21.7,"humidity":40}`)
	k := key{"sensor-12", VersionKey([]int64{1}), VersionKey([]int64{2})}

	d := cache.Delta(k, v1, v2) // computed
	_ = cache.Delta(k, v1, v2)  // shared by a second link
	got, err := Apply(nil, v1, d, len(v2))
	fmt.Println(string(got), err, cache.Stats().Misses, cache.Stats().Hits)
	// Output: {"temperature":21.7,"humidity":40} <nil> 1 1
}
