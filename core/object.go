package core

import "sync/atomic"

// stateBox is one published, immutable state. The generated version lives
// in the same allocation, so a Send costs one allocation.
type stateBox struct {
	ObjectState
	ver [1]int64
}

// state returns o's newest state (zero when none). Safe without the mutex.
func (o *object) state() ObjectState {
	if b := o.cur.Load(); b != nil {
		return b.ObjectState
	}
	return ObjectState{}
}

// publish replaces o's state with st. Called with the exchange's mutex held.
func (o *object) publish(st ObjectState) {
	o.cur.Store(&stateBox{ObjectState: st})
}

// object is the exchange's record of one object descriptor. It exists while
// an object contract names it or while it is live. All fields are guarded by
// the exchange's mutex.
//
// The record is kept small (one is made per object, and a router may carry
// millions): observers read the state from here instead of holding copies.
type object struct {
	desc ObjectDescriptor
	// cur is the newest state, nil while there is none. Writers replace it
	// (never modify a published box) with the exchange's mutex held;
	// object observers load it without the mutex, so a busy writer cannot
	// starve them (see ObjectObserveContract.TryNext).
	cur atomic.Pointer[stateBox]
	// observers receive state changes: object observe contracts always,
	// tag observe contracts while the object is live, and (later) network
	// links. One list, so delivery has one code path.
	observers []observer
	// exposers are the object expose contracts naming this object; tag
	// exposers are found through the exchange's tag index.
	exposers []candidate
	// assigned is the elected exposer's sink; previous is the sink of the
	// exposer being replaced during a planned handover (it may still write
	// until assigned writes or the handover times out).
	assigned *ObjectStateSink
	previous *ObjectStateSink
	// token numbers assignments of this object: each new sink gets a larger
	// one, so a write can be traced to the assignment it went through.
	token        uint64
	objObservers int32
	live         bool
	// upAssigned: the upstream elected this exchange's subtree to expose
	// the object (meaningful while an upstream governs, see network.go).
	upAssigned bool
	// upUnexposed: the upstream, which feeds the object, has no exposer
	// elected for it (ObjectUnexposed, protocol 1.1).
	upUnexposed bool
	// exposed mirrors "an exposer is elected, here or upstream" for the
	// links that forward it downstream without the mutex (noteExposer).
	exposed atomic.Bool
}

// hasExposer reports whether o has an elected exposer: an assignment here
// and, for an object fed from upstream, one upstream too. Called with the
// exchange's mutex held.
func (o *object) hasExposer() bool { return o.assigned != nil && !o.upUnexposed }

// observed reports whether anybody wants o's state, which is what makes an
// exposer produce it (lazy exposing).
func (o *object) observed() bool { return o.live && len(o.observers) > 0 }

// observer is anything that receives an object's state changes. Local
// contracts implement it; so will network links. Methods are called with the
// exchange's mutex held and must not block.
type observer interface {
	// stateChanged: o.state changed (new data, or only its sync flag).
	stateChanged(o *object)
	// attach: o became live and the observer was added to o.observers
	// (tag observers only; object observers attach themselves).
	attach(o *object)
	// detach: o stops being live for this observer.
	detach(o *object)
}
