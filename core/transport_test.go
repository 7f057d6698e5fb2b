package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// transportKinds lists the transports every transport and link test runs
// over (hashicorp/yamux testConnTypes style): the in-memory pipe and a
// real WebSocket over loopback TCP.
var transportKinds = []struct {
	name string
	// pair returns two connected transports with full read limits; a is
	// the dialing side. Both are closed when the test ends.
	pair func(t *testing.T, timing linkTiming) (a, b transport)
	// silent returns a transport whose peer never reads, so it never
	// answers pings.
	silent func(t *testing.T, timing linkTiming) transport
}{
	{"pipe", pipePair, silentPipe},
	{"websocket", wsPair, silentWS},
}

func pipePair(t *testing.T, timing linkTiming) (transport, transport) {
	a, b := newPipeEnds(timing)
	t.Cleanup(func() { a.CloseNow() })
	return a, b
}

func silentPipe(t *testing.T, timing linkTiming) transport {
	a, b := newPipeEnds(timing)
	b.pause()
	t.Cleanup(func() { a.CloseNow() })
	return a
}

// upgradeServer starts an httptest server, its listener wrapped by wrap
// unless nil, that upgrades requests with accept; the server is closed
// when the test ends. Its accepted function returns the next upgrade's
// result, closed when the test ends, and fails the test if that upgrade
// failed.
func upgradeServer[T interface{ CloseNow() error }](t testing.TB, wrap func(net.Listener) net.Listener,
	accept func(http.ResponseWriter, *http.Request) (T, error)) (srv *httptest.Server, accepted func() T) {
	t.Helper()
	ch := make(chan T, 1)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := accept(w, r)
		if err != nil {
			t.Errorf("accept: %v", err)
			close(ch)
			return
		}
		ch <- c
	}))
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, func() T {
		t.Helper()
		c, ok := <-ch
		if !ok {
			t.FailNow()
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
}

// acceptWith returns acceptWS with a timing and a read limit, for
// upgradeServer.
func acceptWith(timing linkTiming, readLimit int) func(http.ResponseWriter, *http.Request) (*wsTransport, error) {
	return func(w http.ResponseWriter, r *http.Request) (*wsTransport, error) {
		return acceptWS(w, r, timing, readLimit)
	}
}

// wsURL is the ws:// URL of an httptest server.
func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

// wsPair connects two WebSocket transports through an httptest server.
func wsPair(t *testing.T, timing linkTiming) (transport, transport) {
	a, b := wsConnect(t, timing)
	return a, b
}

// wsConnect connects a dialing and an accepting WebSocket transport
// through an httptest server; both are closed when the test ends.
func wsConnect(t testing.TB, timing linkTiming) (client, server *wsTransport) {
	t.Helper()
	srv, accepted := upgradeServer(t, nil, acceptWith(timing, wire.DefaultMaxFrame))
	client, err := dialWS(context.Background(), wsURL(srv), nil, 5*time.Second, timing, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.CloseNow() })
	return client, accepted()
}

// silentWS dials a server that accepts the upgrade and then neither reads
// nor writes: a hung peer.
func silentWS(t *testing.T, timing linkTiming) transport {
	t.Helper()
	a, err := dialWS(context.Background(), hungServer(t, false), nil, 5*time.Second, timing, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.CloseNow() })
	return a
}

// pollFor polls cond until it holds, failing the test after timeout.
func pollFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v", what, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// within runs f and fails the test when it takes longer than d; it
// returns f's result.
func within[T any](t testing.TB, d time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		panic("unreachable")
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func frameOf(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i + j*7)
	}
	return b
}

func TestTransportFramesInOrder(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			const n = 300
			errc := make(chan error, 1)
			go func() {
				for i := range n {
					if err := a.Write(ctx, frameOf(i, 1+i*13%5000)); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			// A context that cannot be cancelled: the WebSocket transport
			// reads in this goroutine, as for a link's reader.
			rctx := context.WithoutCancel(ctx)
			for i := range n {
				f, err := b.Read(rctx)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if want := frameOf(i, 1+i*13%5000); !bytes.Equal(f, want) {
					t.Fatalf("frame %d: got %d bytes, want %d (content differs: %v)", i, len(f), len(want), len(f) == len(want))
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			// The other direction works too.
			if err := b.Write(ctx, []byte("back")); err != nil {
				t.Fatal(err)
			}
			if f, err := a.Read(ctx); err != nil || string(f) != "back" {
				t.Fatalf("got %q, %v", f, err)
			}
		})
	}
}

func TestTransportLargeFrames(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			big := frameOf(3, wire.DefaultMaxFrame)
			go a.Write(ctx, big)
			f, err := b.Read(ctx)
			if err != nil || !bytes.Equal(f, big) {
				t.Fatalf("got %d bytes, %v; want %d bytes", len(f), err, len(big))
			}
			// A small frame after a big one (the reader drops its big buffer).
			go a.Write(ctx, []byte("small"))
			if f, err := b.Read(ctx); err != nil || string(f) != "small" {
				t.Fatalf("got %q, %v", f, err)
			}
		})
	}
}

func TestTransportOversizedFrame(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			b.(readLimiter).setReadLimit(128 << 10)
			go a.Write(ctx, make([]byte, 256<<10))
			_, err := b.Read(ctx)
			if !errors.Is(err, wire.ErrTooLarge) {
				t.Fatalf("receiver: got %v, want wire.ErrTooLarge", err)
			}
			if code := wire.CloseCodeFor(err); code != wire.CloseLimitExceeded {
				t.Errorf("receiver's close code %v, want %v", code, wire.CloseLimitExceeded)
			}
			_, err = a.Read(ctx)
			var lc *linkClosedError
			if !errors.As(err, &lc) || !lc.Remote || lc.Code != 1009 {
				t.Fatalf("sender: got %v, want a close by the peer with 1009", err)
			}
		})
	}
}

func TestTransportCloseCodeReachesPeer(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			if err := a.Write(ctx, []byte("last words")); err != nil {
				t.Fatal(err)
			}
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				a.Close(wire.CloseAuthRefused, "bad token")
			}()
			if f, err := b.Read(ctx); err != nil || string(f) != "last words" {
				t.Fatalf("got %q, %v; want the frame written before Close", f, err)
			}
			_, err := b.Read(ctx)
			var lc *linkClosedError
			if !errors.As(err, &lc) || !lc.Remote || lc.Code != wire.CloseAuthRefused || lc.Reason != "bad token" {
				t.Fatalf("got %v, want a close by the peer with 4002 \"bad token\"", err)
			}
			if !errors.Is(err, ErrConnection) {
				t.Errorf("%v does not match ErrConnection", err)
			}
			if got, want := err.Error(), "core: peer closed the link: bad token (close 4002)"; got != want {
				t.Errorf("error text %q, want %q", got, want)
			}
			within(t, 5*time.Second, "Close", func() struct{} { <-closed; return struct{}{} })
			_, err = a.Read(ctx)
			if !errors.As(err, &lc) || lc.Remote || lc.Code != wire.CloseAuthRefused {
				t.Fatalf("closer's Read: got %v, want its own close", err)
			}
			if err := a.Write(ctx, []byte("x")); err == nil {
				t.Fatal("Write after Close succeeded")
			}
		})
	}
}

func TestTransportCloseNowUnblocksRead(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			readErr := make(chan error, 1)
			go func() {
				_, err := a.Read(ctx)
				readErr <- err
			}()
			within(t, time.Second, "CloseNow", a.CloseNow)
			err := within(t, time.Second, "blocked Read", func() error { return <-readErr })
			if !errors.Is(err, ErrConnection) {
				t.Fatalf("Read: got %v, want a closed-link error", err)
			}
			err = within(t, 5*time.Second, "peer's Read", func() error { _, err := b.Read(ctx); return err })
			if !errors.Is(err, ErrConnection) {
				t.Fatalf("peer's Read: got %v, want a closed-link error", err)
			}
		})
	}
}

func TestTransportPeerSeesCloseNow(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			a.CloseNow()
			_, err := b.Read(ctx)
			var lc *linkClosedError
			if !errors.As(err, &lc) || !lc.Remote || lc.Code != 0 {
				t.Fatalf("got %v, want a lost connection without close code", err)
			}
		})
	}
}

func TestTransportReadContextLeavesLinkUsable(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, err := b.Read(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want DeadlineExceeded", err)
			}
			ctx := testCtx(t)
			if err := a.Write(ctx, []byte("still here")); err != nil {
				t.Fatal(err)
			}
			// The frame the cancelled Read left behind reaches the next
			// Read, also one reading in the calling goroutine.
			if f, err := b.Read(context.WithoutCancel(ctx)); err != nil || string(f) != "still here" {
				t.Fatalf("got %q, %v", f, err)
			}
		})
	}
}

func TestTransportDetectsDeadPeer(t *testing.T) {
	const interval, timeout = 50 * time.Millisecond, 50 * time.Millisecond
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a := k.silent(t, linkTiming{pingInterval: interval, pingTimeout: timeout})
			start := time.Now()
			_, err := a.Read(context.WithoutCancel(testCtx(t)))
			elapsed := time.Since(start)
			var lc *linkClosedError
			if !errors.As(err, &lc) || lc.Code != wire.CloseTimeout || !strings.Contains(lc.Reason, "no pong") {
				t.Fatalf("got %v, want a dead link (no pong)", err)
			}
			// Detection takes interval+timeout; allow scheduling slack.
			if elapsed < interval || elapsed > interval+timeout+time.Second {
				t.Errorf("dead link reported after %v, want about %v", elapsed, interval+timeout)
			}
		})
	}
}

func TestTransportLivePeerStaysUp(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{pingInterval: 10 * time.Millisecond, pingTimeout: 200 * time.Millisecond})
			ctx := testCtx(t)
			// Both sides read (as a link does), so pings are answered.
			errs := make(chan error, 2)
			for _, tr := range []transport{a, b} {
				go func() {
					_, err := tr.Read(ctx)
					errs <- err
				}()
			}
			select {
			case err := <-errs:
				t.Fatalf("a live link failed: %v", err)
			case <-time.After(300 * time.Millisecond):
			}
			a.Close(wire.CloseGoingAway, "done")
			for range 2 {
				<-errs
			}
		})
	}
}

func TestTransportCloseIsBoundedWhenPeerHangs(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a := k.silent(t, linkTiming{closeTimeout: 100 * time.Millisecond})
			within(t, 2*time.Second, "Close to a hung peer", func() error { return a.Close(wire.CloseGoingAway, "bye") })
		})
	}
}

func TestTransportConcurrentClose(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			go func() {
				for {
					if _, err := b.Read(ctx); err != nil {
						return
					}
				}
			}()
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i%2 == 0 {
						a.Close(wire.CloseGoingAway, fmt.Sprint("closer ", i))
					} else {
						a.CloseNow()
					}
				}()
			}
			within(t, 5*time.Second, "concurrent Close", func() struct{} { wg.Wait(); return struct{}{} })
		})
	}
}

func TestWSTextMessageIsViolation(t *testing.T) {
	srv, accepted := upgradeServer(t, nil, acceptWith(linkTiming{}, wire.DefaultMaxFrame))
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, srv.URL, &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	st := accepted()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"hello":1}`)); err != nil {
		t.Fatal(err)
	}
	_, err = st.Read(ctx)
	if !errors.Is(err, wire.ErrMalformed) || wire.CloseCodeFor(err) != wire.CloseProtocolViolation {
		t.Fatalf("got %v, want a protocol violation", err)
	}
	clientErr := make(chan error, 1)
	go func() { _, _, err := c.Read(ctx); clientErr <- err }() // answers the close handshake
	st.Close(wire.CloseCodeFor(err), wire.CloseReason(err))
	if err := <-clientErr; websocket.CloseStatus(err) != websocket.StatusCode(wire.CloseProtocolViolation) {
		t.Fatalf("client saw %v, want close 4000", err)
	}
}

func TestWSUpgradeWithoutSubprotocolRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, err := acceptWS(w, r, linkTiming{}, wire.DefaultMaxFrame); err == nil {
			st.CloseNow()
			t.Error("upgrade without subprotocol accepted")
		}
	}))
	defer srv.Close()
	_, resp, err := websocket.Dial(testCtx(t), srv.URL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("got %v (response %v), want HTTP 400", err, resp)
	}
}

// TestLinkOverTransports runs two exchanges' link over each transport: a
// state crosses, and a broken transport turns the observer's state
// unsynchronized.
func TestLinkOverTransports(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			up, down := netExchange(t, "up"), netExchange(t, "down")
			a, b := k.pair(t, linkTiming{pingInterval: 50 * time.Millisecond, pingTimeout: time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); down.runLink(ctx, a, roleUpstream, linkPeer{Name: "up"}) }()
			go func() { defer wg.Done(); up.runLink(ctx, b, roleDownstream, linkPeer{Name: "down"}) }()
			defer func() { cancel(); wg.Wait() }()

			d := MustObjectDescriptor("over " + k.name)
			obs, err := down.ObserveObject(d)
			if err != nil {
				t.Fatal(err)
			}
			defer obs.Close()
			exp, err := up.ExposeObject(d, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer exp.Close()
			tctx := testCtx(t)
			sink, err := exp.Next(tctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.Send(ObjectState{Data: []byte("v1")}); err != nil {
				t.Fatal(err)
			}
			for {
				st, err := obs.Next(tctx)
				if err != nil {
					t.Fatal(err)
				}
				if string(st.Data) == "v1" && st.Synchronized {
					break
				}
			}
			a.CloseNow() // the network breaks
			for {
				st, err := obs.Next(tctx)
				if err != nil {
					t.Fatal(err)
				}
				if !st.Synchronized {
					if string(st.Data) != "v1" {
						t.Errorf("after the break: %q, want the last state kept", st.Data)
					}
					break
				}
			}
		})
	}
}

// TestTransportWritableNeverBlocks: while writable says yes, Write returns
// at once even to a peer that never reads, and writable says no before
// the buffers are full. This is what lets a goroutine other than the
// link's writer write (link.flushInline) without a slow peer blocking it.
func TestTransportWritableNeverBlocks(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a := k.silent(t, linkTiming{})
			wt, ok := a.(interface{ writable(int) bool })
			if !ok {
				t.Fatalf("%T has no writable", a)
			}
			ctx := testCtx(t)
			frame := make([]byte, 1000)
			sent := 0
			for wt.writable(len(frame)) {
				if sent > 64<<20 {
					t.Fatal("writable still true after 64 MiB to a peer that does not read")
				}
				within(t, time.Second, "Write while writable", func() error { return a.Write(ctx, frame) })
				sent += len(frame)
			}
			if sent == 0 {
				t.Error("writable was false before anything was written")
			}
		})
	}
}
