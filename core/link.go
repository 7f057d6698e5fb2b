package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hakuban/hakuban/core/internal/delta"
	"github.com/hakuban/hakuban/core/internal/wire"
)

// linkPeer is what the handshake negotiated with the other side.
type linkPeer struct {
	Name     string
	Features wire.Features
	// Limits are what the peer accepts; Local what we announced (zero
	// fields take the defaults).
	Limits wire.Limits
	Local  wire.Limits
	Minor  uint32
	// Perms are what the peer's subtree may do (downstream role; from
	// the token in its Hello); nil allows everything.
	Perms *Permissions
	// Token is the peer's token (downstream role, kept when a listener
	// authorizes it, so that Reauthorize can check it again).
	Token []byte
	// started, when set, is called with the link before it runs.
	started func(*link)
}

// link runs the protocol of one established connection (PROTOCOL.md) for
// its exchange. It takes part in the exchange only through contracts made on
// behalf of the peer (see network.go), so election and delivery have one
// code path for local and remote participants.
//
// Goroutines: the reader handles incoming frames and makes or closes
// contracts; the writer turns pending contract output (states, assignments,
// declarations) into frames. Contracts tell the link through SetNotify
// hooks, which mark an item dirty and wake the writer: whatever changes
// while the writer is busy coalesces in the contracts (latest wins per
// object), so the link never buffers more than one frame. When the writer
// is idle and the connection can take the frame at once, the goroutine
// that changed a single object writes it itself (flushInline): that saves
// the wake-up of the writer, the largest part of a hop's latency.
//
// Locking: writeMu is held while flushing (by the writer or inline), mu
// guards the dirty list and the tables below it. Never call the exchange
// while holding mu: exchange calls may run hooks, which take mu,
// and snapshots take mu while holding the exchange's lock (order: ex.mu,
// then l.mu).
type link struct {
	ex *Exchange
	t  transport
	// flushQueued: the link is in its exchange's flushers' queue (guarded
	// by the flushers' mu).
	flushQueued bool
	role        linkRole
	peer        linkPeer
	limits      wire.Limits

	wake chan struct{}

	// writeMu is held by whoever flushes the link: the writer goroutine,
	// or a goroutine flushing inline (flushInline). It guards fw and
	// writeErr and orders the frames.
	writeMu  sync.Mutex
	fw       *frameWriter
	writeErr error // the first write error; the writer ends the link with it
	// lastInline is when the last inline flush started (Unix ns).
	lastInline atomic.Int64

	mu    sync.Mutex
	dirty []linkItem
	// dirtySpare is the array of the last flush's items, empty, for dirty
	// to take next (no allocation per change). Only flushDirty touches
	// it, with writeMu held.
	dirtySpare []linkItem
	// Outgoing descriptor ids (written by the writer only).
	outObj    map[string]uint32
	outTag    map[TagDescriptor]uint32
	nextOutID uint32
	// Incoming descriptor ids (reader only).
	inObj map[uint32]*inObject
	inTag map[uint32]TagDescriptor
	// Per-object and per-tag state of the link (guarded by mu).
	objects map[string]*linkObject
	tags    map[TagDescriptor]*tagItem
	// errs are Error replies waiting for the writer (guarded by mu).
	errs []wire.Error
	// Upstream role: the declarations last sent (writer only).
	sentObj map[string]objectDecl
	sentTag map[TagDescriptor]tagDecl
	// Upstream role: what our ids in sent declarations name, for the
	// upstream's Error replies (written by the writer, read by the
	// reader; guarded by mu).
	declRefs map[uint32]declKey

	// perms are what the peer's subtree may do (downstream role; nil
	// allows everything): peer.Perms until setPermissions replaces them.
	perms atomic.Pointer[Permissions]
	// declMu is held by the reader while it handles a declaration of the
	// peer and by setPermissions, so that no contract is made under
	// permissions that were just replaced.
	declMu sync.Mutex
	// abort ends the link with a close code of its own (linkAbort).
	abort context.CancelCauseFunc

	bytesIn, bytesOut   atomic.Uint64
	framesIn, framesOut atomic.Uint64
}

// linkAbort is the cause of a link ended from outside with a given close
// code and reason (Listener.Reauthorize: a token no longer accepted).
type linkAbort struct {
	code   wire.CloseCode
	reason string
}

func (a *linkAbort) Error() string { return a.reason }

// linkItem is something the writer must look at.
type linkItem interface {
	flush(l *link, w *frameWriter) error
}

// linkObject is the link's view of one object.
type linkObject struct {
	desc ObjectDescriptor
	// Downstream role: contracts made for the peer's subtree.
	observe *ObjectObserveContract // peer observes the object
	expose  *ObjectExposeContract  // peer can expose it
	// sinks are the assignments whose Assign the peer got, by token.
	sinks map[uint64]*ObjectStateSink
	// tagSinks are the assignments of this object announced through a
	// tag expose contract, by token (an index for sinkFor).
	tagSinks map[uint64]*ObjectStateSink
	// Upstream role.
	feed     *ObjectExposeContract // the upstream feeds us the object
	feedSink *ObjectStateSink      // its current sink
	// feedLast is the newest state received, not yet relayed, when
	// feedPending (held by value: one allocation less per state).
	feedLast    ObjectState
	feedPending bool
	seed        *ObjectState           // last state sent with an assignment, for its object record
	assigned    *ObjectObserveContract // the upstream assigned the object to us
	token       uint64                 // ... with this token
	// Both roles: what the peer is known to hold (skips echoes and lets a
	// reconnect send nothing when nothing changed).
	peerVersion Version
	peerSync    bool
	// peerData is the data of peerVersion when this side knows it (it sent
	// or received it): the base for deltas in either direction.
	peerData []byte
	liveSent bool // downstream role: ObjectLive sent
	// unexposedSent (downstream role): the peer was told ObjectUnexposed
	// since ObjectLive. Like liveSent, only touched by flushes (writeMu).
	unexposedSent bool
	queued        bool // in l.dirty
	// outID is the id this side declared for the object on the link, 0
	// until then (flushes only, like liveSent): saves the lookup by
	// descriptor in l.outObj for every state sent.
	outID uint32
	// ref is the peer's id of the object in its last ObjectObserve or
	// ObjectExpose (downstream role), for Errors about them.
	ref uint32
	// goneDue (downstream role, guarded by mu): setPermissions revoked
	// what fed the object to the peer; the next flush sends ObjectGone
	// unless something the peer may still observe keeps it.
	goneDue bool
}

// tagItem is a tag contract made for the peer (downstream role).
type tagItem struct {
	tag     TagDescriptor
	observe *TagObserveContract
	expose  *TagExposeContract
	sinks   map[*ObjectStateSink]bool // assignments announced to the peer
	queued  bool
	ref     uint32 // the peer's id of the tag in its last TagObserve or TagExpose
}

// declItem marks the upstream declarations dirty.
type declItem struct{}

// errItem marks queued Error messages for the writer.
type errItem struct{}

// maxQueuedErrors bounds the Error replies waiting for the writer; a peer
// that provokes more than that between two writes loses the surplus ones
// (they are advisory: the link stays up either way).
const maxQueuedErrors = 64

// refuse queues an Error for the peer. Called by the reader.
func (l *link) refuse(e wire.Error) {
	e.Text = wire.TruncateErrorText(e.Text)
	l.mu.Lock()
	first := len(l.errs) == 0
	if len(l.errs) < maxQueuedErrors {
		l.errs = append(l.errs, e)
	}
	l.mu.Unlock()
	if first {
		l.markDirty(errItem{}) // later ones ride along with it
	}
}

func (errItem) flush(l *link, w *frameWriter) error {
	l.mu.Lock()
	errs := l.errs
	l.errs = nil
	l.mu.Unlock()
	for i := range errs {
		if err := w.add(&errs[i]); err != nil {
			return err
		}
	}
	return nil
}

// runLink runs the link until ctx is done, the transport fails or the peer
// breaks the protocol; it closes t with a code and reason, closes every
// contract it made and returns only after its goroutines have exited.
func (ex *Exchange) runLink(parent context.Context, t transport, role linkRole, peer linkPeer) error {
	ctx := parent
	l := &link{
		ex: ex, t: t, role: role, peer: peer,
		limits:  peer.Local.WithDefaults(),
		wake:    make(chan struct{}, 1),
		outObj:  map[string]uint32{},
		outTag:  map[TagDescriptor]uint32{},
		inObj:   map[uint32]*inObject{},
		inTag:   map[uint32]TagDescriptor{},
		objects: map[string]*linkObject{},
		sentObj: map[string]objectDecl{},
		sentTag: map[TagDescriptor]tagDecl{},
	}
	l.peer.Limits = peer.Limits.WithDefaults()
	l.perms.Store(peer.Perms)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	l.abort = cancel
	if peer.started != nil {
		peer.started(l)
	}
	l.fw = &frameWriter{l: l, ctx: ctx}
	ex.addLink(l)
	defer ex.removeLink(l)
	if role == roleUpstream {
		up := ex.attachUpstream()
		ex.mu.Lock()
		up.w.notify = func() { l.markDirty(declItem{}) }
		ex.mu.Unlock()
		ex.setGoverning(true)
		l.markDirty(declItem{})
	}
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); errc <- l.readLoop(ctx) }()
	go func() { defer wg.Done(); errc <- l.writeLoop(ctx) }()
	err := <-errc
	cancel(nil)
	code, reason := wire.CloseCodeFor(err), wire.CloseReason(err)
	var ab *linkAbort
	if errors.As(context.Cause(ctx), &ab) {
		code, reason, err = ab.code, wire.TruncateReason(ab.reason), ab
	} else if errors.Is(err, context.Canceled) {
		// Our side ended the link.
		code, reason = ownClose(parent)
	}
	// Close bounds itself (the transport's close timeout); this bound is
	// for a transport that fails to.
	bound := 5 * time.Second
	if b, ok := t.(interface{ closeBound() time.Duration }); ok {
		bound = b.closeBound() + time.Second
	}
	closed := make(chan struct{})
	go func() { t.Close(code, reason); close(closed) }()
	select {
	case <-closed:
	case <-time.After(bound):
		t.CloseNow()
	}
	wg.Wait()
	l.shutdown()
	return err
}

// shutdown closes every contract the link made. For the upstream role it
// first takes election authority back, so objects fail over to local
// exposers and observers see their states go unsynchronized.
func (l *link) shutdown() {
	if l.role == roleUpstream {
		l.ex.setGoverning(false)
	}
	l.mu.Lock()
	var closers []func() error
	for _, o := range l.objects {
		if o.observe != nil {
			closers = append(closers, o.observe.Close)
		}
		if o.assigned != nil {
			closers = append(closers, o.assigned.Close)
		}
		if o.expose != nil {
			closers = append(closers, o.expose.Close)
		}
		if o.feed != nil {
			closers = append(closers, o.feed.Close)
		}
	}
	l.mu.Unlock()
	for _, f := range closers {
		f()
	}
	for _, ti := range l.tagItems() {
		if ti.observe != nil {
			ti.observe.Close()
		}
		if ti.expose != nil {
			ti.expose.Close()
		}
	}
	if l.role == roleUpstream {
		l.ex.detachUpstream()
	}
}

// markDirty queues it for the writer. Called from hooks, without ex.mu or
// l.mu. A change that is part of a fan-out (Exchange.fanouts) is flushed
// by the exchange's flushers, a few goroutines shared by all links, so
// that a state going out to a thousand links wakes a few goroutines, not a
// thousand writers. A single object's change outside a batch of changes
// (Exchange.batches) is written at once by the calling goroutine when it
// can be (flushInline). Anything else wakes the link's writer, which
// batches what accumulates into frames.
func (l *link) markDirty(it linkItem) {
	l.mu.Lock()
	if q := queuedFlag(it); q != nil {
		if *q {
			l.mu.Unlock()
			return
		}
		*q = true
	}
	l.dirty = append(l.dirty, it)
	few := len(l.dirty) <= maxInlineItems
	l.mu.Unlock()
	_, single := it.(*linkObject)
	switch {
	case single && l.ex.fanouts.Load() > 0:
		l.ex.flushers.add(l)
	case single && few && l.ex.batches.Load() == 0 && l.flushInline():
	default:
		l.wakeWriter()
	}
}

// flushShared flushes the link for the exchange's flushers (a fan-out of a
// state to many links): inline, without blocking; what
// the connection does not take at once is left to the link's writer.
func (l *link) flushShared() {
	if !l.flushNow() {
		l.wakeWriter()
	}
}

// flushNow flushes the link inline (flushDirty) when no one else is
// flushing it, and reports whether everything went out; what did not is
// the writer's.
func (l *link) flushNow() bool {
	if !l.writeMu.TryLock() {
		return false // the writer (or another goroutine) is flushing
	}
	left, err := l.flushDirty(true)
	l.writeMu.Unlock()
	return err == nil && !left
}

func (l *link) wakeWriter() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// inlineGap is the least time between two inline flushes of a link.
const inlineGap = 50 * time.Microsecond

// maxInlineItems bounds the queued items a goroutine flushes inline: more
// means the writer is behind, and it is the one to catch up.
const maxInlineItems = 4

// flushInline writes the queued items from the calling goroutine when no
// one else is flushing the link, and reports whether everything went out.
// This is the hot path of state delivery: an application's Send, or a
// router's reader relaying a state to an observer's link, writes the frame
// itself instead of waking the writer goroutine, which costs an OS thread
// wake-up (tens of µs on a VM) per state. It never blocks on the peer: a
// frame the connection cannot take at once without blocking
// (transport.writable) is held for the writer goroutine, so a slow peer
// still only slows its own link.
//
// Changes that come faster than inlineGap apart go to the writer, which
// batches them (latest wins per object): a tight loop of Sends then costs
// no system call each, and the link still writes as fast as the connection
// takes frames.
func (l *link) flushInline() bool {
	now := time.Now().UnixNano()
	if now-l.lastInline.Load() < int64(inlineGap) {
		return false
	}
	l.lastInline.Store(now)
	return l.flushNow()
}

// object returns the link's record for d, creating it. Called with mu held.
func (l *link) object(d ObjectDescriptor) *linkObject {
	o := l.objects[d.Key()]
	if o == nil {
		o = &linkObject{desc: d}
		l.objects[d.Key()] = o
	}
	return o
}

// ---- reader ----

func (l *link) readLoop(ctx context.Context) error {
	dec, err := wire.NewDecoder(l.limits)
	if err != nil {
		return err
	}
	// The reader reads until the transport closes (runLink closes it once
	// the link ends), so its reads need no cancellation: without it the
	// WebSocket transport reads in this goroutine, with no hand-off.
	rctx := context.WithoutCancel(ctx)
	for {
		frame, err := l.t.Read(rctx)
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		l.bytesIn.Add(uint64(len(frame)))
		l.framesIn.Add(1)
		if err := dec.Reset(frame); err != nil {
			return err
		}
		if err := l.handleFrame(dec); err != nil {
			return err
		}
	}
}

// handleFrame handles the messages of a frame. A frame of several messages
// (a resync, a burst) is a batch: the changes it causes are written by the
// links' writers, many to a frame, not inline one frame each.
func (l *link) handleFrame(dec *wire.Decoder) error {
	batch := false
	defer func() {
		if batch {
			l.ex.batches.Add(-1)
		}
	}()
	for {
		m, err := dec.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !batch && dec.More() {
			batch = true
			l.ex.batches.Add(1)
		}
		if err := l.handle(m); err != nil {
			return err
		}
	}
}

// closeNormal is WebSocket's normal closure (PROTOCOL.md §13.1): the user
// closed the connector or the exchange.
const closeNormal wire.CloseCode = 1000

// errNormalClose is the cancellation cause of a link the user closed.
var errNormalClose = errors.New("closed by the user")

// protocolError is a peer's violation: the link closes with CloseProtocolViolation.
func protocolError(format string, args ...any) error {
	return fmt.Errorf("core: link: "+format+": %w", append(args, wire.ErrMalformed)...)
}

func (l *link) handle(m wire.Message) error {
	if (l.role == roleDownstream && !m.Type().FromDownstream()) || (l.role == roleUpstream && !m.Type().FromUpstream()) {
		return protocolError("%v not allowed in this direction", m.Type())
	}
	switch m := m.(type) {
	case *wire.DeclareTag:
		t, err := ParseTagDescriptor(m.JSON)
		if err != nil {
			return protocolError("tag %d: %v", m.ID, err)
		}
		if _, ok := l.inTag[m.ID]; !ok && len(l.inTag) >= l.limits.MaxTags {
			return fmt.Errorf("core: link: peer declared more than %d tags: %w", l.limits.MaxTags, wire.ErrTooLarge)
		}
		l.inTag[m.ID] = t
	case *wire.ForgetTag:
		delete(l.inTag, m.ID)
	case *wire.DeclareObject:
		tags := make([]TagDescriptor, 0, len(m.Tags))
		for _, id := range m.Tags {
			t, ok := l.inTag[id]
			if !ok {
				return protocolError("object %d names undeclared tag %d", m.ID, id)
			}
			tags = append(tags, t)
		}
		d, err := ParseObjectDescriptor(m.JSON, tags...)
		if err != nil {
			return protocolError("object %d: %v", m.ID, err)
		}
		if _, ok := l.inObj[m.ID]; !ok && len(l.inObj) >= l.limits.MaxObjects {
			return fmt.Errorf("core: link: peer declared more than %d objects: %w", l.limits.MaxObjects, wire.ErrTooLarge)
		}
		l.inObj[m.ID] = &inObject{desc: d}
	case *wire.ForgetObject:
		delete(l.inObj, m.ID)
	case *wire.ObjectObserve, *wire.ObjectUnobserve, *wire.ObjectExpose, *wire.ObjectUnexpose,
		*wire.TagObserve, *wire.TagUnobserve, *wire.TagExpose, *wire.TagUnexpose:
		l.declMu.Lock()
		defer l.declMu.Unlock()
		return l.handleContract(m)
	default:
		return l.handleContract(m)
	}
	return nil
}

func (l *link) objectRef(id uint32) (ObjectDescriptor, error) {
	ref, ok := l.inObj[id]
	if !ok {
		return ObjectDescriptor{}, protocolError("undeclared object %d", id)
	}
	return ref.desc, nil
}

// inObject is what one of the peer's object ids names (reader only).
type inObject struct {
	desc ObjectDescriptor
	// obj is the link's record of the object, once a state came for it:
	// saves looking it up by descriptor for every state.
	obj *linkObject
}

func (l *link) tagRef(id uint32) (TagDescriptor, error) {
	t, ok := l.inTag[id]
	if !ok {
		return t, protocolError("undeclared tag %d", id)
	}
	return t, nil
}

func (l *link) handleContract(m wire.Message) error {
	switch m := m.(type) {
	// Downstream → upstream: declarations of the peer's subtree, each
	// checked against the link's permissions first.
	case *wire.ObjectObserve:
		if ok, err := l.admitObject(wire.ContractObjectObserve, m.Object); !ok {
			return err
		}
		return openField(l, m.Object, func(o *linkObject) **ObjectObserveContract { return &o.observe },
			func(d ObjectDescriptor) (*ObjectObserveContract, error) {
				c, err := l.ex.observeObject(d, originDownstream)
				if err == nil {
					l.passOnRefusal(wire.ContractObjectObserve, m.Object, &c.w)
				}
				return c, err
			},
			func(o *linkObject) func() { return func() { l.markDirty(o) } })
	case *wire.ObjectUnobserve:
		return closeField(l, m.Object, func(o *linkObject) **ObjectObserveContract { return &o.observe })
	case *wire.ObjectExpose:
		if ok, err := l.admitObject(wire.ContractObjectExpose, m.Object); !ok {
			return err
		}
		d, err := l.objectRef(m.Object)
		if err != nil {
			return err
		}
		l.mu.Lock()
		o := l.object(d)
		old := o.expose
		l.mu.Unlock()
		if old != nil && old.Capacity() == int(m.Capacity) {
			return nil
		}
		c, err := l.ex.exposeObject(d, int(m.Capacity), originDownstream)
		if err != nil {
			return err
		}
		l.passOnRefusal(wire.ContractObjectExpose, m.Object, &c.w)
		l.mu.Lock()
		o.expose = c
		l.mu.Unlock()
		c.SetNotify(func() { l.markDirty(o) })
		if old != nil {
			old.Close()
		}
	case *wire.ObjectUnexpose:
		return closeField(l, m.Object, func(o *linkObject) **ObjectExposeContract { return &o.expose })
	case *wire.TagObserve, *wire.TagUnobserve, *wire.TagExpose, *wire.TagUnexpose:
		return l.handleTag(m)
	case *wire.Have:
		d, err := l.objectRef(m.Object)
		if err != nil {
			return err
		}
		if !l.perms.Load().MayObserveObject(d) && !l.perms.Load().MayExposeObject(d) {
			return nil // advisory; nothing of d is ever sent to this peer
		}
		// If we hold the same version, we know the peer's data too.
		var data []byte
		if cur, ok := l.currentState(d); ok && cur.Version.Compare(Version(m.Version)) == 0 {
			data = cur.Data
		}
		l.mu.Lock()
		o := l.object(d)
		o.peerVersion, o.peerSync, o.peerData = m.Version, false, data
		l.mu.Unlock()
	case *wire.State:
		if ok, err := l.admitWrite(m.Object); !ok {
			return err
		}
		return l.receiveState(m)
	case *wire.Sync:
		if ok, err := l.admitWrite(m.Object); !ok {
			return err
		}
		return l.receiveSync(m)
	// Upstream → downstream: feeds and assignments.
	case *wire.ObjectLive:
		l.liftRefusal(wire.ContractObjectObserve, m.Object)
		return openField(l, m.Object, func(o *linkObject) **ObjectExposeContract { return &o.feed },
			func(d ObjectDescriptor) (*ObjectExposeContract, error) {
				return l.ex.exposeObject(d, 1, originUpstream)
			},
			func(o *linkObject) func() { return func() { l.applyFeed(o) } })
	case *wire.ObjectGone:
		if err := closeField(l, m.Object, func(o *linkObject) **ObjectExposeContract {
			o.feedSink, o.feedLast, o.feedPending = nil, ObjectState{}, false
			return &o.feed
		}); err != nil {
			return err
		}
		d, _ := l.objectRef(m.Object) // closeField checked it
		l.ex.setUpUnexposed(d, false)
	case *wire.ObjectUnexposed:
		return l.receiveExposer(m.Object, true)
	case *wire.ObjectExposed:
		return l.receiveExposer(m.Object, false)
	case *wire.Assign:
		d, err := l.objectRef(m.Object)
		if err != nil {
			return err
		}
		l.liftRefusal(wire.ContractObjectExpose, m.Object)
		c, err := l.ex.observeObject(d, originUpstream)
		if err != nil {
			return err
		}
		l.mu.Lock()
		o := l.object(d)
		old := o.assigned
		o.assigned, o.token = c, m.Token
		seed := o.seed
		o.seed = nil
		l.mu.Unlock()
		if old != nil {
			old.Close()
		}
		if seed != nil {
			l.ex.seedState(d, *seed) // the record exists now
		}
		l.ex.setUpAssigned(d, true)
		c.SetNotify(func() { l.markDirty(o) })
	case *wire.Revoke:
		d, err := l.objectRef(m.Object)
		if err != nil {
			return err
		}
		l.mu.Lock()
		o := l.objects[d.Key()]
		var c *ObjectObserveContract
		if o != nil && o.token == m.Token {
			c, o.assigned, o.token = o.assigned, nil, 0
		}
		l.mu.Unlock()
		if c != nil {
			l.ex.setUpAssigned(d, false)
			c.Close()
		}
	case *wire.Error:
		l.receiveError(m)
	default:
		return protocolError("unexpected %v", m.Type())
	}
	return nil
}

// openField makes a contract for the object with id (open) and keeps it in
// the record's field, unless one is there already; hook(o) becomes the
// contract's notify hook.
func openField[C interface {
	comparable
	SetNotify(func())
}](l *link, id uint32, field func(*linkObject) *C, open func(ObjectDescriptor) (C, error), hook func(*linkObject) func()) error {
	d, err := l.objectRef(id)
	if err != nil {
		return err
	}
	var zero C
	l.mu.Lock()
	o := l.object(d)
	have := *field(o) != zero
	l.mu.Unlock()
	if have {
		return nil
	}
	c, err := open(d)
	if err != nil {
		return err
	}
	l.mu.Lock()
	*field(o) = c
	l.mu.Unlock()
	c.SetNotify(hook(o))
	return nil
}

// closeField takes the contract out of the record's field (field runs
// with mu held) and closes it, if there is one.
func closeField[C interface {
	comparable
	Close() error
}](l *link, id uint32, field func(*linkObject) *C) error {
	d, err := l.objectRef(id)
	if err != nil {
		return err
	}
	var zero, c C
	l.mu.Lock()
	if o := l.objects[d.Key()]; o != nil {
		p := field(o)
		c, *p = *p, zero
	}
	l.mu.Unlock()
	if c != zero {
		c.Close()
	}
	return nil
}

func (l *link) handleTag(m wire.Message) error {
	var id uint32
	switch m := m.(type) {
	case *wire.TagObserve:
		id = m.Tag
	case *wire.TagUnobserve:
		id = m.Tag
	case *wire.TagExpose:
		id = m.Tag
	case *wire.TagUnexpose:
		id = m.Tag
	}
	t, err := l.tagRef(id)
	if err != nil {
		return err
	}
	ti := l.tagItem(t)
	// The reader is the only writer of ti's contract fields; it sets them
	// under mu because the writer and forwardRefusal read them.
	switch m := m.(type) {
	case *wire.TagObserve:
		if !l.admit(wire.ContractTagObserve, id, l.perms.Load().MayObserveTag(t), "observe tag", t.String()) {
			return nil
		}
		setLocked(&l.mu, &ti.ref, id)
		if ti.observe == nil {
			c, err := l.ex.observeTag(t, originDownstream)
			if err != nil {
				return err
			}
			setLocked(&l.mu, &ti.observe, c)
			c.SetNotify(func() { l.markDirty(ti) })
			l.passOnRefusal(wire.ContractTagObserve, id, &c.w)
		}
	case *wire.TagUnobserve:
		if c := ti.observe; c != nil {
			setLocked(&l.mu, &ti.observe, nil)
			c.Close()
		}
	case *wire.TagExpose:
		if !l.admit(wire.ContractTagExpose, id, l.perms.Load().MayExposeTag(t), "expose tag", t.String()) {
			return nil
		}
		setLocked(&l.mu, &ti.ref, id)
		if ti.expose != nil && ti.expose.Capacity() == int(m.Capacity) {
			return nil
		}
		c, err := l.ex.exposeTag(t, int(m.Capacity), originDownstream)
		if err != nil {
			return err
		}
		old := ti.expose
		setLocked(&l.mu, &ti.expose, c)
		c.SetNotify(func() { l.markDirty(ti) })
		l.passOnRefusal(wire.ContractTagExpose, id, &c.w)
		if old != nil {
			old.Close()
		}
	case *wire.TagUnexpose:
		if c := ti.expose; c != nil {
			setLocked(&l.mu, &ti.expose, nil)
			c.Close()
		}
	}
	return nil
}

// ---- permissions and refusals (SPEC §3.3, PROTOCOL.md §10.5) ----

// admit checks one declaration of the peer (kind on its id ref) against the
// link's permissions (allowed). A refused one makes no contract: the peer
// hears why in an Error, the exchange counts it, and the link stays up.
// verb and what describe the declaration for the peer's user.
func (l *link) admit(kind wire.ContractKind, ref uint32, allowed bool, verb, what string) bool {
	if allowed {
		return true
	}
	l.ex.mu.Lock()
	l.ex.counters.RefusedContracts++
	l.ex.mu.Unlock()
	p := l.perms.Load()
	l.ex.log.Debug("hakuban: contract refused", "peer", l.peer.Name, "permissions", p.Name(), "contract", kind, "on", what)
	l.refuse(denial(p, kind, ref, verb, what))
	return false
}

// denial is the Error answering a declaration the permissions do not allow.
func denial(p *Permissions, kind wire.ContractKind, ref uint32, verb, what string) wire.Error {
	who := "this client"
	if name := p.Name(); name != "" {
		who = fmt.Sprintf("%q", name)
	}
	return wire.Error{Contract: kind, Ref: ref, Code: wire.ErrorPermissionDenied,
		Text: wire.TruncateErrorText(fmt.Sprintf("permission denied: %s may not %s %s", who, verb, what))}
}

// setPermissions replaces the permissions of a downstream link
// (Listener.Reauthorize) and revokes what they no longer allow, as if the
// peer had declared it now: each such contract is closed and answered with
// Error{PermissionDenied}, which the peer reports as a refusal. The flushes
// of the items marked here send Revoke for the assignments the closed
// expose contracts held and ObjectGone for the objects nothing allowed
// feeds any more. Rights the new permissions add apply to declarations
// made afterwards (all of them after a reconnect). It returns how many
// contracts were revoked.
func (l *link) setPermissions(p *Permissions) int {
	l.declMu.Lock()
	defer l.declMu.Unlock()
	l.perms.Store(p)
	var (
		closers []func() error
		errs    []wire.Error
		dirty   []linkItem
	)
	l.mu.Lock()
	for _, o := range l.objects {
		if o.observe != nil && !p.MayObserveObject(o.desc) {
			closers = append(closers, o.observe.Close)
			o.observe, o.goneDue = nil, true
			errs = append(errs, denial(p, wire.ContractObjectObserve, o.ref, "observe object", o.desc.String()))
			dirty = append(dirty, o)
		}
		if o.expose != nil && !p.MayExposeObject(o.desc) {
			closers = append(closers, o.expose.Close)
			o.expose = nil
			errs = append(errs, denial(p, wire.ContractObjectExpose, o.ref, "expose object", o.desc.String()))
			dirty = append(dirty, o)
		}
	}
	for t, ti := range l.tags {
		if ti.observe != nil && !p.MayObserveTag(t) {
			closers = append(closers, ti.observe.Close)
			ti.observe = nil
			errs = append(errs, denial(p, wire.ContractTagObserve, ti.ref, "observe tag", t.String()))
			for _, o := range l.objects {
				if o.desc.HasTag(t) {
					o.goneDue = true
					dirty = append(dirty, o)
				}
			}
		}
		if ti.expose != nil && !p.MayExposeTag(t) {
			closers = append(closers, ti.expose.Close)
			ti.expose = nil
			errs = append(errs, denial(p, wire.ContractTagExpose, ti.ref, "expose tag", t.String()))
			dirty = append(dirty, ti)
		}
	}
	// Not bounded by maxQueuedErrors: at most one per contract of the link.
	l.errs = append(l.errs, errs...)
	l.mu.Unlock()
	for _, f := range closers {
		f()
	}
	if len(errs) == 0 {
		return 0
	}
	l.ex.mu.Lock()
	l.ex.counters.RefusedContracts += uint64(len(errs))
	l.ex.mu.Unlock()
	l.ex.log.Info("hakuban: contracts revoked", "peer", l.peer.Name, "permissions", p.Name(), "contracts", len(errs))
	l.markDirty(errItem{})
	for _, it := range dirty {
		l.markDirty(it)
	}
	return len(errs)
}

// tagObservedLocked reports whether the peer observes a tag of d (its
// objects are fed through the tag). Called with mu held.
func (l *link) tagObservedLocked(d ObjectDescriptor) bool {
	for i := range d.NumTags() {
		if ti := l.tags[d.Tag(i)]; ti != nil && ti.observe != nil {
			return true
		}
	}
	return false
}

// admitObject is admit for an object declaration; it also records the
// peer's id of the object for Errors passed on later. ok is false when the
// declaration must not make a contract (err says whether the link breaks).
func (l *link) admitObject(kind wire.ContractKind, id uint32) (ok bool, err error) {
	d, err := l.objectRef(id)
	if err != nil {
		return false, err
	}
	allowed, verb := l.perms.Load().MayObserveObject(d), "observe object"
	if kind == wire.ContractObjectExpose {
		allowed, verb = l.perms.Load().MayExposeObject(d), "expose object"
	}
	if !l.admit(kind, id, allowed, verb, d.String()) {
		return false, nil
	}
	l.mu.Lock()
	l.object(d).ref = id
	l.mu.Unlock()
	return true, nil
}

// admitWrite refuses a State or Sync for an object the peer may not expose
// before anything of it is decoded (a delta against our state would
// otherwise tell the peer whether it guessed that state). Without
// permissions every write goes on to fencing.
func (l *link) admitWrite(id uint32) (ok bool, err error) {
	if l.perms.Load() == nil {
		return true, nil
	}
	d, err := l.objectRef(id)
	if err != nil {
		return false, err
	}
	if !l.perms.Load().MayExposeObject(d) {
		l.refuse(wire.Error{Contract: wire.ContractObjectExpose, Ref: id, Code: wire.ErrorPermissionDenied,
			Text: fmt.Sprintf("permission denied: write to %v, which this client may not expose", d)})
		return false, nil
	}
	return true, nil
}

// setLocked sets *field to v holding mu.
func setLocked[T any](mu *sync.Mutex, field *T, v T) {
	mu.Lock()
	*field = v
	mu.Unlock()
}

// passOnRefusal tells the peer at once when a contract just made for it
// (kind, the peer's id ref) joined a declaration our upstream refused.
func (l *link) passOnRefusal(kind wire.ContractKind, ref uint32, w *waitable) {
	if r := w.refused.Load(); r != nil {
		l.refuse(wire.Error{Contract: kind, Ref: ref, Code: r.code, Text: r.text})
	}
}

// forwardRefusal passes the upstream's refusal of key on to the peer, for
// the contracts this link made for it among refused (downstream role).
func (l *link) forwardRefusal(key declKey, refused map[*waitable]*refusal) {
	var r *refusal
	var ref uint32
	l.mu.Lock()
	switch key.kind {
	case wire.ContractObjectObserve, wire.ContractObjectExpose:
		if o := l.objects[key.obj]; o != nil {
			ref = o.ref
			if key.kind == wire.ContractObjectObserve && o.observe != nil {
				r = refused[&o.observe.w]
			} else if key.kind == wire.ContractObjectExpose && o.expose != nil {
				r = refused[&o.expose.w]
			}
		}
	case wire.ContractTagObserve, wire.ContractTagExpose:
		if ti := l.tags[key.tag]; ti != nil {
			ref = ti.ref
			if key.kind == wire.ContractTagObserve && ti.observe != nil {
				r = refused[&ti.observe.w]
			} else if key.kind == wire.ContractTagExpose && ti.expose != nil {
				r = refused[&ti.expose.w]
			}
		}
	}
	l.mu.Unlock()
	if r != nil {
		l.refuse(wire.Error{Contract: key.kind, Ref: ref, Code: r.code, Text: r.text})
	}
}

// receiveExposer handles ObjectUnexposed (unexposed true) and
// ObjectExposed: whether the upstream has an exposer for an object it
// feeds. They exist from protocol 1.1 on; for an object not fed (a race
// with ObjectGone cannot happen, messages keep their order) they change
// nothing.
func (l *link) receiveExposer(id uint32, unexposed bool) error {
	if l.peer.Minor < wire.MinorExposer {
		return protocolError("ObjectUnexposed and ObjectExposed need protocol 1.%d, the link speaks 1.%d", wire.MinorExposer, l.peer.Minor)
	}
	d, err := l.objectRef(id)
	if err != nil {
		return err
	}
	l.mu.Lock()
	o := l.objects[d.Key()]
	fed := o != nil && o.feed != nil
	l.mu.Unlock()
	if fed {
		l.ex.setUpUnexposed(d, unexposed)
	}
	return nil
}

// liftRefusal: the upstream feeds (ObjectLive) or assigns (Assign) the
// object with id, so it accepts our declaration of kind on it now (after a
// refusal further up that a reconnect there lifted). Upstream role.
func (l *link) liftRefusal(kind wire.ContractKind, id uint32) {
	if ref, ok := l.inObj[id]; ok {
		l.ex.liftRefusal(declKey{kind: kind, obj: ref.desc.Key()})
	}
}

// noteDeclared records what our id names in a declaration sent upstream.
// Called by the writer.
func (l *link) noteDeclared(id uint32, key declKey) {
	l.mu.Lock()
	if l.declRefs == nil {
		l.declRefs = map[uint32]declKey{}
	}
	l.declRefs[id] = key
	l.mu.Unlock()
}

// receiveError handles the peer's Error. From the upstream, a refusal of
// one of our declarations marks the contracts behind it refused (see
// refusal.go); anything else is only logged.
func (l *link) receiveError(m *wire.Error) {
	l.mu.Lock()
	key, known := l.declRefs[m.Ref]
	l.mu.Unlock()
	isTag := m.Contract == wire.ContractTagObserve || m.Contract == wire.ContractTagExpose
	if l.role != roleUpstream || m.Contract == wire.ContractNone || !refusesDeclaration(m.Code) ||
		!known || isTag != !key.tag.IsZero() {
		l.ex.log.Warn("hakuban: peer refused a declaration", "peer", l.peer.Name, "contract", m.Contract, "code", m.Code, "text", m.Text)
		return
	}
	key.kind = m.Contract
	what := key.obj
	if isTag {
		what = key.tag.String()
	}
	l.ex.log.Warn("hakuban: upstream refused a contract", "peer", l.peer.Name, "contract", m.Contract, "on", what, "code", m.Code, "text", m.Text)
	err := &messageError{
		msg:  fmt.Sprintf("core: %v contract refused by upstream %q: %s", m.Contract, l.peer.Name, m.Text),
		errs: []error{ErrRefused},
	}
	l.ex.refuseDeclaration(key, m.Code, m.Text, err)
}

// tagItem returns the link's record for tag t, creating it.
func (l *link) tagItem(t TagDescriptor) *tagItem {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tags == nil {
		l.tags = map[TagDescriptor]*tagItem{}
	}
	ti := l.tags[t]
	if ti == nil {
		ti = &tagItem{tag: t, sinks: map[*ObjectStateSink]bool{}}
		l.tags[t] = ti
	}
	return ti
}

func (l *link) tagItems() []*tagItem {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*tagItem, 0, len(l.tags))
	for _, ti := range l.tags {
		out = append(out, ti)
	}
	return out
}

// receiveState applies a state (or sync change) from the peer: from a
// downstream, through the assignment its token names (fenced otherwise);
// from the upstream, through the feed's sink.
func (l *link) receiveState(m *wire.State) error {
	ref, ok := l.inObj[m.Object]
	if !ok {
		return protocolError("undeclared object %d", m.Object)
	}
	d := ref.desc
	l.mu.Lock()
	o := ref.obj
	if o == nil {
		o = l.object(d)
		ref.obj = o
	}
	base, baseVersion := o.peerData, o.peerVersion
	l.mu.Unlock()
	st, err := l.decodeState(d, m, base, baseVersion)
	if err != nil {
		return err
	}
	l.mu.Lock()
	o.peerVersion, o.peerSync, o.peerData = st.Version, m.Synchronized, st.Data
	var sink *ObjectStateSink
	if l.role == roleDownstream {
		sink = l.sinkFor(o, m.Token)
	}
	l.mu.Unlock()
	return l.apply(m.Object, o, sink, st)
}

// receiveSync applies a change of the synchronized flag of the version the
// exchange holds; other versions are ignored (PROTOCOL.md, Sync).
func (l *link) receiveSync(m *wire.Sync) error {
	d, err := l.objectRef(m.Object)
	if err != nil {
		return err
	}
	st, ok := l.currentState(d)
	if !ok || st.Version.Compare(Version(m.Version)) != 0 {
		return nil
	}
	st.Synchronized, st.LastSynchronized = m.Synchronized, time.Time{}
	if !m.Synchronized {
		st.LastSynchronized = time.Now().Add(-m.Age)
	}
	l.mu.Lock()
	o := l.object(d)
	o.peerVersion, o.peerSync = st.Version, st.Synchronized
	var sink *ObjectStateSink
	if l.role == roleDownstream {
		sink = l.sinkFor(o, m.Token)
	}
	l.mu.Unlock()
	return l.apply(m.Object, o, sink, st)
}

// sinkFor finds the announced assignment of d with token (downstream
// role). Called with mu held.
func (l *link) sinkFor(o *linkObject, token uint64) *ObjectStateSink {
	if s := o.sinks[token]; s != nil {
		return s
	}
	return o.tagSinks[token]
}

// apply writes a received state into the exchange.
func (l *link) apply(id uint32, o *linkObject, sink *ObjectStateSink, st ObjectState) error {
	if l.role == roleDownstream {
		// A write through a revoked (or unknown) assignment is fenced, a
		// stale version dropped; either way the peer hears why (PROTOCOL.md
		// 10.4) and the link stays up.
		err := ErrRevoked
		if sink != nil {
			err = sink.relay(st)
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrRevoked):
			l.refuse(wire.Error{Contract: wire.ContractObjectExpose, Ref: id, Code: wire.ErrorFenced,
				Text: fmt.Sprintf("%v: the assignment this write names was revoked", o.desc)})
		case errors.Is(err, ErrStaleVersion):
			l.refuse(wire.Error{Contract: wire.ContractObjectExpose, Ref: id, Code: wire.ErrorStaleVersion,
				Text: fmt.Sprintf("%v: version %v is older than the current one", o.desc, st.Version)})
		default:
			return err
		}
		return nil
	}
	// From the upstream: the feed's state, or, for an object this subtree
	// is (about to be) assigned, the last state to continue from.
	l.mu.Lock()
	fed := o.feed != nil
	if fed {
		o.feedLast, o.feedPending = st, true
	} else {
		seed := st // only this copy escapes, not st on every call
		o.seed = &seed
	}
	l.mu.Unlock()
	if fed {
		l.relayFeed(o, false)
	} else {
		l.ex.seedState(o.desc, st)
	}
	return nil
}

// decodeState turns a wire state into an ObjectState, decoding its payload
// within the link's limits. A delta's base is the data both sides last
// shared on this link (base, at baseVersion), or the exchange's current
// state when that is the base version (after a Have).
// m is the decoder's (wire.Decoder): the state gets copies of its version
// and format.
func (l *link) decodeState(d ObjectDescriptor, m *wire.State, base []byte, baseVersion Version) (ObjectState, error) {
	st := ObjectState{Version: Version(slices.Clone(m.Version)), Format: slices.Clone(m.Format), Synchronized: m.Synchronized}
	if !m.Synchronized {
		st.LastSynchronized = time.Now().Add(-m.Age)
	}
	limit := l.limits.MaxStateData
	var err error
	switch m.Encoding {
	case wire.EncodingRaw:
		st.Data = slices.Clone(m.Data)
	case wire.EncodingZstd:
		st.Data, err = delta.Decompress(nil, m.Data, min(m.Size, limit))
	case wire.EncodingDelta:
		if baseVersion.Compare(Version(m.Base)) != 0 || (base == nil && m.Size > 0) {
			cur, ok := l.currentState(d)
			if !ok || cur.Version.Compare(Version(m.Base)) != 0 {
				return ObjectState{}, protocolError("delta of %v from %v, which this side does not hold", d, Version(m.Base))
			}
			base = cur.Data
		}
		st.Data, err = delta.Apply(nil, base, m.Data, min(m.Size, limit))
	default:
		return ObjectState{}, protocolError("unknown encoding %v", m.Encoding)
	}
	if err != nil {
		if errors.Is(err, delta.ErrTooLarge) {
			return ObjectState{}, fmt.Errorf("core: link: state of %v: %v: %w", d, err, wire.ErrTooLarge)
		}
		return ObjectState{}, protocolError("state of %v: %v", d, err)
	}
	if len(st.Data) != m.Size && m.Encoding != wire.EncodingRaw {
		return ObjectState{}, protocolError("state of %v decoded to %d bytes, announced %d", d, len(st.Data), m.Size)
	}
	return st, nil
}

func (l *link) currentState(d ObjectDescriptor) (ObjectState, bool) {
	l.ex.mu.Lock()
	defer l.ex.mu.Unlock()
	if o := l.ex.objects[d.Key()]; o != nil && o.cur.Load() != nil {
		return o.state(), true
	}
	return ObjectState{}, false
}

// applyFeed relays the newest state from the upstream into the feed's
// current sink (upstream role), first taking the sinks the feed contract
// was assigned since. The feed contract's hook calls it when a sink is
// assigned.
func (l *link) applyFeed(o *linkObject) { l.relayFeed(o, true) }

// relayFeed is applyFeed; the reader passes drain false for each state,
// and the feed's new sinks are then looked for (which takes the
// exchange's lock) only when the sink the link has is missing or revoked.
func (l *link) relayFeed(o *linkObject, drain bool) {
	l.mu.Lock()
	feed, sink := o.feed, o.feedSink
	l.mu.Unlock()
	if feed == nil {
		return
	}
	if drain || sink == nil {
		for {
			s, ok, _ := feed.TryNext()
			if !ok {
				break
			}
			l.mu.Lock()
			o.feedSink = s
			l.mu.Unlock()
			drain = true
		}
	}
	l.mu.Lock()
	sink, st, have := o.feedSink, o.feedLast, o.feedPending
	if sink != nil {
		o.feedLast, o.feedPending = ObjectState{}, false
	}
	l.mu.Unlock()
	if sink == nil || !have {
		return
	}
	if err := sink.relay(st); errors.Is(err, ErrRevoked) {
		// Keep it for the next sink, unless a newer state arrived meanwhile.
		l.mu.Lock()
		if !o.feedPending {
			o.feedLast, o.feedPending = st, true
		}
		l.mu.Unlock()
		if !drain {
			l.relayFeed(o, true) // the feed may hold the next sink already
		}
	}
}

// ---- writer ----

// frameWriter batches messages into frames no larger than the peer accepts.
type frameWriter struct {
	l   *link
	ctx context.Context
	buf []byte
	// hold: a goroutine other than the writer is flushing; a frame the
	// transport cannot take without blocking goes to held instead.
	hold bool
	// held are complete frames waiting for the writer goroutine, in order.
	held [][]byte
	// state is the State message being sent: add encodes a message at
	// once, so one per writer saves an allocation per state and link.
	state wire.State
}

func (w *frameWriter) add(m wire.Message) error {
	if len(w.buf) > 0 && len(w.buf)+wire.Size(m) > w.l.peer.Limits.MaxFrame {
		if err := w.flush(); err != nil {
			return err
		}
	}
	w.buf = wire.Append(w.buf, m)
	return nil
}

// flush writes the frame being built, after any held ones; or, in hold
// mode, holds it when it cannot be written at once.
func (w *frameWriter) flush() error {
	if w.hold {
		if len(w.buf) == 0 {
			return nil
		}
		if len(w.held) > 0 || !w.l.writable(len(w.buf)) {
			w.held = append(w.held, bytes.Clone(w.buf))
			w.buf = w.buf[:0]
			return nil
		}
	}
	for len(w.held) > 0 {
		if err := w.write(w.held[0]); err != nil {
			return err
		}
		w.held[0] = nil
		w.held = w.held[1:]
	}
	w.held = nil
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.write(w.buf); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

func (w *frameWriter) write(frame []byte) error {
	if err := w.l.t.Write(w.ctx, frame); err != nil {
		return err
	}
	w.l.bytesOut.Add(uint64(len(frame)))
	w.l.framesOut.Add(1)
	return nil
}

// writable reports whether the transport takes a frame of n bytes now,
// without blocking; false when it cannot tell.
func (l *link) writable(n int) bool {
	wt, ok := l.t.(interface{ writable(n int) bool })
	return ok && wt.writable(n)
}

func (l *link) writeLoop(ctx context.Context) error {
	// One channel to wait on: the end of ctx wakes the writer too. A plain
	// receive costs a fraction of a select, and a router's writers wait
	// once per state per link.
	stop := context.AfterFunc(ctx, l.wakeWriter)
	defer stop()
	for {
		<-l.wake
		if err := ctx.Err(); err != nil {
			return err
		}
		l.writeMu.Lock()
		_, err := l.flushDirty(false)
		l.writeMu.Unlock()
		if err != nil {
			return err
		}
	}
}

// flushDirty writes the queued items. inline says a goroutine other than
// the writer flushes: it takes only objects, and frames that could block
// are held for the writer (frameWriter.hold); left reports that something
// is left for the writer. The first write error sticks: the writer returns
// it and the link ends. Called with writeMu held.
func (l *link) flushDirty(inline bool) (left bool, err error) {
	if l.writeErr != nil {
		return false, l.writeErr
	}
	w := l.fw
	w.hold = inline
	l.mu.Lock()
	items := l.dirty
	all := items                              // to clear and keep for the next flush
	l.dirty, l.dirtySpare = l.dirtySpare, nil // markDirty appends to the spare array
	if inline {
		// Only objects are flushed inline: what one object sends is
		// bounded (a state, its assignment changes). A tag item or the
		// declarations can make many frames, and only the writer may
		// wait for the connection to take them.
		var later []linkItem
		n := 0
		for _, it := range items {
			if _, ok := it.(*linkObject); ok {
				items[n] = it
				n++
			} else {
				later = append(later, it)
			}
		}
		items = items[:n]
		l.dirty = append(l.dirty, later...)
		left = len(later) > 0
	}
	for _, it := range items {
		if q := queuedFlag(it); q != nil {
			*q = false
		}
	}
	l.mu.Unlock()
	for i, it := range items {
		if inline && len(w.held) > 0 {
			// The connection is full: the writer goroutine takes over.
			l.requeue(items[i:])
			break
		}
		if err := it.flush(l, w); err != nil {
			l.writeErr = err
			return false, err
		}
	}
	if err := w.flush(); err != nil {
		l.writeErr = err
		return false, err
	}
	if cap(all) <= maxSpareItems {
		clear(all)
		l.dirtySpare = all[:0]
	}
	return left || len(w.held) > 0, nil
}

// maxSpareItems bounds the dirty array a link keeps between flushes: a
// larger one (a resync) is left to the garbage collector.
const maxSpareItems = 256

// queuedFlag returns the flag that says it is in the dirty list, nil for
// items that may be there more than once (they flush whatever is pending).
func queuedFlag(it linkItem) *bool {
	switch v := it.(type) {
	case *linkObject:
		return &v.queued
	case *tagItem:
		return &v.queued
	}
	return nil
}

// requeue puts items that were taken but not flushed back at the front of
// the dirty list, except those queued again meanwhile.
func (l *link) requeue(items []linkItem) {
	l.mu.Lock()
	defer l.mu.Unlock()
	back := make([]linkItem, 0, len(items)+len(l.dirty))
	for _, it := range items {
		if q := queuedFlag(it); q != nil {
			if *q {
				continue
			}
			*q = true
		}
		back = append(back, it)
	}
	l.dirty = append(back, l.dirty...)
}

// objectOutID returns o's id on the link, declaring it first if needed.
func (l *link) objectOutID(w *frameWriter, o *linkObject) (uint32, error) {
	if o.outID != 0 {
		return o.outID, nil
	}
	id, err := l.declareObjectID(w, o.desc)
	if err == nil {
		o.outID = id
	}
	return id, err
}

// declareObjectID returns our id for d on this link, declaring it (and its
// tags) to the peer first if needed.
func (l *link) declareObjectID(w *frameWriter, d ObjectDescriptor) (uint32, error) {
	if id, ok := l.outObj[d.Key()]; ok {
		return id, nil
	}
	tagIDs := make([]uint32, d.NumTags())
	for i := range d.NumTags() {
		id, err := l.declareTagID(w, d.Tag(i))
		if err != nil {
			return 0, err
		}
		tagIDs[i] = id
	}
	l.nextOutID++
	id := l.nextOutID
	l.outObj[d.Key()] = id
	return id, w.add(&wire.DeclareObject{ID: id, JSON: []byte(d.JSON()), Tags: tagIDs})
}

func (l *link) declareTagID(w *frameWriter, t TagDescriptor) (uint32, error) {
	if id, ok := l.outTag[t]; ok {
		return id, nil
	}
	l.nextOutID++
	id := l.nextOutID
	l.outTag[t] = id
	return id, w.add(&wire.DeclareTag{ID: id, JSON: []byte(t.JSON())})
}

// sendState sends st for d unless the peer already holds exactly it.
func (l *link) sendState(w *frameWriter, o *linkObject, st ObjectState, token uint64) error {
	return l.sendStateAnnounced(w, o, st, token, true)
}

// sendStateAnnounced is sendState; announce says whether a downstream that
// was not told yet hears ObjectLive first (not for the seed of an
// assignment: the subtree exposes the object, it does not observe it).
func (l *link) sendStateAnnounced(w *frameWriter, o *linkObject, st ObjectState, token uint64, announce bool) error {
	l.mu.Lock()
	same := o.peerVersion != nil && o.peerVersion.Compare(st.Version) == 0
	if same && o.peerSync == st.Synchronized {
		l.mu.Unlock()
		return nil
	}
	base, baseVersion := o.peerData, o.peerVersion
	o.peerVersion, o.peerSync, o.peerData = st.Version, st.Synchronized, st.Data
	l.mu.Unlock()
	id, err := l.objectOutID(w, o)
	if err != nil {
		return err
	}
	if l.role == roleDownstream && announce && !o.liveSent {
		o.liveSent = true
		if err := w.add(&wire.ObjectLive{Object: id}); err != nil {
			return err
		}
	}
	age := time.Duration(0)
	if !st.Synchronized {
		age = st.SynchronizedAgo()
	}
	if same {
		return w.add(&wire.Sync{Object: id, Version: st.Version, Synchronized: st.Synchronized, Age: age, Token: token})
	}
	m := &w.state
	*m = wire.State{Object: id, Version: st.Version, Format: st.Format, Synchronized: st.Synchronized, Age: age, Token: token, Data: st.Data}
	l.encodePayload(m, o.desc, st, base, baseVersion)
	err = w.add(m)
	*m = wire.State{} // keeps no state's data alive
	return err
}

// sendExposer tells a peer that was sent ObjectLive for o whether the
// object has an elected exposer, when that changed since it was last told
// (ObjectUnexposed, ObjectExposed; protocol 1.1, PROTOCOL.md §10.2). After
// ObjectLive the peer takes the object as exposed. Called by flushes only.
func (l *link) sendExposer(w *frameWriter, o *linkObject, exposed bool) error {
	if l.peer.Minor < wire.MinorExposer || !o.liveSent || o.unexposedSent != exposed {
		return nil
	}
	o.unexposedSent = !exposed
	id, err := l.objectOutID(w, o)
	if err != nil {
		return err
	}
	if exposed {
		return w.add(&wire.ObjectExposed{Object: id})
	}
	return w.add(&wire.ObjectUnexposed{Object: id})
}

// encodePayload picks the smallest encoding the peer accepts for m: raw,
// zstd (computed once per object version for all links), or a delta from
// the version the peer holds (computed once per (object, from, to) for all
// links). Small states stay raw: compression would not pay for itself.
func (l *link) encodePayload(m *wire.State, d ObjectDescriptor, st ObjectState, base []byte, baseVersion Version) {
	n := len(st.Data)
	if n < delta.MinCompressSize {
		return
	}
	best := n
	if l.peer.Features&wire.FeatureZstd != 0 {
		if z := l.ex.payloads.compressed(d, st); len(z) < best {
			best = len(z)
			m.Encoding, m.Size, m.Data = wire.EncodingZstd, n, z
		}
	}
	if l.peer.Features&wire.FeatureDelta != 0 && base != nil && baseVersion.Compare(st.Version) < 0 {
		if dd := l.ex.payloads.delta(d, baseVersion, base, st); len(dd) < best {
			best = len(dd)
			m.Encoding, m.Size, m.Data, m.Base = wire.EncodingDelta, n, dd, baseVersion
		}
	}
	if best < n {
		l.ex.payloads.saved.Add(uint64(n - best))
	}
}

// flush for an object: pending states of the contracts the link holds, and
// (downstream role) assignment changes of its expose contract.
func (o *linkObject) flush(l *link, w *frameWriter) error {
	l.mu.Lock()
	observe, expose, assigned, token := o.observe, o.expose, o.assigned, o.token
	gone := o.goneDue && observe == nil && o.liveSent && !l.tagObservedLocked(o.desc)
	o.goneDue = false
	if gone {
		o.liveSent, o.unexposedSent, o.peerVersion = false, false, nil
	}
	announced := len(o.sinks) > 0
	l.mu.Unlock()
	if gone {
		id, err := l.objectOutID(w, o)
		if err != nil {
			return err
		}
		if err := w.add(&wire.ObjectGone{Object: id}); err != nil {
			return err
		}
	}
	if observe != nil {
		st, ok, _ := observe.TryNext()
		exposed := observe.obj.exposed.Load()
		if ok && exposed {
			// The exposer is back: say so before its state.
			if err := l.sendExposer(w, o, exposed); err != nil {
				return err
			}
		}
		if ok {
			if err := l.sendState(w, o, st, 0); err != nil {
				return err
			}
		}
		if err := l.sendExposer(w, o, exposed); err != nil {
			return err
		}
	}
	if assigned != nil {
		if st, ok, _ := assigned.TryNext(); ok {
			if err := l.sendState(w, o, st, token); err != nil {
				return err
			}
		}
	}
	if expose != nil || announced {
		// Without the contract (revoked by permissions) the assignments
		// announced through it still get their Revoke.
		var c sinkSource
		if expose != nil {
			c = expose
		}
		return l.flushSinks(w, c, func(s *ObjectStateSink, revoked bool) bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			if o.sinks == nil {
				o.sinks = map[uint64]*ObjectStateSink{}
			}
			if revoked {
				had := o.sinks[s.Token()] != nil
				delete(o.sinks, s.Token())
				return had
			}
			o.sinks[s.Token()] = s
			return true
		}, o.sinksSnapshot(l))
	}
	return nil
}

func (o *linkObject) sinksSnapshot(l *link) []*ObjectStateSink {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*ObjectStateSink, 0, len(o.sinks))
	for _, s := range o.sinks {
		out = append(out, s)
	}
	return out
}

// flushSinks sends Assign for new sinks of c and Revoke for announced sinks
// that were revoked. record(s) updates the link's table and reports whether
// a message is due.
// sinkSource is an expose contract as flushSinks reads it.
type sinkSource interface {
	TryNext() (*ObjectStateSink, bool, error)
}

func (l *link) flushSinks(w *frameWriter, c sinkSource, record func(s *ObjectStateSink, revoked bool) bool, announced []*ObjectStateSink) error {
	for c != nil {
		s, ok, _ := c.TryNext()
		if !ok {
			break
		}
		s.SetNotify(func() { l.markSinkDirty(s) })
		revoked := s.Revoked()
		if !record(s, revoked) || revoked {
			continue
		}
		id, err := l.declareObjectID(w, s.Descriptor())
		if err != nil {
			return err
		}
		// The newly elected subtree gets the object's last state first, so
		// that its exposer can continue from it (SPEC §2.2) and make
		// versions above it whatever its clock says.
		if st, ok := s.Current(); ok {
			l.mu.Lock()
			o := l.object(s.Descriptor())
			l.mu.Unlock()
			if err := l.sendStateAnnounced(w, o, st, 0, false); err != nil {
				return err
			}
		}
		if err := w.add(&wire.Assign{Object: id, Token: s.Token()}); err != nil {
			return err
		}
	}
	for _, s := range announced {
		if s.Revoked() && record(s, true) {
			id, err := l.declareObjectID(w, s.Descriptor())
			if err != nil {
				return err
			}
			if err := w.add(&wire.Revoke{Object: id, Token: s.Token()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// markSinkDirty: an announced sink was revoked; its owner item must flush.
func (l *link) markSinkDirty(s *ObjectStateSink) {
	l.mu.Lock()
	o := l.objects[s.Descriptor().Key()]
	var ti *tagItem
	for _, t := range l.tags {
		if t.sinks[s] {
			ti = t
		}
	}
	l.mu.Unlock()
	if ti != nil {
		l.markDirty(ti)
	}
	if o != nil {
		l.markDirty(o)
	}
}

// flush for a tag item (downstream role): events of the tag observe
// contract, assignment changes of the tag expose contract.
func (ti *tagItem) flush(l *link, w *frameWriter) error {
	l.mu.Lock()
	observe, expose := ti.observe, ti.expose
	l.mu.Unlock()
	if observe != nil {
		for {
			ev, ok, _ := observe.TryNext()
			if !ok {
				break
			}
			l.mu.Lock()
			o := l.object(ev.Descriptor)
			l.mu.Unlock()
			if ev.Gone {
				l.mu.Lock()
				keep := o.observe != nil
				wasLive := o.liveSent
				if !keep {
					o.liveSent, o.unexposedSent, o.peerVersion = false, false, nil
				}
				l.mu.Unlock()
				if !keep && wasLive {
					id, err := l.declareObjectID(w, ev.Descriptor)
					if err != nil {
						return err
					}
					if err := w.add(&wire.ObjectGone{Object: id}); err != nil {
						return err
					}
				}
				continue
			}
			if err := l.sendState(w, o, ev.State, 0); err != nil {
				return err
			}
		}
	}
	l.mu.Lock()
	announced := make([]*ObjectStateSink, 0, len(ti.sinks))
	for s := range ti.sinks {
		announced = append(announced, s)
	}
	l.mu.Unlock()
	if expose != nil || len(announced) > 0 {
		var c sinkSource
		if expose != nil {
			c = expose
		}
		return l.flushSinks(w, c, func(s *ObjectStateSink, revoked bool) bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			o := l.object(s.Descriptor())
			if revoked {
				had := ti.sinks[s]
				delete(ti.sinks, s)
				if o.tagSinks[s.Token()] == s {
					delete(o.tagSinks, s.Token())
				}
				return had
			}
			ti.sinks[s] = true
			if o.tagSinks == nil {
				o.tagSinks = map[uint64]*ObjectStateSink{}
			}
			o.tagSinks[s.Token()] = s
			return true
		}, announced)
	}
	return nil
}

// flush for declarations (upstream role): send what changed in the
// subtree's aggregated wishes.
func (declItem) flush(l *link, w *frameWriter) error {
	objs, tags := l.ex.takeDeclarations()
	for _, t := range tags {
		prev := l.sentTag[t.tag]
		if prev == t {
			continue
		}
		l.sentTag[t.tag] = t
		id, err := l.declareTagID(w, t.tag)
		if err != nil {
			return err
		}
		l.noteDeclared(id, declKey{tag: t.tag})
		err = w.declChange(prev.observe, t.observe, prev.expose, t.expose, declMessages{
			observe: &wire.TagObserve{Tag: id}, unobserve: &wire.TagUnobserve{Tag: id}, unexpose: &wire.TagUnexpose{Tag: id},
			expose: func(c uint32) wire.Message { return &wire.TagExpose{Tag: id, Capacity: c} },
		})
		if err != nil {
			return err
		}
	}
	for _, d := range objs {
		key := d.desc.Key()
		prev, known := l.sentObj[key]
		if known && prev.observe == d.observe && prev.expose == d.expose {
			continue
		}
		if !known && !d.observe && d.expose == 0 {
			continue
		}
		l.sentObj[key] = d
		id, err := l.declareObjectID(w, d.desc)
		if err != nil {
			return err
		}
		l.noteDeclared(id, declKey{obj: key})
		if !known && d.version != nil {
			// Re-declaration after a reconnect: the upstream sends only what changed.
			if err := w.add(&wire.Have{Object: id, Version: d.version}); err != nil {
				return err
			}
		}
		err = w.declChange(prev.observe, d.observe, prev.expose, d.expose, declMessages{
			observe: &wire.ObjectObserve{Object: id}, unobserve: &wire.ObjectUnobserve{Object: id}, unexpose: &wire.ObjectUnexpose{Object: id},
			expose: func(c uint32) wire.Message { return &wire.ObjectExpose{Object: id, Capacity: c} },
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// declMessages are the four declaration messages for one object or tag.
type declMessages struct {
	observe, unobserve, unexpose wire.Message
	expose                       func(capacity uint32) wire.Message
}

// declChange sends what takes the peer from the previous declaration
// (observe flag, exposed capacity) to the current one.
func (w *frameWriter) declChange(prevObserve, observe bool, prevExpose, expose int64, m declMessages) error {
	if observe != prevObserve {
		msg := m.unobserve
		if observe {
			msg = m.observe
		}
		if err := w.add(msg); err != nil {
			return err
		}
	}
	if expose != prevExpose {
		msg := m.unexpose
		if expose > 0 {
			msg = m.expose(uint32(min(expose, 1<<31)))
		}
		return w.add(msg)
	}
	return nil
}

// snapshot describes the link. Called with ex.mu held; takes l.mu (hooks
// take l.mu without ex.mu, so this order cannot deadlock).
func (l *link) snapshot() LinkSnapshot {
	role := "downstream"
	if l.role == roleUpstream {
		role = "upstream"
	}
	l.mu.Lock()
	n := len(l.objects)
	l.mu.Unlock()
	return LinkSnapshot{
		Peer: l.peer.Name, Role: role, Objects: n,
		BytesIn: l.bytesIn.Load(), BytesOut: l.bytesOut.Load(),
		FramesIn: l.framesIn.Load(), FramesOut: l.framesOut.Load(),
	}
}
