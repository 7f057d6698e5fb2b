package core

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hakuban/hakuban/core/internal/wire"
)

func testHello(name string) *wire.Hello {
	return &wire.Hello{
		Major: wire.ProtocolMajor, Minor: wire.ProtocolMinor,
		Name: name, Token: []byte("secret"), Features: wire.FeatureZstd,
		Limits: wire.Limits{MaxStateData: 1 << 20, MaxFrame: 1<<20 + wire.FrameOverhead},
	}
}

type handshakeResult struct {
	peer linkPeer
	err  error
}

// runHandshake runs both sides of a handshake over a fresh transport pair.
func runHandshake(t *testing.T, pair func(*testing.T, linkTiming) (transport, transport), hello *wire.Hello, auth func([]byte) (*Permissions, error)) (client, server handshakeResult) {
	t.Helper()
	a, b := pair(t, linkTiming{})
	ctx := testCtx(t)
	srv := make(chan handshakeResult, 1)
	go func() {
		welcome := wire.Welcome{Name: "upstream", Features: linkFeatures, Limits: wire.DefaultLimits()}
		p, err := serverHandshake(ctx, b, welcome, auth, 5*time.Second)
		srv <- handshakeResult{p, err}
	}()
	p, err := clientHandshake(ctx, a, hello, 5*time.Second)
	return handshakeResult{p, err}, <-srv
}

func TestHandshakeSuccess(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			var gotToken string
			c, s := runHandshake(t, k.pair, testHello("leaf"), func(tok []byte) (*Permissions, error) { gotToken = string(tok); return nil, nil })
			if c.err != nil || s.err != nil {
				t.Fatalf("client: %v, server: %v", c.err, s.err)
			}
			if gotToken != "secret" {
				t.Errorf("Authenticate saw token %q", gotToken)
			}
			if c.peer.Name != "upstream" || c.peer.Minor != wire.ProtocolMinor || c.peer.Limits != wire.DefaultLimits() ||
				c.peer.Features != linkFeatures || c.peer.Local != testHello("").Limits.WithDefaults() {
				t.Errorf("client's peer: %+v", c.peer)
			}
			want := testHello("").Limits.WithDefaults()
			if s.peer.Name != "leaf" || s.peer.Features != wire.FeatureZstd || s.peer.Limits != want || s.peer.Local != wire.DefaultLimits() {
				t.Errorf("server's peer: %+v, want limits %+v", s.peer, want)
			}
		})
	}
}

func TestHandshakeUnsupportedVersion(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			hello := testHello("future")
			hello.Major, hello.Minor = 2, 0
			c, s := runHandshake(t, k.pair, hello, nil)
			want := "core: upstream refused: unsupported protocol version 2.0, server speaks " + wire.ProtocolVersion + " (close 4001)"
			if c.err == nil || c.err.Error() != want {
				t.Fatalf("client error %q, want %q", c.err, want)
			}
			if !errors.Is(c.err, ErrConnection) {
				t.Errorf("client error does not match ErrConnection")
			}
			if s.err == nil || !errors.Is(s.err, wire.ErrUnsupportedVersion) {
				t.Errorf("server error %v, want wire.ErrUnsupportedVersion", s.err)
			}
		})
	}
}

func TestHandshakeAuthRefused(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			c, s := runHandshake(t, k.pair, testHello("intruder"), func([]byte) (*Permissions, error) { return nil, errors.New("unknown token") })
			want := "core: upstream refused: auth refused: unknown token (close 4002)"
			if c.err == nil || c.err.Error() != want {
				t.Fatalf("client error %q, want %q", c.err, want)
			}
			var lc *linkClosedError
			if !errors.As(c.err, &lc) || lc.Code != wire.CloseAuthRefused || lc.Code.Retry() {
				t.Errorf("client error carries %+v, want close 4002 (no retry)", lc)
			}
			if s.err == nil || !strings.Contains(s.err.Error(), "auth refused") {
				t.Errorf("server error %v", s.err)
			}
		})
	}
}

func TestHandshakeMalformedHello(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			srv := make(chan error, 1)
			go func() {
				_, err := serverHandshake(ctx, b, wire.Welcome{Name: "up"}, nil, 5*time.Second)
				srv <- err
			}()
			if err := a.Write(ctx, []byte{0x01, 0x05, 0xff}); err != nil {
				t.Fatal(err)
			}
			_, err := a.Read(ctx)
			var lc *linkClosedError
			if !errors.As(err, &lc) || lc.Code != wire.CloseProtocolViolation || !strings.HasPrefix(lc.Reason, "bad Hello") {
				t.Fatalf("client saw %v, want close 4000 \"bad Hello…\"", err)
			}
			if err := <-srv; !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("server error %v, want wire.ErrMalformed", err)
			}
		})
	}
}

func TestHandshakeServerTimeout(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			srv := make(chan error, 1)
			go func() {
				_, err := serverHandshake(ctx, b, wire.Welcome{Name: "up"}, nil, 50*time.Millisecond)
				srv <- err
			}()
			_, err := a.Read(ctx) // the client never sends Hello
			var lc *linkClosedError
			if !errors.As(err, &lc) || lc.Code != wire.CloseTimeout || lc.Reason != "no Hello within 50ms" {
				t.Fatalf("client saw %v, want close 4007 \"no Hello within 50ms\"", err)
			}
			if err := <-srv; err == nil {
				t.Error("server handshake succeeded")
			}
		})
	}
}

func TestHandshakeClientTimeout(t *testing.T) {
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			a, b := k.pair(t, linkTiming{})
			ctx := testCtx(t)
			hello := make(chan struct{})
			go func() { b.Read(ctx); close(hello) }() // reads Hello, never answers
			_, err := clientHandshake(ctx, a, testHello("x"), 50*time.Millisecond)
			if err == nil || !strings.Contains(err.Error(), "no Welcome within 50ms") {
				t.Fatalf("got %v, want a handshake timeout", err)
			}
			<-hello // one reader at a time
			_, err = b.Read(ctx)
			var lc *linkClosedError
			if !errors.As(err, &lc) || lc.Code != wire.CloseTimeout {
				t.Fatalf("server saw %v, want close 4007", err)
			}
		})
	}
}

func TestHandshakeCancelled(t *testing.T) {
	a, b := newPipeEnds(linkTiming{})
	defer a.CloseNow()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := serverHandshake(ctx, b, wire.Welcome{}, nil, time.Minute)
		done <- err
	}()
	cancel()
	if err := within(t, time.Second, "cancelled handshake", func() error { return <-done }); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	_, err := a.Read(context.Background())
	var lc *linkClosedError
	if !errors.As(err, &lc) || lc.Code != wire.CloseGoingAway {
		t.Fatalf("client saw %v, want close 4004", err)
	}
}

// PROTOCOL.md §2: "A text message is a protocol violation (close code
// 4000)"; §6.3: a first frame that is not one Hello closes with 4000. So
// a text message in place of the Hello is answered with 4000, as one
// after the handshake is, not by cutting the connection.
func TestHandshakeTextHelloClosesWith4000(t *testing.T) {
	l := testListener(t, netExchange(t, "up"))
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, l.URL(), &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello?")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusCode(wire.CloseProtocolViolation) {
		t.Fatalf("server answered a text Hello with %v (close status %d), want close 4000", err, got)
	}
}

// The same on the client side (PROTOCOL.md §6: the client closes with
// 4000 if the server's first frame is not one valid Welcome).
func TestHandshakeTextWelcomeClosesWith4000(t *testing.T) {
	url, closed := fakeUpstream(t, func(ctx context.Context, c *websocket.Conn) error {
		return c.Write(ctx, websocket.MessageText, []byte("welcome?"))
	})
	ctx := testCtx(t)
	tr, err := dialWS(ctx, url, nil, 5*time.Second, linkTiming{closeTimeout: time.Second}, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseNow()
	if _, err := clientHandshake(ctx, tr, testHello("down"), 5*time.Second); err == nil {
		t.Fatal("handshake with a text Welcome succeeded")
	}
	expectClose(t, closed, websocket.StatusCode(wire.CloseProtocolViolation))
}

// fakeUpstream serves one WebSocket upgrade selecting hakuban's
// subprotocol: it reads the Hello, runs answer (nil: answers nothing),
// then reads until the client closes. closed receives the error that
// ended it: the client's close status is websocket.CloseStatus of it.
func fakeUpstream(t *testing.T, answer func(ctx context.Context, c *websocket.Conn) error) (url string, closed <-chan error) {
	t.Helper()
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wire.Subprotocol}})
		if err != nil {
			got <- err
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		if _, _, err := c.Read(ctx); err != nil { // the Hello
			got <- err
			return
		}
		if answer != nil {
			if err := answer(ctx, c); err != nil {
				got <- err
				return
			}
		}
		_, _, err = c.Read(ctx)
		got <- err
	}))
	t.Cleanup(srv.Close)
	return wsURL(srv), got
}

// expectClose waits for a fakeUpstream's end and checks the close status
// the client sent.
func expectClose(t *testing.T, closed <-chan error, want websocket.StatusCode) {
	t.Helper()
	select {
	case err := <-closed:
		if st := websocket.CloseStatus(err); st != want {
			t.Fatalf("the upstream saw %v (close status %d), want %d", err, st, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream saw nothing within 10s")
	}
}
