package core

import (
	"cmp"
	"slices"
	"time"

	"github.com/hakuban/hakuban/core/internal/canon"
)

// Status tells a contract's owner why states or assignments are (not)
// arriving (SPEC §4).
type Status int

// Contract statuses.
const (
	// StatusActive: observers receive fresh states; exposers are elected.
	StatusActive Status = iota
	// StatusWaitingForExposer: the object is observed but nobody can expose it.
	StatusWaitingForExposer
	// StatusNoObservers: the exposer is not needed: nobody observes its objects.
	StatusNoObservers
	// StatusStandby: the object is observed, but another exposer is elected.
	StatusStandby
	// StatusStale: an exposer is elected but the state is missing or not synchronized.
	StatusStale
	// StatusIdle: a tag observer with no live object carrying its tag.
	StatusIdle
	// StatusClosed: the contract was closed.
	StatusClosed
	// StatusRefused: the network refused the contract (permissions).
	StatusRefused
)

var statusNames = [...]string{"active", "waiting_for_exposer", "no_observers", "standby", "stale", "idle", "closed", "refused"}

// String returns the status name used in snapshots, e.g. "waiting_for_exposer".
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Snapshot is a structured picture of an exchange at one moment.
type Snapshot struct {
	Name      string             `json:"name"`
	Objects   []ObjectSnapshot   `json:"objects"`
	Tags      []TagSnapshot      `json:"tags"`
	Contracts []ContractSnapshot `json:"contracts"`
	Links     []LinkSnapshot     `json:"links"`
	Counters  Counters           `json:"counters"`
}

// LinkSnapshot describes one network link.
type LinkSnapshot struct {
	// Peer is the other exchange's name from the handshake.
	Peer string `json:"peer"`
	// Role is "upstream" when the peer is our upstream, else "downstream".
	Role      string `json:"role"`
	BytesIn   uint64 `json:"bytes_in"`
	BytesOut  uint64 `json:"bytes_out"`
	FramesIn  uint64 `json:"frames_in"`
	FramesOut uint64 `json:"frames_out"`
	// Objects is how many objects the link carries contracts or state for.
	Objects int `json:"objects"`
}

// ObjectSnapshot describes one object the exchange knows.
type ObjectSnapshot struct {
	Descriptor ObjectDescriptor `json:"descriptor"`
	Live       bool             `json:"live"`
	Observed   bool             `json:"observed"`
	Observers  int              `json:"observers"`
	Candidates int              `json:"candidates"`
	// Exposer is the ID of the elected contract, 0 when none.
	Exposer uint64 `json:"exposer,omitempty"`
	// HandoverFrom is the ID of the previous exposer during a handover.
	HandoverFrom uint64   `json:"handover_from,omitempty"`
	Token        uint64   `json:"token"`
	Version      Version  `json:"version"`
	Format       []string `json:"format,omitempty"`
	Size         int      `json:"size"`
	Synchronized bool     `json:"synchronized"`
	// UnsynchronizedForMs is how long the state has not been synchronized.
	UnsynchronizedForMs int64 `json:"unsynchronized_for_ms,omitempty"`
}

// TagSnapshot describes one tag the exchange knows.
type TagSnapshot struct {
	Tag       TagDescriptor `json:"tag"`
	Objects   int           `json:"objects"`
	Observers int           `json:"observers"`
	Exposers  int           `json:"exposers"`
}

// ContractSnapshot describes one open contract.
type ContractSnapshot struct {
	ID       uint64            `json:"id"`
	Kind     string            `json:"kind"`
	Object   *ObjectDescriptor `json:"object,omitempty"`
	Tag      *TagDescriptor    `json:"tag,omitempty"`
	Capacity int               `json:"capacity,omitempty"`
	Load     int               `json:"load,omitempty"`
	Objects  int               `json:"objects,omitempty"`
	Status   string            `json:"status"`
	Pending  bool              `json:"pending"`
}

// Snapshot returns a picture of the exchange, sorted for stable output.
func (ex *Exchange) Snapshot() Snapshot {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	now := time.Now()
	s := Snapshot{Name: ex.cfg.Name, Counters: ex.counters}
	s.Counters.BytesSaved = ex.payloads.saved.Load()
	ds := ex.payloads.deltas.Stats()
	s.Counters.DeltasComputed, s.Counters.DeltaCacheHits = ds.Misses, ds.Hits
	// Empty lists stay lists in JSON (not null).
	s.Objects = make([]ObjectSnapshot, 0, len(ex.objects))
	s.Tags = make([]TagSnapshot, 0, len(ex.tags))
	s.Contracts = []ContractSnapshot{}
	s.Links = make([]LinkSnapshot, 0, len(ex.links))
	for _, o := range ex.objects {
		st := o.state()
		os := ObjectSnapshot{
			Descriptor: o.desc, Live: o.live, Observed: o.observed(),
			Observers: len(o.observers), Token: o.token,
			Version: st.Version, Format: st.Format, Size: len(st.Data),
			Synchronized: st.Synchronized,
		}
		ex.forEachCandidate(o, func(candidate) { os.Candidates++ })
		if o.assigned != nil {
			os.Exposer = o.assigned.owner.base().id
		}
		if o.previous != nil {
			os.HandoverFrom = o.previous.owner.base().id
		}
		if !st.IsZero() && !st.Synchronized && !st.LastSynchronized.IsZero() {
			os.UnsynchronizedForMs = now.Sub(st.LastSynchronized).Milliseconds()
		}
		s.Objects = append(s.Objects, os)
	}
	slices.SortFunc(s.Objects, func(a, b ObjectSnapshot) int { return cmp.Compare(a.Descriptor.Key(), b.Descriptor.Key()) })
	for t, e := range ex.tags {
		s.Tags = append(s.Tags, TagSnapshot{Tag: t, Objects: len(e.objects), Observers: len(e.observers), Exposers: len(e.exposers)})
	}
	slices.SortFunc(s.Tags, func(a, b TagSnapshot) int { return a.Tag.Compare(b.Tag) })
	for _, c := range ex.allContracts() {
		s.Contracts = append(s.Contracts, c.snapshot())
	}
	slices.SortFunc(s.Contracts, func(a, b ContractSnapshot) int { return cmp.Compare(a.ID, b.ID) })
	for l := range ex.links {
		s.Links = append(s.Links, l.snapshot())
	}
	slices.SortFunc(s.Links, func(a, b LinkSnapshot) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.Peer, b.Peer))
	})
	return s
}

// SnapshotJSON returns Snapshot encoded as JSON.
func (ex *Exchange) SnapshotJSON() ([]byte, error) {
	return canon.Marshal(ex.Snapshot())
}
