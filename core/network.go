package core

import "github.com/hakuban/hakuban/core/internal/wire"

// This file holds the exchange's seams for network links (SPEC §3). A link
// takes part through ordinary contracts, made on behalf of the other side:
//
//   - A downstream link (at the upstream exchange) makes, for its subtree's
//     aggregated declarations, object/tag observe and expose contracts with
//     origin originDownstream. Its observe contracts feed states down; its
//     expose contracts are candidates with the subtree's summed capacity, and
//     their sinks carry the subtree's states up.
//   - The upstream link (at the downstream exchange) makes, with origin
//     originUpstream, an object expose contract for each object the upstream
//     feeds (its sink relays the upstream's states), and an object observe
//     contract for each object the upstream assigned to this subtree (it
//     carries the subtree's states up).
//
// While an upstream governs (its link is up), it decides every election for
// the subtree: an object the upstream assigned here is elected among the
// local and downstream candidates; any other object only among the upstream
// link's candidates. When the link is down the exchange decides alone, so a
// partitioned subtree keeps working.

// origin says on whose behalf a contract was made.
type origin uint8

const (
	originLocal      origin = iota // the application
	originDownstream               // a downstream link, for its subtree
	originUpstream                 // the upstream link
)

// upstream is what the exchange keeps for its upstream link. Guarded by mu.
type upstream struct {
	governing bool
	// Declarations that changed since the link last took them.
	dirtyObjects map[*object]struct{}
	dirtyTags    map[TagDescriptor]struct{}
	w            waitable
	// refused are the declarations the upstream refused (refusal.go).
	refused map[declKey]*refusal
}

// objectDecl is the subtree's aggregated wish for one object, as sent upstream.
type objectDecl struct {
	desc    ObjectDescriptor
	observe bool
	expose  int64 // summed capacity, 0 when nobody exposes
	// version held (for re-declaration after a reconnect); nil if none.
	version      Version
	synchronized bool
}

// tagDecl is the subtree's aggregated wish for one tag.
type tagDecl struct {
	tag     TagDescriptor
	observe bool
	expose  int64
}

// eligible reports whether c may be elected for o under the upstream's
// authority. Called with mu held.
func (ex *Exchange) eligible(o *object, c candidate) bool {
	if ex.up == nil || !ex.up.governing {
		return true
	}
	return (c.base().origin == originUpstream) != o.upAssigned
}

// reconsider moves o away from an exposer that is no longer eligible (the
// upstream changed its decision): gap-free when another candidate exists,
// otherwise the assignment ends and the state goes unsynchronized.
func (ex *Exchange) reconsider(o *object) {
	s := o.assigned
	if s == nil || o.previous != nil || ex.eligible(o, s.owner) {
		return
	}
	if c := ex.best(o, nil); c != nil {
		ex.startHandover(o, c)
		return
	}
	o.assigned = nil
	s.owner.base().load--
	ex.revoke(s)
	ex.desynchronize(o)
	ex.noteExposer(o)
}

// declareObject marks o's declaration for the upstream link. Called with mu held.
func (ex *Exchange) declareObject(o *object) {
	if ex.up == nil {
		return
	}
	if len(ex.up.dirtyObjects) == 0 && len(ex.up.dirtyTags) == 0 {
		ex.up.w.signal(ex)
	}
	ex.up.dirtyObjects[o] = struct{}{}
}

// declareTag marks t's declaration for the upstream link. Called with mu held.
func (ex *Exchange) declareTag(t TagDescriptor) {
	if ex.up == nil {
		return
	}
	if len(ex.up.dirtyObjects) == 0 && len(ex.up.dirtyTags) == 0 {
		ex.up.w.signal(ex)
	}
	ex.up.dirtyTags[t] = struct{}{}
}

// objectDeclaration aggregates o's contracts, leaving out the upstream
// link's own (they exist because of the upstream and must not echo back).
func objectDeclaration(o *object) objectDecl {
	st := o.state()
	d := objectDecl{desc: o.desc, version: st.Version, synchronized: st.Synchronized}
	for _, obs := range o.observers {
		if c, ok := obs.(*ObjectObserveContract); ok && c.origin != originUpstream {
			d.observe = true
			break
		}
	}
	for _, c := range o.exposers {
		if b := c.base(); b.origin != originUpstream && !b.removed {
			d.expose += b.capacity
		}
	}
	return d
}

// tagDeclaration aggregates the contracts on tag t.
func (ex *Exchange) tagDeclaration(t TagDescriptor) tagDecl {
	d := tagDecl{tag: t}
	if e := ex.tags[t]; e != nil {
		for _, c := range e.observers {
			if c.origin != originUpstream {
				d.observe = true
			}
		}
		for _, c := range e.exposers {
			if c.origin != originUpstream && !c.removed {
				d.expose += c.capacity
			}
		}
	}
	return d
}

// attachUpstream starts tracking declarations for an upstream link and
// marks everything dirty, so the link (re-)declares the whole subtree. The
// upstream does not govern until setGoverning(true).
func (ex *Exchange) attachUpstream() *upstream {
	ex.mu.Lock()
	defer ex.unlock()
	if ex.up == nil {
		ex.up = &upstream{}
	}
	ex.up.dirtyObjects = make(map[*object]struct{}, len(ex.objects))
	ex.up.dirtyTags = make(map[TagDescriptor]struct{}, len(ex.tags))
	for _, o := range ex.objects {
		ex.up.dirtyObjects[o] = struct{}{}
	}
	for t := range ex.tags {
		ex.up.dirtyTags[t] = struct{}{}
	}
	ex.up.w.signal(ex)
	return ex.up
}

// takeDeclarations returns the declarations that changed since the last
// call (latest wins: a declaration that changed twice is reported once).
func (ex *Exchange) takeDeclarations() ([]objectDecl, []tagDecl) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.up == nil {
		return nil, nil
	}
	objs := make([]objectDecl, 0, len(ex.up.dirtyObjects))
	for o := range ex.up.dirtyObjects {
		d := objectDeclaration(o)
		if !d.observe {
			ex.withdrawn(declKey{kind: wire.ContractObjectObserve, obj: o.desc.Key()})
		}
		if d.expose == 0 {
			ex.withdrawn(declKey{kind: wire.ContractObjectExpose, obj: o.desc.Key()})
		}
		objs = append(objs, d)
	}
	clear(ex.up.dirtyObjects)
	tags := make([]tagDecl, 0, len(ex.up.dirtyTags))
	for t := range ex.up.dirtyTags {
		d := ex.tagDeclaration(t)
		if !d.observe {
			ex.withdrawn(declKey{kind: wire.ContractTagObserve, tag: t})
		}
		if d.expose == 0 {
			ex.withdrawn(declKey{kind: wire.ContractTagExpose, tag: t})
		}
		tags = append(tags, d)
	}
	clear(ex.up.dirtyTags)
	return objs, tags
}

// setGoverning hands election authority to the upstream (true) or takes it
// back (false, when the link is lost). Taking it back clears every
// upstream assignment; the link then closes its contracts, and the objects
// they carried fail over to local candidates.
func (ex *Exchange) setGoverning(on bool) {
	ex.mu.Lock()
	defer ex.unlock()
	if ex.up == nil || ex.up.governing == on {
		return
	}
	ex.up.governing = on
	if !on {
		for _, o := range ex.objects {
			o.upAssigned, o.upUnexposed = false, false
			ex.noteExposer(o)
		}
	}
}

// setUpAssigned records the upstream's decision for d and re-evaluates the
// object's election. It returns false when the exchange does not know d
// (nothing in the subtree names it, which a correct upstream never does).
func (ex *Exchange) setUpAssigned(d ObjectDescriptor, assigned bool) bool {
	ex.mu.Lock()
	defer ex.unlock()
	o := ex.objects[d.Key()]
	if o == nil {
		return false
	}
	if o.upAssigned != assigned {
		o.upAssigned = assigned
		if assigned {
			o.upUnexposed = false // the exposer is in this subtree
		}
		ex.refresh(o)
		ex.noteExposer(o)
	}
	return true
}

// setUpUnexposed records whether the upstream that feeds d has no exposer
// elected for it (ObjectUnexposed / ObjectExposed, protocol 1.1). Observers
// here then report StatusWaitingForExposer rather than StatusStale, and
// downstream links pass it on.
func (ex *Exchange) setUpUnexposed(d ObjectDescriptor, unexposed bool) {
	ex.mu.Lock()
	defer ex.unlock()
	if o := ex.objects[d.Key()]; o != nil && o.upUnexposed != unexposed {
		o.upUnexposed = unexposed
		ex.noteExposer(o)
	}
}

// detachUpstream stops tracking declarations.
func (ex *Exchange) detachUpstream() {
	ex.mu.Lock()
	defer ex.unlock()
	if ex.up != nil {
		ex.clearRefusals()
		ex.up.governing = false
		ex.up.w.closed = true
		ex.up.w.signal(ex)
		ex.up = nil
		for _, o := range ex.objects {
			o.upAssigned = false
		}
	}
}

// Relay publishes a state received from the network, keeping its version
// and synchronized fields as the origin set them. Only links use it.
func (s *ObjectStateSink) relay(st ObjectState) error { return s.write(st) }

// seedState makes st the current state of d if it is newer than what the
// exchange holds: the upstream's last state of an object assigned to this
// subtree. It reports whether d is known.
func (ex *Exchange) seedState(d ObjectDescriptor, st ObjectState) bool {
	ex.mu.Lock()
	defer ex.unlock()
	o := ex.objects[d.Key()]
	if o == nil {
		return false
	}
	if st.Version.Compare(o.state().Version) > 0 {
		o.publish(st)
		ex.deliver(o)
	}
	return true
}
