package core

import (
	"sync/atomic"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// This file holds how the upstream's refusal of a declaration (PROTOCOL.md
// §10.5, SPEC §3.3) reaches the contracts behind it. The upstream link
// sends the subtree's aggregated declarations; when the upstream answers
// one with an Error, every contract of that kind on that object or tag
// (except the upstream link's own) is marked refused:
//
//   - its Status is StatusRefused (and its snapshot says "refused");
//   - its Next/TryNext return the refusal, an error wrapping ErrRefused with
//     the upstream's text, once; the contract stays open until its owner
//     closes it (local contracts keep working locally);
//   - a contract a downstream link made for its peer has that link pass
//     the Error on, so the refusal reaches the leaf that asked.
//
// Contracts made later on the same object or tag are refused at once as
// long as the declaration stands (the upstream is not asked again: the
// aggregated declaration does not change). Refusals end when the upstream
// link ends: a reconnect declares everything again and the upstream
// decides again. A refusal passed on from further up the tree ends when
// that hop reconnects and the object is fed (ObjectLive) or assigned
// (Assign) after all; a passed-on tag refusal ends only with our own link,
// as no message tells that a tag declaration is accepted.

// refusal is the upstream's refusal of a contract's declaration.
type refusal struct {
	err  error // wraps ErrRefused; says who refused and why
	code wire.ErrorCode
	text string // the upstream's words, passed on downstream as they are
	// reported: Next or TryNext returned err.
	reported atomic.Bool
}

// declKey names one declaration sent upstream: kind on an object (obj, its
// Key) or on a tag.
type declKey struct {
	kind wire.ContractKind
	obj  string
	tag  TagDescriptor
}

// refusesDeclaration reports whether an Error with code refuses the
// declaration it names (PROTOCOL.md §13.2): codes about states (stale,
// fenced, too large) do not.
func refusesDeclaration(code wire.ErrorCode) bool {
	switch code {
	case wire.ErrorStaleVersion, wire.ErrorFenced, wire.ErrorStateTooLarge:
		return false
	}
	return true
}

// refuse marks the stream refused with r unless it is closed or refused
// already; the caller wakes it. Called with ex.mu held.
func (w *waitable) refuse(r *refusal) bool {
	if w.closed || w.refused.Load() != nil {
		return false
	}
	w.refused.Store(r)
	return true
}

// takeRefusal returns the refusal's error the first time it is asked for
// after the refusal, nil otherwise. Safe without locks.
func (w *waitable) takeRefusal() error {
	if r := w.refused.Load(); r != nil && r.reported.CompareAndSwap(false, true) {
		return r.err
	}
	return nil
}

// refusalPending reports whether takeRefusal would return an error.
func (w *waitable) refusalPending() bool {
	r := w.refused.Load()
	return r != nil && !r.reported.Load()
}

func (c *ObjectObserveContract) refuseLocked(r *refusal) bool {
	if !c.w.refuse(r) {
		return false
	}
	c.signal()
	return true
}

func (c *TagObserveContract) refuseLocked(r *refusal) bool {
	if !c.w.refuse(r) {
		return false
	}
	c.w.signal(c.ex)
	return true
}

func (s *exposeStream) refuseLocked(r *refusal) bool {
	if !s.w.refuse(r) {
		return false
	}
	s.w.signal(s.ex)
	return true
}

// refuseDeclaration applies the upstream's refusal of the declaration key
// (see the top of this file) and has the downstream links pass it on.
func (ex *Exchange) refuseDeclaration(key declKey, code wire.ErrorCode, text string, err error) {
	ex.mu.Lock()
	if ex.up == nil {
		ex.mu.Unlock()
		return // the link ended meanwhile: its refusals with it
	}
	if ex.up.refused == nil {
		ex.up.refused = map[declKey]*refusal{}
	}
	proto := &refusal{err: err, code: code, text: text}
	ex.up.refused[key] = proto
	// forward: contracts made for downstream links that are refused now.
	forward := map[*waitable]*refusal{}
	ex.forEachDeclared(key, func(w *waitable, from origin, refuse func(*refusal) bool) {
		r := &refusal{err: err, code: code, text: text}
		if refuse(r) && from == originDownstream {
			forward[w] = r
		}
	})
	var links []*link
	if len(forward) > 0 {
		for l := range ex.links {
			if l.role == roleDownstream {
				links = append(links, l)
			}
		}
	}
	ex.unlock()
	for _, l := range links {
		l.forwardRefusal(key, forward)
	}
}

// forEachDeclared calls f for each contract behind the declaration key:
// the contracts of that kind on that object or tag, except the upstream
// link's own. Called with mu held.
func (ex *Exchange) forEachDeclared(key declKey, f func(w *waitable, from origin, refuse func(*refusal) bool)) {
	switch key.kind {
	case wire.ContractObjectObserve, wire.ContractObjectExpose:
		o := ex.objects[key.obj]
		if o == nil {
			return
		}
		if key.kind == wire.ContractObjectObserve {
			for _, obs := range o.observers {
				if c, ok := obs.(*ObjectObserveContract); ok && c.origin != originUpstream {
					f(&c.w, c.origin, c.refuseLocked)
				}
			}
			return
		}
		for _, cand := range o.exposers {
			if c, ok := cand.(*ObjectExposeContract); ok && c.origin != originUpstream {
				f(&c.w, c.origin, c.refuseLocked)
			}
		}
	case wire.ContractTagObserve, wire.ContractTagExpose:
		e := ex.tags[key.tag]
		if e == nil {
			return
		}
		if key.kind == wire.ContractTagObserve {
			for _, c := range e.observers {
				if c.origin != originUpstream {
					f(&c.w, c.origin, c.refuseLocked)
				}
			}
			return
		}
		for _, c := range e.exposers {
			if c.origin != originUpstream {
				f(&c.w, c.origin, c.refuseLocked)
			}
		}
	}
}

// inheritRefusal refuses a new contract at once when the upstream refused
// the declaration it joins. Called with mu held.
func (ex *Exchange) inheritRefusal(key declKey, from origin, w *waitable) {
	if from == originUpstream || ex.up == nil {
		return
	}
	if r := ex.up.refused[key]; r != nil {
		w.refuse(&refusal{err: r.err, code: r.code, text: r.text})
	}
}

// withdrawn forgets the refusal of a declaration the subtree no longer
// makes: when it is made again, the upstream is asked again. Called with
// mu held.
func (ex *Exchange) withdrawn(key declKey) {
	if ex.up != nil {
		delete(ex.up.refused, key)
	}
}

// liftRefusal lifts the upstream's refusal of key, if any.
func (ex *Exchange) liftRefusal(key declKey) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.up == nil || ex.up.refused[key] == nil {
		return
	}
	delete(ex.up.refused, key)
	ex.forEachDeclared(key, func(w *waitable, _ origin, _ func(*refusal) bool) {
		w.refused.Store(nil)
	})
}

// clearRefusals lifts every refusal of the upstream (its link ended).
// Called with mu held.
func (ex *Exchange) clearRefusals() {
	if ex.up == nil {
		return
	}
	for key := range ex.up.refused {
		ex.forEachDeclared(key, func(w *waitable, _ origin, _ func(*refusal) bool) {
			w.refused.Store(nil)
		})
	}
	ex.up.refused = nil
}
