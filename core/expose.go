package core

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// exposeStream is what both kinds of expose contract share: a candidate in
// elections and a stream of new assignments (sinks).
type exposeStream struct {
	exposerBase
	ex    *Exchange
	w     waitable
	queue []*ObjectStateSink // assigned, not yet returned by Next
}

func (s *exposeStream) base() *exposerBase { return &s.exposerBase }

func (s *exposeStream) assigned(k *ObjectStateSink) {
	s.queue = append(s.queue, k)
	if len(s.queue) == 1 {
		s.w.signal(s.ex)
	}
}

func (s *exposeStream) revoked(k *ObjectStateSink) {
	s.queue = removeItem(s.queue, k) // never handed out: forget it quietly
	if k.notify != nil {
		s.ex.addHook(k.notify)
	}
}

func (s *exposeStream) take() (*ObjectStateSink, bool, bool) {
	if len(s.queue) == 0 || s.w.closed {
		return nil, false, false
	}
	k := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	return k, true, len(s.queue) > 0
}

// Next waits for a new assignment: the returned sink lets the caller write
// the object until the sink is revoked (see ObjectStateSink.Done). It returns
// ErrClosed once the contract is closed, or ctx.Err(). When the network
// refuses the contract (permissions, SPEC §3.3), Next returns an error
// wrapping ErrRefused once; the contract stays open (Status says
// StatusRefused) until closed.
func (s *exposeStream) Next(ctx context.Context) (*ObjectStateSink, error) {
	return next(ctx, s.ex, &s.w, s.take)
}

// TryNext returns a new assignment without waiting; ok is false when there is none.
func (s *exposeStream) TryNext() (sink *ObjectStateSink, ok bool, err error) {
	return tryNext(s.ex, &s.w, s.take)
}

// NextTimeout is Next with a timeout: 0 tries without waiting, a negative
// timeout waits forever. It returns context.DeadlineExceeded on timeout.
func (s *exposeStream) NextTimeout(timeout time.Duration) (*ObjectStateSink, error) {
	return nextTimeout(s.ex, &s.w, s.take, timeout)
}

// Sinks iterates over new assignments until the contract is closed or ctx is done.
func (s *exposeStream) Sinks(ctx context.Context) iter.Seq[*ObjectStateSink] {
	return seq(ctx, s.ex, &s.w, s.take)
}

// Ready returns a channel that receives a value when an assignment may be
// pending (a hint: follow it with TryNext).
func (s *exposeStream) Ready() <-chan struct{} { return readyChan(s.ex, &s.w) }

// SetNotify installs f, called (without locks held) whenever an assignment
// becomes pending or the contract is closed. nil removes it.
func (s *exposeStream) SetNotify(f func()) {
	setNotify(s.ex, &s.w, f, func() bool { return len(s.queue) > 0 })
}

// ID returns the contract's number, unique within its exchange.
func (s *exposeStream) ID() uint64 { return s.id }

// Capacity returns the contract's capacity.
func (s *exposeStream) Capacity() int { return int(s.capacity) }

// Load returns how many objects the contract is currently elected for.
func (s *exposeStream) Load() int {
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	return int(s.load)
}

// Assignments returns the sinks currently valid, including any not yet
// returned by Next.
func (s *exposeStream) Assignments() []*ObjectStateSink {
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	return append([]*ObjectStateSink(nil), s.sinks...)
}

func (s *exposeStream) statusLocked() Status {
	switch {
	case s.w.closed:
		return StatusClosed
	case s.w.refused.Load() != nil:
		return StatusRefused
	case s.load > 0:
		return StatusActive
	}
	return StatusNoObservers
}

// shut marks the stream closed and drops it as a candidate; its sinks are
// revoked and their objects fail over. Called with mu held.
func (s *exposeStream) shut(c candidate) bool {
	if s.w.closed {
		return false
	}
	s.w.closed = true
	s.w.signal(s.ex)
	s.ex.dropCandidate(c)
	clear(s.queue)
	s.queue = nil
	return true
}

func checkCapacity(capacity int) error {
	if capacity <= 0 || capacity > 1<<30 {
		return fmt.Errorf("core: capacity %d not in 1..2^30: %w", capacity, ErrInvalidCapacity)
	}
	return nil
}

// ObjectExposeContract declares "I can produce this object". While it is
// elected and somebody observes the object, Next yields a sink.
type ObjectExposeContract struct {
	exposeStream
	obj *object
}

// ExposeObject makes an object expose contract with the given capacity (a
// positive integer; 1 is typical). Close it to cancel.
func (ex *Exchange) ExposeObject(d ObjectDescriptor, capacity int) (*ObjectExposeContract, error) {
	return ex.exposeObject(d, capacity, originLocal)
}

func (ex *Exchange) exposeObject(d ObjectDescriptor, capacity int, from origin) (*ObjectExposeContract, error) {
	if err := ex.checkDescriptor(d); err != nil {
		return nil, err
	}
	if err := checkCapacity(capacity); err != nil {
		return nil, err
	}
	ex.mu.Lock()
	defer ex.unlock()
	c := &ObjectExposeContract{}
	id, err := ex.register()
	if err != nil {
		return nil, err
	}
	c.exposeStream = exposeStream{exposerBase: exposerBase{id: id, capacity: int64(capacity), origin: from}, ex: ex}
	o := ex.objectFor(d)
	c.obj = o
	ex.inheritRefusal(declKey{kind: wire.ContractObjectExpose, obj: d.Key()}, from, &c.w)
	o.exposers = append(o.exposers, c)
	ex.addCandidate(c)
	ex.refresh(o)
	return c, nil
}

// Descriptor returns the exposed object's descriptor.
func (c *ObjectExposeContract) Descriptor() ObjectDescriptor { return c.obj.desc }

// Status: Active while elected, Standby while the object is observed but
// another exposer is elected, NoObservers otherwise; Refused while the
// network refuses the contract.
func (c *ObjectExposeContract) Status() Status {
	c.ex.mu.Lock()
	defer c.ex.mu.Unlock()
	return c.statusLocked()
}

func (c *ObjectExposeContract) statusLocked() Status {
	st := c.exposeStream.statusLocked()
	if st == StatusNoObservers && c.obj.observed() {
		return StatusStandby
	}
	return st
}

// Close cancels the contract: its sink is revoked and the object fails over
// to another exposer, if any. Idempotent.
func (c *ObjectExposeContract) Close() error {
	c.ex.mu.Lock()
	defer c.ex.unlock()
	c.closeLocked()
	return nil
}

func (c *ObjectExposeContract) closeLocked() {
	if !c.shut(c) {
		return
	}
	o := c.obj
	o.exposers = removeItem(o.exposers, candidate(c))
	c.ex.refresh(o)
}

func (c *ObjectExposeContract) snapshot() ContractSnapshot {
	return ContractSnapshot{ID: c.id, Kind: "object_expose", Object: &c.obj.desc, Capacity: int(c.capacity), Load: int(c.load), Status: c.statusLocked().String(), Pending: len(c.queue) > 0}
}

// TagExposeContract declares "I can produce any object with this tag". It is
// offered only objects that an object observer asks for by full descriptor
// (SPEC §2.1), one sink per object it is elected for.
type TagExposeContract struct {
	exposeStream
	tag TagDescriptor
}

// ExposeTag makes a tag expose contract with the given capacity. Close it to cancel.
func (ex *Exchange) ExposeTag(t TagDescriptor, capacity int) (*TagExposeContract, error) {
	return ex.exposeTag(t, capacity, originLocal)
}

func (ex *Exchange) exposeTag(t TagDescriptor, capacity int, from origin) (*TagExposeContract, error) {
	if err := ex.cfg.Limits.CheckTag(t); err != nil {
		return nil, err
	}
	if err := checkCapacity(capacity); err != nil {
		return nil, err
	}
	ex.mu.Lock()
	defer ex.unlock()
	c := &TagExposeContract{tag: t}
	id, err := ex.register()
	if err != nil {
		return nil, err
	}
	c.exposeStream = exposeStream{exposerBase: exposerBase{id: id, capacity: int64(capacity), origin: from}, ex: ex}
	e := ex.tagFor(t)
	ex.inheritRefusal(declKey{kind: wire.ContractTagExpose, tag: t}, from, &c.w)
	e.exposers = append(e.exposers, c)
	ex.addCandidate(c)
	ex.declareTag(t)
	for o := range e.objects {
		if o.observed() && o.assigned == nil {
			ex.elect(o)
		}
	}
	return c, nil
}

// Tag returns the exposed tag.
func (c *TagExposeContract) Tag() TagDescriptor { return c.tag }

// Status: Active while elected for some object, NoObservers otherwise.
func (c *TagExposeContract) Status() Status {
	c.ex.mu.Lock()
	defer c.ex.mu.Unlock()
	return c.statusLocked()
}

// Close cancels the contract: its sinks are revoked and their objects fail
// over to other exposers. Idempotent.
func (c *TagExposeContract) Close() error {
	c.ex.mu.Lock()
	defer c.ex.unlock()
	c.closeLocked()
	return nil
}

func (c *TagExposeContract) closeLocked() {
	if c.w.closed {
		return // the tag entry may be gone already
	}
	ex := c.ex
	// Leave the tag index first so failover does not elect us again.
	e := ex.tags[c.tag]
	e.exposers = removeItem(e.exposers, c)
	c.shut(c)
	ex.declareTag(c.tag)
	ex.dropTagIfEmpty(c.tag)
}

func (c *TagExposeContract) snapshot() ContractSnapshot {
	return ContractSnapshot{ID: c.id, Kind: "tag_expose", Tag: &c.tag, Capacity: int(c.capacity), Load: int(c.load), Status: c.statusLocked().String(), Pending: len(c.queue) > 0}
}

// ObjectStateSink is an assignment: the right to write one object while
// elected. It is revoked when nobody observes the object any more, when the
// object moves to another exposer, or when its contract closes; writes
// through a revoked sink fail with ErrRevoked (fencing, SPEC §2.4).
type ObjectStateSink struct {
	ex      *Exchange
	obj     *object
	owner   candidate
	token   uint64
	index   int // in owner.base().sinks
	revoked bool
	done    chan struct{}
	notify  func()
}

// Descriptor returns the descriptor of the object this sink writes.
func (s *ObjectStateSink) Descriptor() ObjectDescriptor { return s.obj.desc }

// Token returns the assignment's fencing token; tokens of one object increase.
func (s *ObjectStateSink) Token() uint64 { return s.token }

// Send publishes st as the object's newest, synchronized state. A nil
// Version gets one from NextVersion. A version older than the current one
// fails with ErrStaleVersion; the same version only marks an unsynchronized
// state synchronized again. Send takes ownership of st.Data and st.Format.
func (s *ObjectStateSink) Send(st ObjectState) error {
	st.Synchronized = true
	st.LastSynchronized = time.Time{}
	return s.write(st)
}

// write applies st, keeping its synchronized fields: Send sets them, a
// network link relays what the origin said.
func (s *ObjectStateSink) write(st ObjectState) error {
	ex := s.ex
	ex.mu.Lock()
	if err := s.checkLocked(); err != nil {
		ex.mu.Unlock()
		return err
	}
	o := s.obj
	cur := o.state()
	box := &stateBox{ObjectState: st}
	if st.Version == nil {
		box.Version = nextVersion(cur.Version, time.Now(), &box.ver)
	} else {
		switch st.Version.Compare(cur.Version) {
		case -1:
			ex.counters.StaleWrites++
			ex.mu.Unlock()
			return fmt.Errorf("core: send version %v to %v, current %v: %w", st.Version, o.desc, cur.Version, ErrStaleVersion)
		case 0:
			if cur.Synchronized != st.Synchronized {
				cur.Synchronized = st.Synchronized
				cur.LastSynchronized = st.LastSynchronized
				o.publish(cur)
				ex.deliver(o)
			}
			ex.unlock()
			return nil
		}
	}
	if s == o.assigned && o.previous != nil {
		// The new exposer of a handover wrote: the old one stops now.
		ex.finishHandover(o)
		ex.counters.Handovers++
	}
	o.cur.Store(box)
	ex.counters.States++
	ex.deliver(o)
	ex.unlock()
	return nil
}

// checkLocked fails unless s may write now. Called with mu held.
func (s *ObjectStateSink) checkLocked() error {
	if s.revoked {
		s.ex.counters.Revoked++
		return fmt.Errorf("core: write to %v through assignment %d: %w", s.obj.desc, s.token, ErrRevoked)
	}
	return nil
}

// Desynchronize marks the object's current state as no longer synchronized
// (stale, no new data); observers are told. The next Send makes it fresh.
func (s *ObjectStateSink) Desynchronize() error {
	s.ex.mu.Lock()
	defer s.ex.unlock()
	if err := s.checkLocked(); err != nil {
		return err
	}
	s.ex.desynchronize(s.obj)
	return nil
}

// Current returns the object's newest state (for example the predecessor's
// last one after a failover); ok is false while there is none.
func (s *ObjectStateSink) Current() (st ObjectState, ok bool) {
	st = s.obj.state()
	return st, !st.IsZero()
}

// Revoked reports whether the assignment has ended.
func (s *ObjectStateSink) Revoked() bool {
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	return s.revoked
}

// Done returns a channel closed when the assignment ends: the exposer should
// stop producing the object then.
func (s *ObjectStateSink) Done() <-chan struct{} {
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
		if s.revoked {
			close(s.done)
		}
	}
	return s.done
}

// SetNotify installs f, called (without locks held) when the sink is
// revoked, or at once if it already is. nil removes it.
func (s *ObjectStateSink) SetNotify(f func()) {
	s.ex.mu.Lock()
	s.notify = f
	if f != nil && s.revoked {
		s.ex.addHook(f)
	}
	s.ex.unlock()
}
