package core

import (
	"runtime"
	"sync"
)

// flushers are a few goroutines per exchange that flush links for
// fan-outs (link.markDirty while Exchange.fanouts is not zero). A state
// fanned out to many links then costs a few goroutine wake-ups instead of
// one per link, and the reader that delivers the next state competes with
// a few runnable goroutines instead of a thousand writers. Flushers never
// block on a peer (link.flushShared): what a connection does not take at
// once goes to that link's own writer.
type flushers struct {
	mu sync.Mutex
	// queue[head:] are the links to flush; the array is reused from one
	// fan-out to the next.
	queue []*link
	head  int
	wake  chan struct{} // one token: a flusher that takes it passes it on while work remains
}

// flusherCount is how many flushers an exchange runs: enough to use every
// processor, few enough that a reader is never far behind them.
func flusherCount() int {
	return min(max(runtime.GOMAXPROCS(0), 1), 4)
}

// startFlushers starts the exchange's flushers; they end when ex.done is
// closed.
func (ex *Exchange) startFlushers() {
	ex.flushers.wake = make(chan struct{}, 1)
	for range flusherCount() {
		ex.wg.Add(1)
		go ex.flushLoop()
	}
}

// add queues l for a flusher, once until it is flushed.
func (f *flushers) add(l *link) {
	f.mu.Lock()
	if l.flushQueued {
		f.mu.Unlock()
		return
	}
	l.flushQueued = true
	f.queue = append(f.queue, l)
	f.mu.Unlock()
	f.signal()
}

func (f *flushers) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// next takes the next queued link; nil when there is none. It passes the
// wake-up token on while links remain, so that every flusher joins in.
func (f *flushers) next() *link {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.head == len(f.queue) {
		f.queue, f.head = f.queue[:0], 0
		return nil
	}
	l := f.queue[f.head]
	f.queue[f.head] = nil
	f.head++
	if f.head > 1024 && f.head > len(f.queue)/2 {
		// Links keep coming while the flushers work: move the rest to
		// the front, so that the array does not grow with the backlog.
		n := copy(f.queue, f.queue[f.head:])
		clear(f.queue[n:])
		f.queue, f.head = f.queue[:n], 0
	}
	l.flushQueued = false
	if f.head < len(f.queue) {
		f.signal()
	}
	return l
}

func (ex *Exchange) flushLoop() {
	defer ex.wg.Done()
	for {
		select {
		case <-ex.done:
			return
		case <-ex.flushers.wake:
		}
		for l := ex.flushers.next(); l != nil; l = ex.flushers.next() {
			l.flushShared()
		}
	}
}
