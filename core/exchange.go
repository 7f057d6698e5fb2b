package core

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Exchange is the local meeting point of contracts: one per process is
// typical. It decides which objects are live, elects one exposer per
// observed object, and delivers states to observers. It is safe for
// concurrent use.
//
// # Locking
//
// One mutex, mu, guards all of the exchange's state: objects, contracts,
// sinks and their queues. Nothing blocks while holding it and no user code
// runs under it: notify hooks are collected in hooks and run by unlock.
// Network links (later) take mu only for short, non-blocking updates.
type Exchange struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	objects map[string]*object
	tags    map[TagDescriptor]*tagEntry
	// exposers lists every candidate in the order it joined; the order
	// breaks election ties (the longest-standing candidate wins).
	exposers []candidate
	// exposersRemoved counts removed candidates still in exposers.
	exposersRemoved int
	// nextID numbers contracts. There is no registry of contracts: each is
	// reachable from the objects, tags or exposers it names (a registry
	// would cost ~40 B per contract, and there may be millions).
	nextID uint64
	// handovers lists planned moves whose old sink is still valid, in the
	// order their deadlines expire.
	handovers      []handover
	rebalanceDirty bool
	hooks          []func()
	hooksSpare     []func() // an empty array for hooks to take (addHook)
	// fanouts counts hook batches of more than maxInlineHooks hooks
	// running (a state fanned out to many links): while one runs, links
	// leave their changes to the flushers (link.markDirty).
	fanouts atomic.Int32
	// batches counts links' readers handling a frame of several messages
	// (a resync, a burst): while one runs, links leave their changes to
	// their writers, which batch them into frames, instead of writing a
	// frame per change inline.
	batches atomic.Int32
	// flushers flush links for fan-outs (flushers.go).
	flushers flushers
	counters Counters
	// up is the upstream link's view of the exchange, nil without one.
	up *upstream
	// links are the running network links.
	links map[*link]struct{}
	// payloads shares encoded states between links.
	payloads *payloads
	// connector is the exchange's one connector to an upstream, if any.
	connector *Connector

	kick chan struct{} // wakes the maintenance goroutine; room for one token
	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// Counters are cumulative event counts, for snapshots and metrics.
type Counters struct {
	Elections   uint64 `json:"elections"`
	Failovers   uint64 `json:"failovers"`
	Rebalances  uint64 `json:"rebalances"`
	Handovers   uint64 `json:"handovers_completed"`
	HandoverTTL uint64 `json:"handovers_timed_out"`
	States      uint64 `json:"states"`
	StaleWrites uint64 `json:"stale_writes"`
	Revoked     uint64 `json:"revoked_writes"`
	// RefusedContracts: declarations of downstream links refused because
	// the link's permissions do not allow them (SPEC §3.3).
	RefusedContracts uint64 `json:"refused_contracts"`
	// BytesSaved: state bytes links did not send thanks to compression
	// and deltas.
	BytesSaved     uint64 `json:"bytes_saved"`
	DeltasComputed uint64 `json:"deltas_computed"`
	DeltaCacheHits uint64 `json:"delta_cache_hits"`
}

// tagEntry indexes what the exchange knows about one tag.
type tagEntry struct {
	objects   map[*object]struct{} // objects (with object contracts) carrying the tag
	observers []*TagObserveContract
	exposers  []*TagExposeContract
}

func (t *tagEntry) empty() bool {
	return len(t.objects) == 0 && len(t.observers) == 0 && len(t.exposers) == 0
}

// handover is a planned move in progress: prev is revoked at deadline
// (UnixNano) at the latest.
type handover struct {
	o        *object
	prev     *ObjectStateSink
	deadline int64
}

// contractInfo lets the exchange list and close contracts without knowing
// their types.
type contractInfo interface {
	snapshot() ContractSnapshot
	closeLocked()
}

// NewExchange returns an exchange configured by cfg. Close it when done: it
// owns one maintenance goroutine (rebalancing and handover deadlines).
func NewExchange(cfg Config) (*Exchange, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ex := &Exchange{
		cfg:      cfg,
		log:      cfg.Logger,
		objects:  make(map[string]*object),
		tags:     make(map[TagDescriptor]*tagEntry),
		kick:     make(chan struct{}, 1),
		payloads: newPayloads(),
		done:     make(chan struct{}),
	}
	if ex.log == nil {
		ex.log = slog.New(slog.DiscardHandler)
	}
	ex.wg.Add(1)
	go ex.maintain()
	ex.startFlushers()
	return ex, nil
}

// Config returns the exchange's configuration.
func (ex *Exchange) Config() Config { return ex.cfg }

// Close closes every contract made on the exchange (their waiters return
// ErrClosed, their sinks are revoked) and stops the maintenance goroutine.
// It is idempotent.
func (ex *Exchange) Close() error {
	ex.mu.Lock()
	if ex.closed {
		ex.mu.Unlock()
		return nil
	}
	ex.closed = true
	for _, c := range ex.allContracts() {
		c.closeLocked()
	}
	ex.unlock()
	close(ex.done)
	ex.wg.Wait()
	return nil
}

// unlock releases mu and then runs the notify hooks queued while it was
// held, so that hooks may call back into the exchange.
func (ex *Exchange) unlock() {
	if len(ex.hooks) == 0 {
		ex.mu.Unlock()
		return
	}
	hooks := ex.hooks
	ex.hooks = nil
	ex.mu.Unlock()
	if len(hooks) > maxInlineHooks {
		ex.fanouts.Add(1)
		defer ex.fanouts.Add(-1)
	}
	for _, f := range hooks {
		f()
	}
	// Hand the array back for the next hooks (a fan-out's list of a
	// thousand links would otherwise be allocated anew for each state),
	// unless the mutex is busy or the array is large.
	clear(hooks)
	if cap(hooks) <= maxSpareHooks && ex.mu.TryLock() {
		if ex.hooksSpare == nil {
			ex.hooksSpare = hooks[:0]
		}
		ex.mu.Unlock()
	}
}

// maxSpareHooks bounds the hook array an exchange keeps between unlocks.
const maxSpareHooks = 4096

// addHook queues f to run after mu is released (unlock). Called with mu
// held.
func (ex *Exchange) addHook(f func()) {
	if ex.hooks == nil {
		ex.hooks, ex.hooksSpare = ex.hooksSpare, nil
	}
	ex.hooks = append(ex.hooks, f)
}

// maxInlineHooks is the largest batch of hooks whose link hooks may write
// inline (see Exchange.fanouts).
const maxInlineHooks = 4

// register adds a contract; called with mu held. It fails once the
// exchange is closed.
func (ex *Exchange) register() (uint64, error) {
	if ex.closed {
		return 0, fmt.Errorf("core: exchange: %w", ErrClosed)
	}
	ex.nextID++
	return ex.nextID, nil
}

// allContracts lists every open contract, in no particular order. Called
// with mu held.
func (ex *Exchange) allContracts() []contractInfo {
	var all []contractInfo
	for _, c := range ex.exposers {
		if !c.base().removed {
			all = append(all, c.(contractInfo))
		}
	}
	for _, e := range ex.tags {
		for _, c := range e.observers {
			all = append(all, c)
		}
	}
	for _, o := range ex.objects {
		for _, obs := range o.observers {
			if c, ok := obs.(*ObjectObserveContract); ok {
				all = append(all, c)
			}
		}
	}
	return all
}

// checkDescriptor applies the exchange's configured limits.
func (ex *Exchange) checkDescriptor(d ObjectDescriptor) error {
	if d.IsZero() {
		return fmt.Errorf("core: zero object descriptor: %w", ErrInvalidDescriptor)
	}
	return ex.cfg.Limits.Check(d)
}

// objectFor returns the object entry for d, creating it. Called with mu held.
func (ex *Exchange) objectFor(d ObjectDescriptor) *object {
	key := d.Key()
	if o := ex.objects[key]; o != nil {
		return o
	}
	o := &object{desc: d}
	ex.objects[key] = o
	for i := range d.NumTags() {
		t := ex.tagFor(d.Tag(i))
		if t.objects == nil {
			t.objects = make(map[*object]struct{})
		}
		t.objects[o] = struct{}{}
	}
	return o
}

func (ex *Exchange) tagFor(t TagDescriptor) *tagEntry {
	e := ex.tags[t]
	if e == nil {
		e = &tagEntry{}
		ex.tags[t] = e
	}
	return e
}

// dropTagIfEmpty forgets a tag nothing refers to any more.
func (ex *Exchange) dropTagIfEmpty(t TagDescriptor) {
	if e := ex.tags[t]; e != nil && e.empty() {
		delete(ex.tags, t)
	}
}

// tagObserved reports whether a tag observe contract covers one of o's tags.
func (ex *Exchange) tagObserved(o *object) bool {
	for i := range o.desc.NumTags() {
		if e := ex.tags[o.desc.Tag(i)]; e != nil && len(e.observers) > 0 {
			return true
		}
	}
	return false
}

// refresh re-evaluates o after any change to its contracts: liveness (SPEC
// §2.1), tag observer attachment, election or release (§2.2), and whether
// the entry can be forgotten. Called with mu held.
func (ex *Exchange) refresh(o *object) {
	live := o.objObservers > 0 || (len(o.exposers) > 0 && ex.tagObserved(o))
	if live != o.live {
		o.live = live
		if live {
			for i := range o.desc.NumTags() {
				if e := ex.tags[o.desc.Tag(i)]; e != nil {
					for _, c := range e.observers {
						o.observers = append(o.observers, c)
						c.attach(o)
					}
				}
			}
		} else {
			// Only tag observers can be attached to an object that is not
			// live for another reason: detach them all.
			for _, obs := range o.observers {
				obs.detach(o)
			}
			clear(o.observers)
			o.observers = o.observers[:0]
			o.cur.Store(nil)
		}
	}
	if o.observed() {
		if o.assigned == nil {
			ex.elect(o)
		} else {
			ex.reconsider(o)
		}
	} else if o.assigned != nil || o.previous != nil {
		ex.release(o)
	}
	ex.declareObject(o)
	if !live && o.objObservers == 0 && len(o.exposers) == 0 {
		ex.forget(o)
	}
}

// forget removes an object nothing refers to any more. Called with mu held.
func (ex *Exchange) forget(o *object) {
	if ex.objects[o.desc.Key()] != o {
		return
	}
	delete(ex.objects, o.desc.Key())
	ex.payloads.forget(o.desc)
	for i := range o.desc.NumTags() {
		t := o.desc.Tag(i)
		if e := ex.tags[t]; e != nil {
			delete(e.objects, o)
			ex.dropTagIfEmpty(t)
		}
	}
}

// deliver tells every observer of o that its state changed. Called with mu held.
func (ex *Exchange) deliver(o *object) {
	for _, obs := range o.observers {
		obs.stateChanged(o)
	}
}

// noteExposer records whether o has an elected exposer (o.hasExposer) for
// the links that forward it downstream, and when that changed, wakes the
// downstream links observing o so they tell their peers (ObjectUnexposed,
// ObjectExposed). Called with mu held wherever o.assigned or o.upUnexposed
// changes.
func (ex *Exchange) noteExposer(o *object) {
	has := o.hasExposer()
	if o.exposed.Load() == has {
		return
	}
	o.exposed.Store(has)
	for _, obs := range o.observers {
		if c, ok := obs.(*ObjectObserveContract); ok && c.origin == originDownstream && !c.w.closed {
			c.w.signal(ex)
		}
	}
}

// desynchronize marks o's state as no longer synchronized (its exposer went
// away) and tells the observers. Called with mu held.
func (ex *Exchange) desynchronize(o *object) {
	st := o.state()
	if st.IsZero() || !st.Synchronized {
		return
	}
	st.Synchronized = false
	st.LastSynchronized = time.Now()
	o.publish(st)
	ex.deliver(o)
}

// removeObserver removes obs from o's observer list. Called with mu held.
func (o *object) removeObserver(obs observer) {
	if i := slices.Index(o.observers, obs); i >= 0 {
		last := len(o.observers) - 1
		o.observers[i] = o.observers[last]
		o.observers[last] = nil
		o.observers = o.observers[:last]
	}
}

func (ex *Exchange) addLink(l *link) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.links == nil {
		ex.links = make(map[*link]struct{})
	}
	ex.links[l] = struct{}{}
}

func (ex *Exchange) removeLink(l *link) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	delete(ex.links, l)
}
