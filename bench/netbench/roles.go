package main

// The roles a child process can play. Each role reports through emit and
// fails through its returned error; every wait is bounded by Args.Timeout
// and every loop by a count and by time.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hakuban/hakuban/core"
	"github.com/hakuban/hakuban/router"

	"github.com/hakuban/hakuban/bench/internal/harness"
)

var roles = map[string]func(Args) error{
	"router":          roleRouter,
	"lat-exposer":     roleLatExposer,
	"lat-observer":    roleLatObserver,
	"abs-exposer":     roleAbsExposer,
	"abs-observer":    roleAbsObserver,
	"fan-exposer":     roleFanExposer,
	"fan-observer":    roleFanObserver,
	"resync-exposer":  roleResyncExposer,
	"resync-observer": roleResyncObserver,
}

// Benchmark clients' reconnect backoff: MaxBackoff is lowered from the
// default 10 s so that the resync scenario measures the router and the
// protocol, not a client's sleep (SPEC's full jitter is kept).
const (
	clientMinBackoff = 100 * time.Millisecond
	clientMaxBackoff = 200 * time.Millisecond
)

// maxSends bounds every back-to-back send loop (time bounds it first).
const maxSends = 1 << 32

// client makes an exchange connected to url.
func client(name, url string, maxObjects int) (*core.Exchange, *core.Connector, error) {
	cfg := core.DefaultConfig()
	cfg.Name = name
	ex, err := core.NewExchange(cfg)
	if err != nil {
		return nil, nil, err
	}
	opts := core.DefaultConnectorOptions()
	opts.URLs = []string{url}
	opts.MinBackoff, opts.MaxBackoff = clientMinBackoff, clientMaxBackoff
	if maxObjects > 0 {
		opts.Limits.MaxObjects = maxObjects
	}
	c, err := ex.Connect(opts)
	if err != nil {
		ex.Close()
		return nil, nil, err
	}
	return ex, c, nil
}

// waitConnected waits until c's link is up.
func waitConnected(c *core.Connector, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		st, ch := c.Watch()
		if st.State == core.ConnectorConnected {
			return nil
		}
		if st.State == core.ConnectorRefused || st.State == core.ConnectorClosed {
			return fmt.Errorf("connector %s: %v", st.State, st.LastError)
		}
		select {
		case <-ch:
		case <-deadline.C:
			return fmt.Errorf("not connected within %v (state %s, last error %v)", timeout, st.State, st.LastError)
		}
	}
}

// ---- router (in-process, for profiling) ----

func roleRouter(a Args) error {
	cfg := router.DefaultConfig()
	cfg.Name = "router"
	cfg.Listen = []string{a.Listen}
	cfg.AddrFile = a.AddrFile
	cfg.MetricsAddr = a.MetricsAddr
	cfg.LogLevel = "warn"
	if a.MaxObjects > 0 {
		cfg.Limits.MaxObjects = a.MaxObjects
	}
	r, err := router.New(cfg)
	if err != nil {
		return err
	}
	if err := r.Start(context.Background()); err != nil {
		return err
	}
	harness.Emit("ready", nil)
	return nil
}

// ---- latency through the router ----

// latDescFor is the object of a latency run: each observer mode has its
// own, so that a run on the same router never sees the last one's state.
func latDescFor(a Args) core.ObjectDescriptor {
	if a.Notify {
		return core.MustObjectDescriptor("latency-notify")
	}
	return core.MustObjectDescriptor("latency")
}

func roleLatExposer(a Args) error {
	ex, c, err := client(a.Name, a.URL, 0)
	if err != nil {
		return err
	}
	if err := waitConnected(c, a.Timeout); err != nil {
		return err
	}
	exp, err := ex.ExposeObject(latDescFor(a), 1)
	if err != nil {
		return err
	}
	harness.Emit("ready", nil)
	sink, err := exp.NextTimeout(a.Timeout)
	if err != nil {
		return fmt.Errorf("no assignment: %w", err)
	}
	err = harness.Paced(a.Interval, 1, a.N, func(i int) error {
		data := make([]byte, a.Size) // Send takes ownership
		harness.Stamp(data, 0)
		return sink.Send(core.ObjectState{Version: core.Version{int64(i)}, Data: data})
	})
	if err != nil {
		return err
	}
	harness.Emit("done", nil)
	return nil
}

// roleLatObserver records each state's latency until version a.N. It
// takes states with Next in a goroutine of its own, the usual way; with
// a.Notify it takes them with TryNext in the contract's SetNotify hook,
// which runs on the link's reader goroutine, so no goroutine is woken
// per state.
func roleLatObserver(a Args) error {
	ex, c, err := client(a.Name, a.URL, 0)
	if err != nil {
		return err
	}
	if err := waitConnected(c, a.Timeout); err != nil {
		return err
	}
	obs, err := ex.ObserveObject(latDescFor(a))
	if err != nil {
		return err
	}
	lats := make([]int64, 0, a.N)
	// record notes st's latency; it reports true once version a.N is in.
	record := func(st core.ObjectState) bool {
		now := time.Now().UnixNano()
		if len(st.Version) == 0 {
			return false
		}
		v := int(st.Version[0])
		if v > a.Warmup && len(lats) < cap(lats) {
			lats = append(lats, now-harness.StampOf(st.Data))
		}
		return v >= a.N
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.Timeout+time.Duration(a.N)*a.Interval)
	defer cancel()
	var mu sync.Mutex // record's, in the hook
	if a.Notify {
		err = observeInHook(ctx, &mu, obs, record, func() { harness.Emit("ready", nil) })
	} else {
		harness.Emit("ready", nil)
		for range a.N + 1 {
			st, err := obs.Next(ctx)
			if err != nil {
				return fmt.Errorf("after %d states: %w", len(lats), err)
			}
			if record(st) {
				break
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		return fmt.Errorf("after %d states: %w", len(lats), err)
	}
	harness.Emit("result", harness.Summarize(lats, a.N-a.Warmup))
	return nil
}

// observeInHook feeds obs's states to record from its SetNotify hook until
// record reports done or ctx ends. Hooks may run on several goroutines
// at once and a hook may still run after SetNotify(nil) returns, so record
// runs under mu, which the caller takes before reading what record wrote.
// installed, if not nil, runs once the hook is in place.
func observeInHook(ctx context.Context, mu *sync.Mutex, obs *core.ObjectObserveContract, record func(core.ObjectState) bool, installed func()) error {
	done := make(chan error, 1)
	finish := func(err error) {
		select {
		case done <- err:
		default:
		}
	}
	obs.SetNotify(func() {
		mu.Lock()
		defer mu.Unlock()
		for {
			st, ok, err := obs.TryNext()
			if err != nil {
				finish(err)
				return
			}
			if !ok {
				return
			}
			if record(st) {
				finish(nil)
				return
			}
		}
	})
	if installed != nil {
		installed()
	}
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	obs.SetNotify(nil)
	return err
}

// ---- absorption ----

func absDesc(i int) core.ObjectDescriptor { return core.MustObjectDescriptor([]any{"abs", i}) }

// absDone is what an absorption exposer process reports.
type absDone struct {
	Sent    int64
	Errors  int64
	Elapsed time.Duration
}

// roleAbsExposer runs a.N exchanges, each with its own connector,
// exposing objects a.First..a.First+a.N-1; on "go" each sends 64-byte
// states back-to-back for a.Duration.
func roleAbsExposer(a Args) error {
	sinks := make([]*core.ObjectStateSink, a.N)
	errs := make([]error, a.N)
	var wg sync.WaitGroup
	for k := range a.N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex, c, err := client(fmt.Sprintf("%s-%d", a.Name, k), a.URL, 0)
			if err != nil {
				errs[k] = err
				return
			}
			if err := waitConnected(c, a.Timeout); err != nil {
				errs[k] = err
				return
			}
			exp, err := ex.ExposeObject(absDesc(a.First+k), 1)
			if err != nil {
				errs[k] = err
				return
			}
			sinks[k], errs[k] = exp.NextTimeout(a.Timeout)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	harness.Emit("ready", nil)
	data := make([]byte, a.Size) // shared and never modified
	// Each "go" runs one back-to-back phase: "go" sends in a tight loop,
	// "go-yield" calls runtime.Gosched() after each Send so that the
	// process's link writers get the exchange's mutex (see the report:
	// a tight loop starves them).
	for phase := 0; phase < 8; phase++ {
		yield := harness.WaitCommand(a.MaxLife, "go", "go-yield") == "go-yield"
		var sent, failed atomic.Int64
		start := time.Now()
		deadline := start.Add(a.Duration)
		for _, sink := range sinks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := int64(0)
				cur, _ := sink.Current()
				first := int64(1)
				if len(cur.Version) > 0 {
					first = cur.Version[0] + 1
				}
				for i := first; i < first+maxSends; i++ {
					if err := sink.Send(core.ObjectState{Version: core.Version{i}, Data: data}); err != nil {
						failed.Add(1)
						break
					}
					n++
					if yield {
						runtime.Gosched()
					}
					if i&255 == 0 && time.Now().After(deadline) {
						break
					}
				}
				sent.Add(n)
			}()
		}
		wg.Wait()
		harness.Emit("done", absDone{Sent: sent.Load(), Errors: failed.Load(), Elapsed: time.Since(start)})
	}
	return nil
}

// absResult is what an absorption observer reports.
type absResult struct {
	Received int64
	// LastVersions sums the newest version held per object.
	LastVersions int64
}

// roleAbsObserver observes objects 0..a.Objects-1 on one exchange and
// takes every state it can (latest wins), one goroutine per object, until
// "stop".
func roleAbsObserver(a Args) error {
	ex, c, err := client(a.Name, a.URL, 0)
	if err != nil {
		return err
	}
	if err := waitConnected(c, a.Timeout); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.MaxLife)
	var received atomic.Int64
	latest := make([]atomic.Int64, a.Objects) // newest version held, per object
	var wg sync.WaitGroup
	for i := range a.Objects {
		obs, err := ex.ObserveObject(absDesc(i))
		if err != nil {
			cancel()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < maxSends; n++ {
				st, err := obs.Next(ctx)
				if err != nil {
					break
				}
				received.Add(1)
				if len(st.Version) > 0 {
					latest[i].Store(st.Version[0])
				}
			}
		}()
	}
	sum := func() absResult {
		r := absResult{Received: received.Load()}
		for i := range latest {
			r.LastVersions += latest[i].Load()
		}
		return r
	}
	harness.Emit("ready", nil)
	// "count" reports the states received so far; "stop" ends.
	for range 64 {
		if harness.WaitCommand(a.MaxLife, "count", "stop") == "count" {
			harness.Emit("count", sum())
			continue
		}
		break
	}
	cancel()
	wg.Wait()
	harness.Emit("result", sum())
	return nil
}

// ---- fan-out ----

var fanDesc = core.MustObjectDescriptor("fanout")

// roleFanObserver runs a.N exchanges, each with its own connector,
// observing one object, until each holds version a.Objects. It takes the
// states with Next, one goroutine per exchange; with a.Notify, with
// TryNext in the contract's SetNotify hook.
func roleFanObserver(a Args) error {
	last := a.Objects
	recv := make([][]int64, a.N)
	errs := make([]error, a.N)
	var warm atomic.Int64
	ready := make(chan struct{})
	// Until ready, a.Timeout bounds the wait (below); after it, the run
	// (a.Duration) plus a.Timeout.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for k := range a.N {
		recv[k] = make([]int64, last+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex, c, err := client(fmt.Sprintf("%s-%d", a.Name, k), a.URL, 0)
			if err != nil {
				errs[k] = err
				return
			}
			obs, err := ex.ObserveObject(fanDesc)
			if err != nil {
				errs[k] = err
				return
			}
			if err := waitConnected(c, a.Timeout); err != nil {
				errs[k] = err
				return
			}
			isWarm := false
			// record notes when st arrived; it reports true once the
			// last version is in.
			record := func(st core.ObjectState) bool {
				now := time.Now().UnixNano()
				if len(st.Version) == 0 {
					return false
				}
				v := int(st.Version[0])
				if v >= 0 && v <= last {
					recv[k][v] = now
				}
				if !isWarm {
					isWarm = true
					if warm.Add(1) == int64(a.N) {
						close(ready)
					}
				}
				return v >= last
			}
			if a.Notify {
				// A hook may still run after observeInHook returns:
				// stopped keeps it from writing once the results are
				// read.
				var mu sync.Mutex
				stopped := false
				err := observeInHook(ctx, &mu, obs, func(st core.ObjectState) bool {
					return stopped || record(st)
				}, nil)
				mu.Lock()
				stopped = true
				mu.Unlock()
				if err != nil {
					errs[k] = fmt.Errorf("exchange %d: %w", k, err)
				}
				return
			}
			for range 1 << 20 {
				st, err := obs.Next(ctx)
				if err != nil {
					errs[k] = fmt.Errorf("exchange %d: %w", k, err)
					return
				}
				if record(st) {
					return
				}
			}
		}()
	}
	select {
	case <-ready:
		harness.Emit("ready", nil)
		time.AfterFunc(a.Duration+a.Timeout, cancel)
	case <-time.After(a.Timeout):
		return fmt.Errorf("only %d of %d exchanges got the first state within %v", warm.Load(), a.N, a.Timeout)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Per exchange, the time it held v or newer is the earliest receive
	// time of any version ≥ v (a version may be skipped: latest wins).
	var res harness.FanReport
	res.First, res.Last, res.Missing = harness.Held(recv, last)
	res.Delivered, res.Expected = harness.Delivered(recv, last)
	harness.Emit("result", res)
	return nil
}

// fanDone: the send time (UnixNano) of each version (index).
type fanDone struct {
	Sent []int64
}

// roleFanExposer sends version 1 as soon as it is assigned, then on "go"
// versions 2..a.N paced by a.Interval.
func roleFanExposer(a Args) error {
	ex, c, err := client(a.Name, a.URL, 0)
	if err != nil {
		return err
	}
	if err := waitConnected(c, a.Timeout); err != nil {
		return err
	}
	exp, err := ex.ExposeObject(fanDesc, 1)
	if err != nil {
		return err
	}
	sink, err := exp.NextTimeout(a.Timeout)
	if err != nil {
		return fmt.Errorf("no assignment: %w", err)
	}
	sent := make([]int64, a.N+1)
	send := func(v int) error {
		data := make([]byte, a.Size)
		sent[v] = harness.Stamp(data, 0)
		return sink.Send(core.ObjectState{Version: core.Version{int64(v)}, Data: data})
	}
	if err := send(1); err != nil {
		return err
	}
	harness.Emit("ready", nil)
	harness.WaitCommand(a.Timeout, "go")
	if err := harness.Paced(a.Interval, 2, a.N, send); err != nil {
		return err
	}
	harness.Emit("done", fanDone{Sent: sent})
	return nil
}

// ---- resync ----

var resyncTag = core.MustTagDescriptor("resync")

func resyncDesc(i int) core.ObjectDescriptor { return core.MustObjectDescriptor(i, resyncTag) }

// roleResyncExposer tag-exposes every "resync" object and sends one state
// per assignment (again after each reconnect).
func roleResyncExposer(a Args) error {
	ex, c, err := client(a.Name, a.URL, a.MaxObjects)
	if err != nil {
		return err
	}
	if err := waitConnected(c, a.Timeout); err != nil {
		return err
	}
	exp, err := ex.ExposeTag(resyncTag, 1)
	if err != nil {
		return err
	}
	harness.Emit("ready", nil)
	data := make([]byte, a.Size) // shared and never modified
	ctx, cancel := context.WithTimeout(context.Background(), a.MaxLife)
	defer cancel()
	for sink := range exp.Sinks(ctx) {
		_ = sink.Send(core.ObjectState{Data: data}) // fails only when already revoked
	}
	return nil
}

// syncedAt is a resync observer's report: when its count of synchronized
// objects reached all (ev "synced") or none (ev "desynced").
type syncedAt struct {
	At int64
}

// roleResyncObserver observes a.Objects objects on one exchange and
// reports each time all of them are synchronized, and each time none is.
func roleResyncObserver(a Args) error {
	ex, c, err := client(a.Name, a.URL, a.MaxObjects)
	if err != nil {
		return err
	}
	n := a.Objects
	obs := make([]*core.ObjectObserveContract, n)
	synced := make([]bool, n)
	var mu sync.Mutex
	var queue []int32
	wake := make(chan struct{}, 1)
	for i := range n {
		o, err := ex.ObserveObject(resyncDesc(i))
		if err != nil {
			return err
		}
		obs[i] = o
	}
	for i, o := range obs {
		o.SetNotify(func() {
			mu.Lock()
			queue = append(queue, int32(i))
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}
	if err := waitConnected(c, a.Timeout); err != nil {
		return err
	}
	harness.Emit("ready", nil)
	count, full := 0, false
	deadline := time.After(a.MaxLife)
	for {
		select {
		case <-wake:
		case c := <-harness.Commands():
			if c == "count" {
				harness.Emit("count", count)
			}
			continue
		case <-deadline:
			return errors.New("lifetime over")
		}
		mu.Lock()
		batch := queue
		queue = nil
		mu.Unlock()
		for _, i := range batch {
			for range 1 << 10 {
				st, ok, _ := obs[i].TryNext()
				if !ok {
					break
				}
				if st.Synchronized != synced[i] {
					synced[i] = st.Synchronized
					if st.Synchronized {
						count++
					} else {
						count--
					}
				}
			}
		}
		switch {
		case !full && count == n:
			full = true
			harness.Emit("synced", syncedAt{At: time.Now().UnixNano()})
		case full && count == 0:
			full = false
			harness.Emit("desynced", syncedAt{At: time.Now().UnixNano()})
		}
	}
}
