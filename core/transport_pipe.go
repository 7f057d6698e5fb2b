package core

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// pipeBuffer is how many frames each direction of a pipe holds before
// Write blocks (bounded, like a socket buffer).
const pipeBuffer = 16

// pipe is the state both ends of an in-memory transport pair share.
type pipe struct {
	closed chan struct{} // closed when either end closes
	once   sync.Once
	// aborted: closed without a handshake (CloseNow, dead link); frames
	// still buffered are dropped, as a TCP reset would.
	aborted atomic.Bool
}

// pipeEnd is one end of an in-memory transport pair: the same contract as
// the WebSocket transport (bounded buffering, close codes and reasons
// reaching the peer, CloseNow, pings with dead-link detection), without a
// network, so that link tests run over both.
type pipeEnd struct {
	p      *pipe
	peer   *pipeEnd
	in     chan []byte        // frames from the peer
	pings  chan chan struct{} // ping requests from the peer; Read answers
	timing linkTiming
	paused atomic.Bool // test hook: stop answering pings

	readLimit atomic.Int64

	mu    sync.Mutex
	cause error // what Read and Write return once closed

	wg sync.WaitGroup // the pinger
}

// newPipeEnds returns the two ends of an in-memory transport; both ping
// their peer as timing says.
func newPipeEnds(timing linkTiming) (*pipeEnd, *pipeEnd) {
	p := &pipe{closed: make(chan struct{})}
	timing = timing.withDefaults()
	a := &pipeEnd{p: p, in: make(chan []byte, pipeBuffer), pings: make(chan chan struct{}, 1), timing: timing}
	b := &pipeEnd{p: p, in: make(chan []byte, pipeBuffer), pings: make(chan chan struct{}, 1), timing: timing}
	a.peer, b.peer = b, a
	for _, e := range []*pipeEnd{a, b} {
		e.readLimit.Store(wire.DefaultMaxFrame)
		if timing.pingInterval > 0 {
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				keepalive(p.closed, timing.pingInterval, timing.pingTimeout, e.ping, e.dead)
			}()
		}
	}
	return a, b
}

// setReadLimit sets the largest frame this end accepts.
func (e *pipeEnd) setReadLimit(n int) { e.readLimit.Store(int64(n)) }

// pause makes this end stop answering pings, as a peer that hangs; its
// peer then declares the link dead.
func (e *pipeEnd) pause() { e.paused.Store(true) }

// Read returns the next frame. Frames the peer wrote before a graceful
// Close are delivered before the close error.
func (e *pipeEnd) Read(ctx context.Context) ([]byte, error) {
	for {
		if !e.p.aborted.Load() {
			select {
			case f := <-e.in:
				return e.accept(f)
			default:
			}
		}
		select {
		case f := <-e.in:
			if e.p.aborted.Load() {
				return nil, e.closedErr()
			}
			return e.accept(f)
		case pong := <-e.pings:
			if !e.paused.Load() {
				pong <- struct{}{}
			}
		case <-e.p.closed:
			if !e.p.aborted.Load() && len(e.in) > 0 {
				continue
			}
			return nil, e.closedErr()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// accept applies the read limit, closing the pipe with 1009 like the
// WebSocket library does.
func (e *pipeEnd) accept(f []byte) ([]byte, error) {
	if limit := e.readLimit.Load(); int64(len(f)) > limit {
		e.shut(&linkClosedError{Code: wsCloseMessageTooBig, Reason: "frame too big"},
			&linkClosedError{Code: wsCloseMessageTooBig, Reason: "frame too big", Remote: true}, false)
		return nil, fmt.Errorf("core: link: frame over the limit of %d bytes: %w", limit, wire.ErrTooLarge)
	}
	return f, nil
}

// Write copies frame into the peer's buffer, blocking while it is full.
func (e *pipeEnd) Write(ctx context.Context, frame []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-e.p.closed:
		return e.closedErr()
	default:
	}
	f := bytes.Clone(frame)
	if f == nil {
		f = []byte{}
	}
	select {
	case e.peer.in <- f:
		return nil
	case <-e.p.closed:
		return e.closedErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writable reports whether Write would not block: the peer's buffer has
// room. Only the link's current flusher writes, so room stays room.
func (e *pipeEnd) writable(int) bool {
	return len(e.peer.in) < cap(e.peer.in)
}

// Close closes both ends; the peer's Read reports code and reason after
// the frames already written.
func (e *pipeEnd) Close(code wire.CloseCode, reason string) error {
	reason = wire.TruncateReason(reason)
	e.shut(&linkClosedError{Code: code, Reason: reason}, &linkClosedError{Code: code, Reason: reason, Remote: true}, false)
	e.wait()
	return nil
}

// CloseNow closes both ends at once; the peer sees a lost connection.
func (e *pipeEnd) CloseNow() error {
	e.shut(&linkClosedError{Reason: "closed at once"}, &linkClosedError{Reason: "closed without a close frame", Remote: true}, true)
	e.wait()
	return nil
}

// shut records why each end closed and closes the pipe, once.
func (e *pipeEnd) shut(mine, theirs error, abort bool) {
	e.p.once.Do(func() {
		e.setCause(mine)
		e.peer.setCause(theirs)
		if abort {
			e.p.aborted.Store(true)
		}
		close(e.p.closed)
	})
}

// wait waits for both ends' pingers: the pipe is closed for both.
func (e *pipeEnd) wait() {
	e.wg.Wait()
	e.peer.wg.Wait()
}

// ping asks the peer's reader for a pong.
func (e *pipeEnd) ping(ctx context.Context) error {
	pong := make(chan struct{}, 1)
	select {
	case e.peer.pings <- pong:
	case <-e.p.closed:
		return e.closedErr()
	case <-ctx.Done():
		return fmt.Errorf("core: ping: %w", ctx.Err())
	}
	select {
	case <-pong:
		return nil
	case <-e.p.closed:
		return e.closedErr()
	case <-ctx.Done():
		return fmt.Errorf("core: wait for pong: %w", ctx.Err())
	}
}

// dead is called by the pinger when a pong did not arrive in time.
func (e *pipeEnd) dead() {
	err := deadLinkError(e.timing.pingTimeout)
	e.shut(err, &linkClosedError{Code: err.Code, Reason: err.Reason, Remote: true}, true)
}

func (e *pipeEnd) setCause(err error) {
	e.mu.Lock()
	if e.cause == nil {
		e.cause = err
	}
	e.mu.Unlock()
}

func (e *pipeEnd) closedErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cause == nil {
		return &linkClosedError{Reason: "closed"}
	}
	return e.cause
}
