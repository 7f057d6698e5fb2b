package core

import (
	"context"
	"iter"
	"sync/atomic"
	"time"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// ObjectObserveContract declares "I want this object". It makes the object
// live and receives the object's newest state whenever it changes. A slow
// reader skips intermediate versions (latest wins): at most one state is
// pending per contract, so memory is bounded whatever the exposer does.
//
// Receiving takes no lock: pending is an atomic flag the exchange sets
// after publishing a state, and a receiver that clears it loads the
// object's newest state. A writer sending flat out therefore never starves
// its observers, and a receiver never slows the writer.
type ObjectObserveContract struct {
	ex  *Exchange
	obj *object
	id  uint64
	// w holds the notify hook and the closed flag (guarded by ex.mu);
	// closed mirrors w.closed for lock-free readers. Waiters sleep on wake
	// (made on first use, room for one token) instead of w's channel, so
	// that waiting takes no lock either.
	w    waitable
	wake atomic.Pointer[chan struct{}]
	// seen is the state last handed out: a receiver that cleared pending
	// may load a newer state than the one that set it, and must not hand
	// that state out twice when its own pending flag is cleared.
	seen    atomic.Pointer[stateBox]
	pending atomic.Bool
	closed  atomic.Bool
	origin  origin
}

// ObserveObject makes an object observe contract. Close it to cancel.
func (ex *Exchange) ObserveObject(d ObjectDescriptor) (*ObjectObserveContract, error) {
	return ex.observeObject(d, originLocal)
}

func (ex *Exchange) observeObject(d ObjectDescriptor, from origin) (*ObjectObserveContract, error) {
	if err := ex.checkDescriptor(d); err != nil {
		return nil, err
	}
	ex.mu.Lock()
	defer ex.unlock()
	c := &ObjectObserveContract{ex: ex, origin: from}
	id, err := ex.register()
	if err != nil {
		return nil, err
	}
	c.id = id
	o := ex.objectFor(d)
	c.obj = o
	ex.inheritRefusal(declKey{kind: wire.ContractObjectObserve, obj: d.Key()}, from, &c.w)
	o.objObservers++
	o.observers = append(o.observers, c)
	ex.refresh(o)
	if o.cur.Load() != nil {
		c.stateChanged(o)
	}
	return c, nil
}

// ID returns the contract's number, unique within its exchange.
func (c *ObjectObserveContract) ID() uint64 { return c.id }

// Descriptor returns the observed object's descriptor.
func (c *ObjectObserveContract) Descriptor() ObjectDescriptor { return c.obj.desc }

func (c *ObjectObserveContract) stateChanged(*object) {
	if !c.w.closed && c.pending.CompareAndSwap(false, true) {
		c.signal()
	}
}

// signal wakes one waiter and queues the notify hook. Called with ex.mu held.
func (c *ObjectObserveContract) signal() {
	c.kick()
	c.w.signal(c.ex) // the hook (w.wake stays nil: nobody waits on it)
}

// kick puts a wake-up token if a waiter may need one; safe without locks.
func (c *ObjectObserveContract) kick() {
	if ch := c.wake.Load(); ch != nil {
		select {
		case *ch <- struct{}{}:
		default:
		}
	}
}

// wakeChan returns the wake channel, making it on first use.
func (c *ObjectObserveContract) wakeChan() chan struct{} {
	if ch := c.wake.Load(); ch != nil {
		return *ch
	}
	ch := make(chan struct{}, 1)
	if c.wake.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *c.wake.Load()
}
func (c *ObjectObserveContract) attach(*object) {}
func (c *ObjectObserveContract) detach(*object) {}

// take takes the pending state, if any, without the exchange's lock.
func (c *ObjectObserveContract) take() (ObjectState, bool, bool) {
	if c.closed.Load() || !c.pending.CompareAndSwap(true, false) {
		return ObjectState{}, false, false
	}
	// Published before pending was set: this is that state or a newer one,
	// unless it was handed out already.
	b := c.obj.cur.Load()
	if b == nil || c.seen.Swap(b) == b {
		return ObjectState{}, false, false
	}
	return b.ObjectState, true, false
}

// Next waits for a state newer than the last one returned (or a change of
// its synchronized flag) and returns it. It returns ErrClosed once the
// contract is closed, or ctx.Err(). When the network refuses the contract
// (permissions, SPEC §3.3), Next returns an error wrapping ErrRefused once;
// the contract stays open (Status says StatusRefused) until closed.
func (c *ObjectObserveContract) Next(ctx context.Context) (ObjectState, error) {
	for {
		if st, ok, _ := c.take(); ok {
			if c.pending.Load() {
				c.kick() // a newer state for another waiter
			}
			return st, nil
		}
		if c.closed.Load() {
			c.kick() // pass the wake-up on to the next waiter
			return ObjectState{}, ErrClosed
		}
		if err := c.w.takeRefusal(); err != nil {
			return ObjectState{}, err
		}
		ch := c.wakeChan()
		// A state published before the channel existed set pending without
		// a token: look once more before sleeping.
		if c.pending.Load() || c.closed.Load() || c.w.refusalPending() {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			c.kick() // we may have taken a token meant for another waiter
			return ObjectState{}, ctx.Err()
		}
	}
}

// TryNext returns the pending state without waiting; ok is false when none
// is pending. err is ErrClosed once the contract is closed, or the
// refusal (see Next). It takes no lock.
func (c *ObjectObserveContract) TryNext() (st ObjectState, ok bool, err error) {
	if st, ok, _ := c.take(); ok {
		return st, true, nil
	}
	if c.closed.Load() {
		return ObjectState{}, false, ErrClosed
	}
	return ObjectState{}, false, c.w.takeRefusal()
}

// NextTimeout is Next with a timeout: 0 tries without waiting, a negative
// timeout waits forever. It returns context.DeadlineExceeded on timeout.
func (c *ObjectObserveContract) NextTimeout(timeout time.Duration) (ObjectState, error) {
	return withTimeout(timeout, c.TryNext, c.Next)
}

// States iterates over state changes until the contract is closed or ctx is done.
func (c *ObjectObserveContract) States(ctx context.Context) iter.Seq[ObjectState] {
	return seqOf(ctx, c.Next)
}

// Ready returns a channel that receives a value when a state may be
// pending. It is a hint for select loops: a concurrent Next may take the
// state first, so follow it with TryNext.
func (c *ObjectObserveContract) Ready() <-chan struct{} { return c.wakeChan() }

// SetNotify installs f, called whenever the contract goes from nothing
// pending to something pending, or is closed (and at once if that is already
// so). f runs on whatever goroutine caused the change, without the
// exchange's lock held; it must return quickly and may call the exchange.
// nil removes the hook.
func (c *ObjectObserveContract) SetNotify(f func()) {
	setNotify(c.ex, &c.w, f, c.pending.Load)
}

// Current returns the object's newest state without consuming it; ok is
// false while the object has no state.
func (c *ObjectObserveContract) Current() (st ObjectState, ok bool) {
	st = c.obj.state()
	return st, !st.IsZero()
}

// Status tells why states are (not) arriving.
func (c *ObjectObserveContract) Status() Status {
	c.ex.mu.Lock()
	defer c.ex.mu.Unlock()
	return c.statusLocked()
}

func (c *ObjectObserveContract) statusLocked() Status {
	o := c.obj
	switch {
	case c.w.closed:
		return StatusClosed
	case c.w.refused.Load() != nil:
		return StatusRefused
	case !o.hasExposer():
		return StatusWaitingForExposer
	case !o.state().Synchronized:
		return StatusStale
	}
	return StatusActive
}

// Close cancels the contract: waiters return ErrClosed and the object is
// forgotten when nothing else keeps it live. Idempotent.
func (c *ObjectObserveContract) Close() error {
	c.ex.mu.Lock()
	defer c.ex.unlock()
	c.closeLocked()
	return nil
}

func (c *ObjectObserveContract) closeLocked() {
	if c.w.closed {
		return
	}
	c.w.closed = true
	c.closed.Store(true)
	c.pending.Store(false)
	c.signal()
	o := c.obj
	o.objObservers--
	o.removeObserver(c)
	c.ex.refresh(o)
}

func (c *ObjectObserveContract) snapshot() ContractSnapshot {
	return ContractSnapshot{ID: c.id, Kind: "object_observe", Object: &c.obj.desc, Status: c.statusLocked().String(), Pending: c.pending.Load()}
}

// ObjectEvent is what a tag observe contract delivers: the newest state of
// one object carrying the tag, or that object's disappearance.
type ObjectEvent struct {
	Descriptor ObjectDescriptor
	// State is the object's newest state; zero when Gone.
	State ObjectState
	// Gone reports that the object is no longer live: no more events for it
	// follow unless it becomes live again.
	Gone bool
}

// TagObserveContract declares "I want every live object with this tag". It
// never makes an object live by itself (SPEC §2.1). At most one event per
// object is pending, so memory is bounded by the number of live objects.
type TagObserveContract struct {
	ex     *Exchange
	tag    TagDescriptor
	id     uint64
	w      waitable
	origin origin
	views  map[*object]*tagView
	queue  []*object
	head   int
}

// tagView is what a tag observer knows of one object.
type tagView struct {
	queued bool // in the queue
	seen   bool // a state was delivered
	gone   bool // the object stopped being live; deliver Gone
}

// ObserveTag makes a tag observe contract. Close it to cancel.
func (ex *Exchange) ObserveTag(t TagDescriptor) (*TagObserveContract, error) {
	return ex.observeTag(t, originLocal)
}

func (ex *Exchange) observeTag(t TagDescriptor, from origin) (*TagObserveContract, error) {
	if err := ex.cfg.Limits.CheckTag(t); err != nil {
		return nil, err
	}
	ex.mu.Lock()
	defer ex.unlock()
	c := &TagObserveContract{ex: ex, tag: t, views: make(map[*object]*tagView), origin: from}
	id, err := ex.register()
	if err != nil {
		return nil, err
	}
	c.id = id
	e := ex.tagFor(t)
	ex.inheritRefusal(declKey{kind: wire.ContractTagObserve, tag: t}, from, &c.w)
	e.observers = append(e.observers, c)
	ex.declareTag(t)
	for o := range e.objects {
		if o.live {
			o.observers = append(o.observers, c)
			c.attach(o)
		}
		ex.refresh(o) // may become live (exposed and now tag-observed) or observed
	}
	return c, nil
}

// ID returns the contract's number, unique within its exchange.
func (c *TagObserveContract) ID() uint64 { return c.id }

// Tag returns the observed tag.
func (c *TagObserveContract) Tag() TagDescriptor { return c.tag }

func (c *TagObserveContract) enqueue(o *object, v *tagView) {
	if v.queued || c.w.closed {
		return
	}
	v.queued = true
	c.queue = append(c.queue, o)
	if len(c.queue)-c.head == 1 {
		c.w.signal(c.ex)
	}
}

func (c *TagObserveContract) attach(o *object) {
	v := &tagView{}
	c.views[o] = v
	if o.cur.Load() != nil {
		c.enqueue(o, v)
	}
}

func (c *TagObserveContract) stateChanged(o *object) {
	if v := c.views[o]; v != nil {
		c.enqueue(o, v)
	}
}

func (c *TagObserveContract) detach(o *object) {
	v := c.views[o]
	if v == nil {
		return
	}
	if !v.seen {
		delete(c.views, o) // a queued entry without a view is skipped
		return
	}
	v.gone = true
	c.enqueue(o, v)
}

func (c *TagObserveContract) take() (ObjectEvent, bool, bool) {
	for c.head < len(c.queue) && !c.w.closed {
		o := c.queue[c.head]
		c.queue[c.head] = nil
		c.head++
		if c.head > 32 && c.head*2 > len(c.queue) {
			n := copy(c.queue, c.queue[c.head:])
			clear(c.queue[n:])
			c.queue = c.queue[:n]
			c.head = 0
		}
		v := c.views[o]
		if v == nil || !v.queued {
			continue
		}
		v.queued = false
		more := c.head < len(c.queue)
		if v.gone {
			delete(c.views, o)
			return ObjectEvent{Descriptor: o.desc, Gone: true}, true, more
		}
		st := o.state()
		if st.IsZero() {
			continue
		}
		v.seen = true
		return ObjectEvent{Descriptor: o.desc, State: st}, true, more
	}
	return ObjectEvent{}, false, false
}

// Next waits for the next event. It returns ErrClosed once the contract is
// closed, or ctx.Err().
func (c *TagObserveContract) Next(ctx context.Context) (ObjectEvent, error) {
	return next(ctx, c.ex, &c.w, c.take)
}

// TryNext returns a pending event without waiting; ok is false when none is.
func (c *TagObserveContract) TryNext() (ev ObjectEvent, ok bool, err error) {
	return tryNext(c.ex, &c.w, c.take)
}

// NextTimeout is Next with a timeout (see ObjectObserveContract.NextTimeout).
func (c *TagObserveContract) NextTimeout(timeout time.Duration) (ObjectEvent, error) {
	return nextTimeout(c.ex, &c.w, c.take, timeout)
}

// Events iterates over events until the contract is closed or ctx is done.
func (c *TagObserveContract) Events(ctx context.Context) iter.Seq[ObjectEvent] {
	return seq(ctx, c.ex, &c.w, c.take)
}

// Ready: see ObjectObserveContract.Ready.
func (c *TagObserveContract) Ready() <-chan struct{} { return readyChan(c.ex, &c.w) }

// SetNotify: see ObjectObserveContract.SetNotify.
func (c *TagObserveContract) SetNotify(f func()) {
	setNotify(c.ex, &c.w, f, func() bool { return c.head < len(c.queue) })
}

// Current returns the newest state of every live object with the tag that
// has a state, without consuming events.
func (c *TagObserveContract) Current() []ObjectEvent {
	c.ex.mu.Lock()
	defer c.ex.mu.Unlock()
	var out []ObjectEvent
	for o, v := range c.views {
		if st := o.state(); !v.gone && !st.IsZero() {
			out = append(out, ObjectEvent{Descriptor: o.desc, State: st})
		}
	}
	return out
}

// Status is StatusActive while some object with the tag is live, else
// StatusIdle; StatusRefused while the network refuses the contract.
func (c *TagObserveContract) Status() Status {
	c.ex.mu.Lock()
	defer c.ex.mu.Unlock()
	return c.statusLocked()
}

func (c *TagObserveContract) statusLocked() Status {
	switch {
	case c.w.closed:
		return StatusClosed
	case c.w.refused.Load() != nil:
		return StatusRefused
	case len(c.views) == 0:
		return StatusIdle
	}
	return StatusActive
}

// Close cancels the contract. Idempotent.
func (c *TagObserveContract) Close() error {
	c.ex.mu.Lock()
	defer c.ex.unlock()
	c.closeLocked()
	return nil
}

func (c *TagObserveContract) closeLocked() {
	if c.w.closed {
		return
	}
	c.w.closed = true
	c.w.signal(c.ex)
	ex := c.ex
	e := ex.tags[c.tag]
	e.observers = removeItem(e.observers, c)
	for o := range c.views {
		o.removeObserver(c)
	}
	clear(c.views)
	c.queue, c.head = nil, 0
	for o := range e.objects {
		ex.refresh(o)
	}
	ex.declareTag(c.tag)
	ex.dropTagIfEmpty(c.tag)
}

func (c *TagObserveContract) snapshot() ContractSnapshot {
	return ContractSnapshot{ID: c.id, Kind: "tag_observe", Tag: &c.tag, Status: c.statusLocked().String(), Pending: c.head < len(c.queue), Objects: len(c.views)}
}

// removeItem removes the first x from s, keeping order.
func removeItem[T comparable](s []T, x T) []T {
	for i, v := range s {
		if v == x {
			copy(s[i:], s[i+1:])
			var zero T
			s[len(s)-1] = zero
			return s[:len(s)-1]
		}
	}
	return s
}
