package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hakuban/hakuban/core/internal/wire"
)

func TestBackoffFullJitterCapped(t *testing.T) {
	const minB, maxB = 100 * time.Millisecond, 10 * time.Second
	rnd := rand.New(rand.NewPCG(1, 2))
	for n := range 12 {
		ceil := min(maxB, minB<<n)
		lo, hi := ceil, time.Duration(0)
		seen := map[time.Duration]bool{}
		for range 2000 {
			d := backoff(n, minB, maxB, rnd)
			if d < 0 || d >= ceil {
				t.Fatalf("failures=%d: wait %v outside [0, %v)", n, d, ceil)
			}
			lo, hi = min(lo, d), max(hi, d)
			seen[d] = true
		}
		// Full jitter: the waits spread over the whole range.
		if lo > ceil/20 || hi < ceil*19/20 || len(seen) < 1900 {
			t.Errorf("failures=%d: waits in [%v, %v], %d distinct; want spread over [0, %v)", n, lo, hi, len(seen), ceil)
		}
	}
	// Huge failure counts neither overflow nor exceed the cap.
	for _, n := range []int{40, 62, 63, 64, 1000} {
		if d := backoff(n, minB, maxB, rnd); d < 0 || d >= maxB {
			t.Errorf("failures=%d: wait %v outside [0, %v)", n, d, maxB)
		}
	}
	// The same seed gives the same waits.
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for n := range 5 {
		if x, y := backoff(n, minB, maxB, a), backoff(n, minB, maxB, b); x != y {
			t.Fatalf("seeded waits differ: %v, %v", x, y)
		}
	}
}

func TestConnectorOptionsValidate(t *testing.T) {
	ok := DefaultConnectorOptions()
	ok.URLs = []string{"ws://127.0.0.1:3001/", "wss://router.example:443/hakuban"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, change := range map[string]func(*ConnectorOptions){
		"no URL":          func(o *ConnectorOptions) { o.URLs = nil },
		"http URL":        func(o *ConnectorOptions) { o.URLs = []string{"http://x/"} },
		"no host":         func(o *ConnectorOptions) { o.URLs = []string{"ws:///path"} },
		"negative ping":   func(o *ConnectorOptions) { o.PingInterval = -time.Second },
		"max below min":   func(o *ConnectorOptions) { o.MinBackoff, o.MaxBackoff = time.Second, time.Millisecond },
		"token too long":  func(o *ConnectorOptions) { o.Token = make([]byte, wire.MaxTokenLen+1) },
		"limits too low":  func(o *ConnectorOptions) { o.Limits.MaxFrame = 10 },
		"name not UTF-8":  func(o *ConnectorOptions) { o.Name = "\xff" },
		"name too long":   func(o *ConnectorOptions) { o.Name = strings.Repeat("n", wire.MaxNameLen+1) },
		"negative dial":   func(o *ConnectorOptions) { o.DialTimeout = -1 },
		"negative stable": func(o *ConnectorOptions) { o.StableSession = -1 },
	} {
		o := ok
		change(&o)
		if err := o.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}

// fastConnector returns options for tests: quick retries and pings.
func fastConnector(urls ...string) ConnectorOptions {
	o := DefaultConnectorOptions()
	o.URLs = urls
	o.MinBackoff, o.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	o.StableSession = 50 * time.Millisecond
	o.PingInterval, o.PingTimeout = 50*time.Millisecond, 200*time.Millisecond
	o.CloseTimeout = 500 * time.Millisecond
	return o
}

// testListener starts a listener on a free loopback port for ex.
func testListener(t testing.TB, ex *Exchange, change ...func(*ListenerOptions)) *Listener {
	t.Helper()
	o := DefaultListenerOptions()
	o.Addr = "127.0.0.1:0"
	o.CloseTimeout = 500 * time.Millisecond
	for _, f := range change {
		f(&o)
	}
	l, err := ex.Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func testConnect(t testing.TB, ex *Exchange, o ConnectorOptions) *Connector {
	t.Helper()
	c, err := ex.Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func netExchange(t testing.TB, name string) *Exchange {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = name
	ex, err := NewExchange(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

// waitStatus polls c until its status satisfies cond.
func waitStatus(t *testing.T, c *Connector, what string, cond func(ConnectorStatus) bool) ConnectorStatus {
	t.Helper()
	var st ConnectorStatus
	pollFor(t, 10*time.Second, what, func() bool { st = c.Status(); return cond(st) })
	return st
}

// freeURL returns a ws:// URL where nothing listens.
func freeURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ws://" + addr + "/"
}

func TestConnectorConnectsAndReportsStatus(t *testing.T) {
	up, down := netExchange(t, "up"), netExchange(t, "down")
	l := testListener(t, up)
	c := testConnect(t, down, fastConnector(l.URL()))
	var notified atomic.Int32
	c.SetNotify(func() { notified.Add(1) })

	st := waitStatus(t, c, "connected", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
	if st.URL != l.URL() || st.Peer != "up" || st.Connects != 1 || st.LastError != nil {
		t.Errorf("status %+v", st)
	}
	pollFor(t, 5*time.Second, "link listed", func() bool {
		links := l.Links()
		return len(links) == 1 && links[0].Established && links[0].Peer == "down"
	})
	if s := l.Stats(); s.Accepted != 1 || s.Open != 1 {
		t.Errorf("listener stats %+v", s)
	}

	c.Close()
	if st := c.Status(); st.State != ConnectorClosed {
		t.Errorf("after Close: %v", st.State)
	}
	if notified.Load() == 0 {
		t.Error("SetNotify hook never ran")
	}
	pollFor(t, 5*time.Second, "link gone", func() bool { return len(l.Links()) == 0 })
	c.Close() // idempotent
}

func TestConnectorWatch(t *testing.T) {
	up, down := netExchange(t, "up"), netExchange(t, "down")
	l := testListener(t, up)
	c := testConnect(t, down, fastConnector(l.URL()))
	deadline := time.After(10 * time.Second)
	var states []ConnectorState
	for st, ch := c.Watch(); st.State != ConnectorConnected; st, ch = c.Watch() {
		states = append(states, st.State)
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("not connected; states seen %v", states)
		}
	}
}

func TestConnectorFailsOverWhenFirstRefuses(t *testing.T) {
	refusing, good, down := netExchange(t, "refusing"), netExchange(t, "good"), netExchange(t, "down")
	l1 := testListener(t, refusing, func(o *ListenerOptions) {
		o.Authenticate = func([]byte) error { return errors.New("unknown token") }
	})
	l2 := testListener(t, good)
	c := testConnect(t, down, fastConnector(freeURL(t), l1.URL(), l2.URL()))
	st := waitStatus(t, c, "connected to the third URL", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
	if st.URL != l2.URL() || st.Peer != "good" {
		t.Errorf("connected to %s (%s), want %s", st.URL, st.Peer, l2.URL())
	}
	// The refusal was seen and is recognizable.
	if l1.Stats().Refused == 0 {
		t.Error("the refusing listener saw no attempt")
	}
}

func TestConnectorFailsOverWhenFirstDies(t *testing.T) {
	first, second, down := netExchange(t, "first"), netExchange(t, "second"), netExchange(t, "down")
	l1 := testListener(t, first)
	l2 := testListener(t, second)
	c := testConnect(t, down, fastConnector(l1.URL(), l2.URL()))
	waitStatus(t, c, "connected to first", func(s ConnectorStatus) bool {
		return s.State == ConnectorConnected && s.Peer == "first"
	})
	l1.Close()
	st := waitStatus(t, c, "connected to second", func(s ConnectorStatus) bool {
		return s.State == ConnectorConnected && s.Peer == "second"
	})
	if st.URL != l2.URL() || st.Connects != 2 {
		t.Errorf("status %+v", st)
	}
	var lc *linkClosedError
	if !errors.As(st.LastError, &lc) || lc.Code != wire.CloseGoingAway {
		t.Errorf("LastError %v, want the first upstream's going-away close (4004)", st.LastError)
	}
}

func TestConnectorReportsRefusal(t *testing.T) {
	up, down := netExchange(t, "up"), netExchange(t, "down")
	l := testListener(t, up, func(o *ListenerOptions) {
		o.Authenticate = func(tok []byte) error {
			if string(tok) != "letmein" {
				return errors.New("unknown token")
			}
			return nil
		}
	})
	o := fastConnector(l.URL())
	o.Token = []byte("guess")
	c := testConnect(t, down, o)
	st := waitStatus(t, c, "refusal reported", func(s ConnectorStatus) bool { return s.State == ConnectorRefused })
	if msg := st.LastError.Error(); !strings.HasPrefix(msg, "core: upstream refused: auth refused: unknown token (close 4002)") {
		t.Errorf("LastError %q", msg)
	}
	// A refusal for good is not retried (PROTOCOL.md §15). The client may
	// see the close before the listener counts it: wait for the count.
	pollFor(t, 5*time.Second, "the listener to count the refusal", func() bool { return l.Stats().Refused >= 1 })
	refusals := l.Stats().Refused
	// fastConnector's backoff is a few ms: a retry would happen well within
	// this window, which is the only way to observe that none happens.
	time.Sleep(100 * time.Millisecond)
	if n := l.Stats().Refused; n != refusals || c.Status().State != ConnectorRefused {
		t.Errorf("the connector retried after a refusal: %d refusals, then %d", refusals, n)
	}
	c.Close()
	if st := c.Status(); st.State != ConnectorClosed {
		t.Errorf("after Close: %v", st.State)
	}
}

func TestConnectorServerWithoutSubprotocol(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil) // selects no subprotocol
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.Read(r.Context())
	}))
	defer srv.Close()
	c := testConnect(t, netExchange(t, "down"), fastConnector(wsURL(srv)))
	st := waitStatus(t, c, "refusal reported", func(s ConnectorStatus) bool { return s.State == ConnectorRefused })
	if !strings.Contains(st.LastError.Error(), "the server does not speak hakuban protocol 1") {
		t.Errorf("LastError %v", st.LastError)
	}
}

func TestConnectorOnePerExchange(t *testing.T) {
	ex := netExchange(t, "down")
	url := freeURL(t)
	c1, err := ex.Connect(fastConnector(url))
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := ex.Connect(fastConnector(url)); err == nil {
		c2.Close()
		t.Fatal("second Connect on one exchange succeeded")
	}
	c1.Close()
	c3, err := ex.Connect(fastConnector(url))
	if err != nil {
		t.Fatalf("Connect after Close: %v", err)
	}
	c3.Close()
}

func TestConnectorStopsWithExchange(t *testing.T) {
	cfg := DefaultConfig()
	ex, err := NewExchange(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ex.Connect(fastConnector(freeURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	ex.Close()
	waitStatus(t, c, "closed with the exchange", func(s ConnectorStatus) bool { return s.State == ConnectorClosed })
	c.Close()
	if _, err := ex.Connect(fastConnector(freeURL(t))); !errors.Is(err, ErrClosed) {
		t.Errorf("Connect on a closed exchange: %v", err)
	}
}

func TestConnectorKeepsRetrying(t *testing.T) {
	down := netExchange(t, "down")
	url := freeURL(t)
	c := testConnect(t, down, fastConnector(url))
	st := waitStatus(t, c, "several failures", func(s ConnectorStatus) bool { return s.Failures >= 4 })
	if st.State == ConnectorConnected || st.LastError == nil || !errors.Is(st.LastError, ErrConnection) {
		t.Errorf("status %+v", st)
	}
	// An upstream appears at that address: the connector finds it.
	up := netExchange(t, "late")
	testListener(t, up, func(o *ListenerOptions) { o.Addr = strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/") })
	waitStatus(t, c, "connected after retries", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
}

func TestConnectorHandshakeTimeout(t *testing.T) {
	down := netExchange(t, "down")
	o := fastConnector(hungServer(t, false))
	o.HandshakeTimeout = 100 * time.Millisecond
	c := testConnect(t, down, o)
	st := waitStatus(t, c, "handshake timeout reported", func(s ConnectorStatus) bool { return s.LastError != nil })
	if !strings.Contains(st.LastError.Error(), "no Welcome within 100ms") {
		t.Errorf("LastError %v", st.LastError)
	}
}

func TestConnectorDetectsDeadUpstream(t *testing.T) {
	down := netExchange(t, "down")
	c := testConnect(t, down, fastConnector(hungServer(t, true)))
	waitStatus(t, c, "connected", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
	start := time.Now()
	st := waitStatus(t, c, "dead link noticed", func(s ConnectorStatus) bool { return s.State != ConnectorConnected })
	if st.LastError == nil || !strings.Contains(st.LastError.Error(), "no pong") {
		t.Errorf("LastError %v, want a dead link", st.LastError)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dead link noticed after %v; pings every 50ms, timeout 200ms", d)
	}
}

// hungServer starts a WebSocket server that accepts the upgrade and then
// hangs: it reads nothing, so it answers no ping. With welcome, it first
// completes the handshake, so the hang happens on an established link.
func hungServer(t *testing.T, welcome bool) string {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wire.Subprotocol}})
		if err != nil {
			return
		}
		defer c.CloseNow()
		if welcome {
			ctx := r.Context()
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
			frame := wire.Append(nil, &wire.Welcome{Major: wire.ProtocolMajor, Name: "hung"})
			if err := c.Write(ctx, websocket.MessageBinary, frame); err != nil {
				return
			}
		}
		<-stop
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) })
	return wsURL(srv)
}

// PROTOCOL.md §13.1: 1000 (normal closure) is sent when "the user closed
// the connector", during the handshake too (not 4004, which says
// "reconnect elsewhere").
func TestConnectorCloseDuringHandshakeSendsNormalClosure(t *testing.T) {
	hello := make(chan struct{})
	url, closed := fakeUpstream(t, func(context.Context, *websocket.Conn) error {
		close(hello) // and no Welcome
		return nil
	})
	o := fastConnector(url)
	o.HandshakeTimeout = time.Minute
	c, err := netExchange(t, "down").Connect(o)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-hello:
	case <-time.After(10 * time.Second):
		c.Close()
		t.Fatal("no Hello within 10s")
	}
	within(t, 5*time.Second, "Connector.Close", c.Close)
	expectClose(t, closed, websocket.StatusNormalClosure)
}

// A redirect is not followed: it could take the Hello and its token to
// another host, or from wss:// to ws://. The attempt fails like any answer
// but 101, and the connector keeps to its own addresses.
func TestConnectorDoesNotFollowRedirects(t *testing.T) {
	l := testListener(t, netExchange(t, "up"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, l.URL(), http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	c := testConnect(t, netExchange(t, "down"), fastConnector(wsURL(srv)))
	st := waitStatus(t, c, "a failed attempt", func(s ConnectorStatus) bool { return s.Failures >= 1 || s.State == ConnectorConnected })
	if st.State == ConnectorConnected || st.LastError == nil || !strings.Contains(st.LastError.Error(), "HTTP 302") {
		t.Fatalf("status %+v, want a failure naming HTTP 302", st)
	}
}

// Until the Welcome, the client reads under the handshake's frame limit
// (PROTOCOL.md §12), not the link's: a huge first frame closes with 1009.
func TestClientHandshakeBoundsTheWelcome(t *testing.T) {
	url, closed := fakeUpstream(t, func(ctx context.Context, c *websocket.Conn) error {
		return c.Write(ctx, websocket.MessageBinary, make([]byte, wire.MaxHandshakeFrame+1))
	})
	c := testConnect(t, netExchange(t, "down"), fastConnector(url))
	expectClose(t, closed, websocket.StatusMessageTooBig)
	c.Close()
}
