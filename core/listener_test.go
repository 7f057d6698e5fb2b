package core

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hakuban/hakuban/core/internal/wire"

	"github.com/hakuban/hakuban/internal/testcert"
)

func TestListenerPortZeroReportsRealAddress(t *testing.T) {
	l := testListener(t, netExchange(t, "up"))
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok || addr.Port == 0 || !addr.IP.IsLoopback() {
		t.Fatalf("Addr() = %v, want a loopback address with a real port", l.Addr())
	}
	if want := "ws://" + addr.String() + "/"; l.URL() != want {
		t.Errorf("URL() = %q, want %q", l.URL(), want)
	}
	// Something really listens there.
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestListenerOptionsValidate(t *testing.T) {
	if err := DefaultListenerOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*ListenerOptions){
		"relative path":    func(o *ListenerOptions) { o.Path = "hakuban" },
		"negative timeout": func(o *ListenerOptions) { o.HandshakeTimeout = -1 },
		"bad limits":       func(o *ListenerOptions) { o.Limits.MaxStateData = 1 },
		"name not UTF-8":   func(o *ListenerOptions) { o.Name = "bad\xff" },
		"max handshakes":   func(o *ListenerOptions) { o.MaxHandshakes = -1 },
		"name too long":    func(o *ListenerOptions) { o.Name = strings.Repeat("n", wire.MaxNameLen+1) },
	} {
		o := DefaultListenerOptions()
		change(&o)
		if err := o.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
	o := DefaultListenerOptions()
	o.Addr = "256.0.0.1:bad"
	if _, err := netExchange(t, "x").Listen(o); !errors.Is(err, ErrConnection) {
		t.Errorf("bad address: got %v", err)
	}
}

func TestListenerCloseClosesAllLinks(t *testing.T) {
	up := netExchange(t, "up")
	l := testListener(t, up)
	var conns []*Connector
	for _, name := range []string{"a", "b", "c"} {
		o := fastConnector(l.URL())
		o.MinBackoff, o.MaxBackoff = time.Minute, time.Minute // stay down once closed
		conns = append(conns, testConnect(t, netExchange(t, name), o))
	}
	for _, c := range conns {
		waitStatus(t, c, "connected", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
	}
	pollFor(t, 5*time.Second, "three links", func() bool { return len(l.Links()) == 3 })

	within(t, 3*time.Second, "Listener.Close", l.Close)
	if n := len(l.Links()); n != 0 {
		t.Errorf("%d links left after Close", n)
	}
	for _, c := range conns {
		st := waitStatus(t, c, "disconnected", func(s ConnectorStatus) bool { return s.State == ConnectorDisconnected })
		var lc *linkClosedError
		if !errors.As(st.LastError, &lc) || !lc.Remote || lc.Code != wire.CloseGoingAway {
			t.Errorf("downstream saw %v, want close 4004 (going away)", st.LastError)
		}
	}
	// Closed means closed: new upgrades are refused.
	if _, _, err := websocket.Dial(testCtx(t), l.URL(), &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}}); err == nil {
		t.Error("dial after Close succeeded")
	}
	l.Close() // idempotent
}

func TestListenerRefusesNonHakubanClient(t *testing.T) {
	l := testListener(t, netExchange(t, "up"))
	_, resp, err := websocket.Dial(testCtx(t), l.URL(), &websocket.DialOptions{Subprotocols: []string{"chat"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("got %v (response %v), want HTTP 400", err, resp)
	}
	pollFor(t, time.Second, "refusal counted", func() bool { return l.Stats().Refused == 1 })
}

func TestListenerRefusesOtherMajorVersion(t *testing.T) {
	l := testListener(t, netExchange(t, "up"))
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, l.URL(), &websocket.DialOptions{Subprotocols: []string{"hakuban.v2"}})
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "" {
		t.Errorf("server selected %q", c.Subprotocol())
	}
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusCode(wire.CloseUnsupportedVersion) ||
		ce.Reason != "unsupported protocol: client offers hakuban.v2, server speaks hakuban.v1" {
		t.Fatalf("got %v, want close 4001 with the versions", err)
	}
}

func TestListenerRefusesUnsupportedHello(t *testing.T) {
	l := testListener(t, netExchange(t, "up"))
	ctx := testCtx(t)
	tr, err := dialWS(ctx, l.URL(), nil, 5*time.Second, linkTiming{}, wire.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	hello := testHello("future")
	hello.Major, hello.Minor = 2, 0
	_, err = clientHandshake(ctx, tr, hello, 5*time.Second)
	if want := "core: upstream refused: unsupported protocol version 2.0, server speaks " + wire.ProtocolVersion + " (close 4001)"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestListenerHandshakeTimeout(t *testing.T) {
	l := testListener(t, netExchange(t, "up"), func(o *ListenerOptions) { o.HandshakeTimeout = 100 * time.Millisecond })
	ctx := testCtx(t)
	c, _, err := websocket.Dial(ctx, l.URL(), &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx) // we never send Hello
	if websocket.CloseStatus(err) != websocket.StatusCode(wire.CloseTimeout) {
		t.Fatalf("got %v, want close 4007", err)
	}
}

func TestListenerWrongPathAndUpgradeError(t *testing.T) {
	l := testListener(t, netExchange(t, "up"), func(o *ListenerOptions) { o.Path = "/hakuban" })
	_, err := dialWS(testCtx(t), l.URL()+"/elsewhere", nil, 5*time.Second, linkTiming{}, wire.DefaultMaxFrame)
	if err == nil || !strings.Contains(err.Error(), "refused the WebSocket upgrade: HTTP 404 Not Found") || !errors.Is(err, ErrConnection) {
		t.Fatalf("got %v, want an HTTP 404 refusal", err)
	}
	if !strings.HasSuffix(l.URL(), "/hakuban") {
		t.Errorf("URL() = %q", l.URL())
	}
}

func TestListenerHandlerEmbedded(t *testing.T) {
	up, down := netExchange(t, "up"), netExchange(t, "down")
	l, err := up.NewListener(DefaultListenerOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Addr() != nil || l.URL() != "" {
		t.Errorf("an unbound listener reports %v %q", l.Addr(), l.URL())
	}
	mux := http.NewServeMux()
	mux.Handle("/hakuban", l.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := testConnect(t, down, fastConnector(wsURL(srv)+"/hakuban"))
	waitStatus(t, c, "connected", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
	within(t, 3*time.Second, "Listener.Close", l.Close)
	waitStatus(t, c, "disconnected", func(s ConnectorStatus) bool { return s.State != ConnectorConnected })
}

func TestListenerStopsWithExchange(t *testing.T) {
	up, err := NewExchange(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	l := testListener(t, up)
	c := testConnect(t, netExchange(t, "down"), fastConnector(l.URL()))
	waitStatus(t, c, "connected", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
	up.Close()
	pollFor(t, 5*time.Second, "links closed", func() bool { return len(l.Links()) == 0 })
	within(t, 3*time.Second, "Listener.Close", l.Close)
}

// TestStateOverNetwork runs an object's state from an exposer to an
// observer through a real listener and connector, in both directions of
// the tree.
func TestStateOverNetwork(t *testing.T) {
	up, down := netExchange(t, "up"), netExchange(t, "down")
	l := testListener(t, up)
	c := testConnect(t, down, fastConnector(l.URL()))
	waitStatus(t, c, "connected", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
	ctx := testCtx(t)

	for _, dir := range []struct {
		name              string
		exposer, observer *Exchange
	}{{"down to up", down, up}, {"up to down", up, down}} {
		t.Run(dir.name, func(t *testing.T) {
			d := MustObjectDescriptor(map[string]any{"test": dir.name})
			exp, err := dir.exposer.ExposeObject(d, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer exp.Close()
			obs, err := dir.observer.ObserveObject(d)
			if err != nil {
				t.Fatal(err)
			}
			defer obs.Close()
			sink, err := exp.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.Send(ObjectState{Data: []byte("hello " + dir.name), Format: []string{"text"}}); err != nil {
				t.Fatal(err)
			}
			for {
				st, err := obs.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if string(st.Data) == "hello "+dir.name && st.Synchronized {
					break
				}
			}
		})
	}
	s := l.Stats()
	if s.BytesIn == 0 || s.BytesOut == 0 || s.FramesIn == 0 {
		t.Errorf("listener stats %+v: no traffic counted", s)
	}
}

// testCA makes a CA and a certificate it signed for 127.0.0.1.
func testCA(t *testing.T) (*x509.CertPool, tls.Certificate) {
	s := testcert.New(t)
	return s.Pool, s.Cert
}

func TestTLSLinks(t *testing.T) {
	pool, cert := testCA(t)
	up := netExchange(t, "up")
	l := testListener(t, up, func(o *ListenerOptions) {
		// Mutual TLS: the server requires a client certificate from the CA.
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	})
	if !strings.HasPrefix(l.URL(), "wss://") {
		t.Fatalf("URL() = %q, want wss://", l.URL())
	}

	good := fastConnector(l.URL())
	good.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}
	c := testConnect(t, netExchange(t, "trusted"), good)
	waitStatus(t, c, "connected over mutual TLS", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })

	// Without the CA the client refuses the server's certificate.
	noCA := fastConnector(l.URL())
	c2 := testConnect(t, netExchange(t, "untrusting"), noCA)
	st := waitStatus(t, c2, "certificate refused", func(s ConnectorStatus) bool { return s.LastError != nil })
	if !strings.Contains(st.LastError.Error(), "certificate") {
		t.Errorf("LastError %v, want a certificate error", st.LastError)
	}

	// Without a client certificate the server refuses the client.
	noCert := fastConnector(l.URL())
	noCert.TLS = &tls.Config{RootCAs: pool}
	c3 := testConnect(t, netExchange(t, "anonymous"), noCert)
	st = waitStatus(t, c3, "client refused", func(s ConnectorStatus) bool { return s.LastError != nil })
	if st.State == ConnectorConnected {
		t.Errorf("a client without certificate connected")
	}
}

// An HTTP/1.1 connection whose request was answered without an upgrade
// (wrong path, no subprotocol) is closed once idle for the handshake
// timeout: unauthenticated clients cannot hold sockets open (PROTOCOL.md
// §16).
func TestListenerDropsIdleConnections(t *testing.T) {
	const hs = 100 * time.Millisecond
	l := testListener(t, netExchange(t, "up"), func(o *ListenerOptions) { o.HandshakeTimeout = hs })
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /not-hakuban HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The server should drop the idle connection after about the
	// handshake timeout; give it 30 times that.
	_ = conn.SetReadDeadline(time.Now().Add(30 * hs))
	_, err = br.ReadByte()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection still open %v after the response (handshake timeout %v)", 30*hs, hs)
	}
}

// Connections still in their handshake (not authenticated yet) are
// bounded: past MaxHandshakes an upgrade is answered 503, established
// links do not count, and the place frees when a handshake ends.
func TestListenerBoundsHandshakesUnderWay(t *testing.T) {
	up := netExchange(t, "up")
	l := testListener(t, up, func(o *ListenerOptions) { o.MaxHandshakes = 1 })
	// One established link: it does not count.
	testConnect(t, netExchange(t, "linked"), fastConnector(l.URL()))
	waitFor(t, func() bool { return l.Stats().Accepted == 1 })
	ctx := testCtx(t)
	// A client that upgrades and never says Hello holds the one place.
	silent, _, err := websocket.Dial(ctx, l.URL(), &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = dialWS(ctx, l.URL(), nil, 5*time.Second, linkTiming{}, wire.MaxHandshakeFrame)
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("second handshake under way: %v, want HTTP 503", err)
	}
	silent.CloseNow()
	c := testConnect(t, netExchange(t, "later"), fastConnector(l.URL()))
	waitStatus(t, c, "connected once the silent client left", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
}
