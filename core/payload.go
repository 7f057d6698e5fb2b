package core

import (
	"sync"
	"sync/atomic"

	"github.com/hakuban/hakuban/core/internal/delta"
)

// payloads shares the encoded forms of states between the exchange's links:
// a state sent to a thousand observers is compressed once, and a delta
// between two versions is computed once however many links need it.
//
// Locking: mu is taken without the exchange's lock, or inside it (forget);
// never the other way round.
type payloads struct {
	mu sync.Mutex
	// zstd holds the newest compressed state per object: links send the
	// newest state, so one entry per object suffices.
	zstd   map[string]compressedState
	deltas *delta.Cache[string]
	saved  atomic.Uint64 // bytes not sent thanks to compression and deltas
}

type compressedState struct {
	version Version
	data    []byte
}

// deltaCacheBytes bounds the shared delta cache.
const deltaCacheBytes = 64 << 20

func newPayloads() *payloads {
	return &payloads{zstd: map[string]compressedState{}, deltas: delta.NewCache[string](deltaCacheBytes)}
}

// compressed returns st's data compressed, computing it once per version.
func (p *payloads) compressed(d ObjectDescriptor, st ObjectState) []byte {
	p.mu.Lock()
	if c, ok := p.zstd[d.Key()]; ok && c.version.Compare(st.Version) == 0 {
		p.mu.Unlock()
		return c.data
	}
	p.mu.Unlock()
	z := delta.Compress(nil, st.Data)
	p.mu.Lock()
	if c, ok := p.zstd[d.Key()]; !ok || c.version.Compare(st.Version) < 0 {
		p.zstd[d.Key()] = compressedState{st.Version, z}
	}
	p.mu.Unlock()
	return z
}

// delta returns the delta from (fromVersion, from) to st.
func (p *payloads) delta(d ObjectDescriptor, fromVersion Version, from []byte, st ObjectState) []byte {
	key := d.Key() + "\x00" + delta.VersionKey(fromVersion) + "\x00" + delta.VersionKey(st.Version)
	return p.deltas.Delta(key, from, st.Data)
}

// forget drops what is kept for an object the exchange forgot.
func (p *payloads) forget(d ObjectDescriptor) {
	p.mu.Lock()
	delete(p.zstd, d.Key())
	p.mu.Unlock()
}
