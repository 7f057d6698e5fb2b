package core

import (
	"slices"
	"time"
)

// candidate is anything that can be elected to expose an object: a local
// expose contract, or (later) a network link presenting its subtree's summed
// capacity. Methods are called with the exchange's mutex held and must not
// block.
type candidate interface {
	base() *exposerBase
	// assigned: s was created for this candidate.
	assigned(s *ObjectStateSink)
	// revoked: s is no longer valid.
	revoked(s *ObjectStateSink)
}

// exposerBase is the election bookkeeping shared by all candidates.
type exposerBase struct {
	id       uint64 // join order: ties go to the smallest (longest-standing)
	capacity int64
	// load counts the objects for which this candidate is the elected
	// (current) exposer; a sink kept only during a handover does not count.
	load int64
	// sinks are all valid sinks, current and during-handover ones.
	sinks []*ObjectStateSink
	// removed is set when the candidate leaves; it is never elected again.
	removed bool
	origin  origin
}

// lessLoaded reports whether giving one more object to a leaves it less
// loaded than giving it to b would leave b; ties go to the older candidate.
// Compared by cross-multiplication: exact for any capacities.
func lessLoaded(a, b *exposerBase) bool {
	l, r := (a.load+1)*b.capacity, (b.load+1)*a.capacity
	if l != r {
		return l < r
	}
	return a.id < b.id
}

// forEachCandidate calls f for every candidate able to expose o: its object
// expose contracts, then the tag expose contracts of each of its tags.
func (ex *Exchange) forEachCandidate(o *object, f func(candidate)) {
	for _, c := range o.exposers {
		f(c)
	}
	for i := range o.desc.NumTags() {
		if e := ex.tags[o.desc.Tag(i)]; e != nil {
			for _, c := range e.exposers {
				f(c)
			}
		}
	}
}

// best returns the least-loaded candidate for o other than skip, or nil.
func (ex *Exchange) best(o *object, skip candidate) candidate {
	var best candidate
	ex.forEachCandidate(o, func(c candidate) {
		if c == skip || c.base().removed || !ex.eligible(o, c) {
			return
		}
		if best == nil || lessLoaded(c.base(), best.base()) {
			best = c
		}
	})
	return best
}

// elect assigns o to its best candidate, if it has one. Called with mu held
// when o is observed and has no assignment.
func (ex *Exchange) elect(o *object) {
	if c := ex.best(o, nil); c != nil {
		ex.assign(o, c)
		ex.counters.Elections++
	}
}

// assign makes a new sink for c and makes it o's current assignment.
func (ex *Exchange) assign(o *object, c candidate) {
	o.token++
	s := &ObjectStateSink{ex: ex, obj: o, owner: c, token: o.token}
	b := c.base()
	s.index = len(b.sinks)
	b.sinks = append(b.sinks, s)
	b.load++
	o.assigned = s
	c.assigned(s)
	ex.noteExposer(o)
}

// revoke invalidates s and tells its owner. It does not touch o.assigned or
// o.previous: callers do.
func (ex *Exchange) revoke(s *ObjectStateSink) {
	if s.revoked {
		return
	}
	s.revoked = true
	b := s.owner.base()
	last := len(b.sinks) - 1
	b.sinks[s.index] = b.sinks[last]
	b.sinks[s.index].index = s.index
	b.sinks[last] = nil
	b.sinks = b.sinks[:last]
	if s.done != nil {
		close(s.done)
	}
	s.owner.revoked(s)
}

// release ends o's assignments because nobody observes it any more.
func (ex *Exchange) release(o *object) {
	if s := o.previous; s != nil {
		o.previous = nil
		ex.revoke(s)
	}
	if s := o.assigned; s != nil {
		o.assigned = nil
		s.owner.base().load--
		ex.revoke(s)
		ex.noteExposer(o)
	}
}

// dropCandidate handles a candidate leaving (its contract closed): each of
// its objects fails over to another candidate at once (SPEC §2.2).
func (ex *Exchange) dropCandidate(c candidate) {
	b := c.base()
	b.removed = true
	// Lazy removal: compact when half the list is removed candidates, so
	// dropping n candidates costs O(n), not O(n²).
	ex.exposersRemoved++
	if ex.exposersRemoved*2 > len(ex.exposers) {
		ex.exposers = slices.DeleteFunc(ex.exposers, func(c candidate) bool { return c.base().removed })
		ex.exposersRemoved = 0
	}
	for len(b.sinks) > 0 {
		s := b.sinks[len(b.sinks)-1]
		o := s.obj
		ex.revoke(s)
		switch s {
		case o.previous:
			// The old exposer of a handover left before the new one wrote:
			// nobody maintains the last state any more.
			o.previous = nil
			ex.desynchronize(o)
		case o.assigned:
			b.load--
			o.assigned = nil
			if p := o.previous; p != nil {
				// The new exposer of a handover left: the old one, which
				// still holds a valid sink, simply stays.
				o.previous = nil
				o.assigned = p
				p.owner.base().load++
				continue
			}
			ex.desynchronize(o)
			if o.observed() {
				ex.elect(o)
				ex.counters.Failovers++
			}
			ex.noteExposer(o)
		}
	}
	ex.markRebalance()
}

// addCandidate registers a new candidate for the rebalancer.
func (ex *Exchange) addCandidate(c candidate) {
	ex.exposers = append(ex.exposers, c)
	ex.markRebalance()
}

// markRebalance asks the maintenance goroutine to look at loads.
func (ex *Exchange) markRebalance() {
	ex.rebalanceDirty = true
	select {
	case ex.kick <- struct{}{}:
	default:
	}
}

// startHandover moves o from its current exposer to c: c is assigned at
// once, the old sink stays valid until c writes or the deadline passes.
func (ex *Exchange) startHandover(o *object, c candidate) {
	old := o.assigned
	old.owner.base().load--
	o.previous = old
	ex.handovers = append(ex.handovers, handover{o, old, time.Now().Add(ex.cfg.HandoverTimeout).UnixNano()})
	ex.assign(o, c)
	ex.counters.Rebalances++
}

// finishHandover revokes o's previous sink, if any.
func (ex *Exchange) finishHandover(o *object) {
	if p := o.previous; p != nil {
		o.previous = nil
		ex.revoke(p)
	}
}

// maintain is the exchange's one goroutine: it moves objects between
// exposers and ends handovers whose new exposer stays silent. Rebalance
// passes run at most once per RebalanceInterval (the rate limit); between
// them, and when there is nothing to do, it sleeps.
func (ex *Exchange) maintain() {
	defer ex.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var lastPass time.Time
	for {
		select {
		case <-ex.done:
			return
		case <-ex.kick:
		case <-timer.C:
		}
		ex.mu.Lock()
		now := time.Now()
		ex.expireHandovers(now.UnixNano())
		if ex.rebalanceDirty && now.Sub(lastPass) >= ex.cfg.RebalanceInterval {
			lastPass = now
			ex.rebalanceDirty = ex.rebalance() // true: more to do next pass
		}
		wait := time.Duration(-1)
		if ex.rebalanceDirty {
			wait = lastPass.Add(ex.cfg.RebalanceInterval).Sub(now)
		}
		if len(ex.handovers) > 0 {
			if d := time.Duration(ex.handovers[0].deadline - now.UnixNano()); wait < 0 || d < wait {
				wait = d
			}
		}
		ex.unlock()
		timer.Stop()
		if wait >= 0 {
			timer.Reset(max(wait, time.Millisecond))
		}
	}
}

// expireHandovers revokes the old sinks of handovers past their deadline;
// the state is then no longer maintained by anyone confirmed, so it is
// marked not synchronized until the new exposer writes.
func (ex *Exchange) expireHandovers(now int64) {
	n := 0
	for _, h := range ex.handovers {
		o := h.o
		if o.previous != h.prev {
			continue // finished (or rolled back) already
		}
		if h.deadline > now {
			ex.handovers[n] = h
			n++
			continue
		}
		ex.finishHandover(o)
		ex.desynchronize(o)
		ex.counters.HandoverTTL++
	}
	clear(ex.handovers[n:])
	ex.handovers = ex.handovers[:n]
}

// rebalance moves up to MaxMovesPerInterval objects from the most- to the
// least-loaded candidates. An object moves only when its new exposer ends
// up strictly less loaded than its old one was and the relative difference
// exceeds the threshold, so every move reduces the spread and no sequence of
// moves can cycle. It reports whether more moves may be needed.
func (ex *Exchange) rebalance() bool {
	if len(ex.exposers)-ex.exposersRemoved < 2 {
		return false
	}
	order := slices.DeleteFunc(slices.Clone(ex.exposers), func(c candidate) bool { return c.base().removed })
	// Most loaded first: load a/ca > b/cb ⇔ a*cb > b*ca.
	slices.SortStableFunc(order, func(a, b candidate) int {
		x, y := a.base(), b.base()
		l, r := x.load*y.capacity, y.load*x.capacity
		switch {
		case l > r:
			return -1
		case l < r:
			return 1
		}
		return 0
	})
	moves := 0
	const scanLimit = 4096 // sinks inspected per pass, to bound time under mu
	scanned := 0
	for _, from := range order {
		fb := from.base()
		for i := 0; i < len(fb.sinks) && moves < ex.cfg.MaxMovesPerInterval && scanned < scanLimit; i++ {
			s := fb.sinks[i]
			scanned++
			o := s.obj
			if o.assigned != s || o.previous != nil {
				continue // in a handover already
			}
			to := ex.best(o, from)
			if to == nil || !ex.worthMoving(fb, to.base()) {
				continue
			}
			// The old sink stays in fb.sinks until the handover ends, so
			// the loop index stays valid.
			ex.startHandover(o, to)
			moves++
		}
		if moves >= ex.cfg.MaxMovesPerInterval || scanned >= scanLimit {
			return true
		}
	}
	return false
}

// worthMoving reports whether one object should move from a to b.
func (ex *Exchange) worthMoving(a, b *exposerBase) bool {
	// After the move b carries (b.load+1)/b.cap; it must stay strictly below
	// a's current load a.load/a.cap.
	if (b.load+1)*a.capacity >= a.load*b.capacity {
		return false
	}
	la := float64(a.load) / float64(a.capacity)
	lb := float64(b.load) / float64(b.capacity)
	return la > 0 && (la-lb)/la > ex.cfg.RebalanceThreshold
}
