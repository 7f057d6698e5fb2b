package core

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// This file makes a WebSocket connection a transport: coder/websocket does
// the opening handshake (dialWS, acceptWS), transport_wsframe.go the
// framing after it. It also holds what both transports share:
// linkClosedError and keepalive.
//
// Three rules shape it:
//
//   - Something must always read, or pings and close frames go unanswered.
//     The link's reader reads without pause (it never blocks on anything
//     but the connection), and reads in its own goroutine: a frame handed
//     from a pump goroutine to the reader would cost a goroutine wake-up
//     per frame, which was a quarter of a hop's latency. A Read whose
//     context can be cancelled (the handshake's) reads in a helper
//     goroutine and returns on cancellation, leaving the frame to the next
//     Read; the connection stays usable.
//   - Nothing but the link's writer waits for a full socket: the reader
//     sends pongs only when the socket takes them at once (or within the
//     close timeout where the kernel cannot tell), pings and close frames
//     give up at their deadline.
//   - A graceful close is bounded: the close frame and the peer's answer
//     get the close timeout, then the TCP connection under the WebSocket
//     is closed, which fails every pending read and write at once. The
//     close handshake runs in its own goroutine; nobody waits for it
//     holding a lock.

// Transport defaults.
const (
	// defaultCloseTimeout bounds a graceful close: the close frame and the
	// peer's answer. A healthy peer answers within a round trip; a dead
	// one is cut off when it runs out.
	defaultCloseTimeout = 2 * time.Second
	// readBufferKeep is the largest read buffer kept between frames; a
	// larger one (after a big state) is dropped to save memory.
	readBufferKeep = 64 << 10
	// deadCloseGrace is how long a transport that declared its link dead
	// tries to send close 4007 before it cuts the connection.
	deadCloseGrace = 100 * time.Millisecond
)

// linkClosedError says why a transport is closed. Both transports return
// it from Read and Write once closed, so that a link sees the same errors
// over a pipe and over a WebSocket. It wraps ErrConnection.
type linkClosedError struct {
	// Code is the close code sent (Remote false) or received (Remote
	// true); 0 when no close frame was exchanged (connection lost,
	// CloseNow).
	Code wire.CloseCode
	// Reason is the close frame's reason, or what happened.
	Reason string
	// Remote is true when the peer closed the link or the connection
	// broke, false when this side closed it.
	Remote bool
}

func (e *linkClosedError) Error() string {
	var b strings.Builder
	switch {
	case e.Remote && e.Code == 0:
		b.WriteString("core: connection lost")
	case e.Remote:
		b.WriteString("core: peer closed the link")
	default:
		b.WriteString("core: link closed")
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " (close %d)", e.Code)
	}
	return b.String()
}

func (e *linkClosedError) Unwrap() error { return ErrConnection }

// keepalive pings the peer every interval until stop is closed. When a
// pong does not arrive within timeout, it calls dead and returns. Errors
// other than a timeout mean the transport closed for another reason, which
// its reader reports, so they end the loop quietly.
func keepalive(stop <-chan struct{}, interval, timeout time.Duration, ping func(context.Context) error, dead func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := ping(ctx)
		cancel()
		if err == nil {
			continue
		}
		select {
		case <-stop:
		default:
			if errors.Is(err, context.DeadlineExceeded) {
				dead()
			}
		}
		return
	}
}

// linkTiming holds the liveness and close settings of a transport.
type linkTiming struct {
	// pingInterval is the time between pings; 0 disables them.
	pingInterval time.Duration
	// pingTimeout is how long a pong may take before the link is dead.
	pingTimeout time.Duration
	// closeTimeout bounds a graceful Close.
	closeTimeout time.Duration
}

func (lt linkTiming) withDefaults() linkTiming {
	if lt.closeTimeout <= 0 {
		lt.closeTimeout = defaultCloseTimeout
	}
	if lt.pingInterval > 0 && lt.pingTimeout <= 0 {
		lt.pingTimeout = wire.DefaultPingTimeout
	}
	return lt
}

// deadLinkError is the cause recorded when pongs stop arriving.
func deadLinkError(timeout time.Duration) *linkClosedError {
	return &linkClosedError{Code: wire.CloseTimeout, Reason: fmt.Sprintf("no pong within %v, link dead", timeout)}
}

// linkStats are a transport's traffic counters.
type linkStats struct {
	BytesIn, BytesOut   uint64
	FramesIn, FramesOut uint64
}

// wsTransport is a transport over one WebSocket connection (SPEC §3.2).
// coder/websocket did the opening handshake; the transport frames the
// connection itself (transport_wsframe.go). Goroutines: with pings
// enabled, the pinger; while a cancelled Read's frame is outstanding, its
// helper; while closing, the closer. Close and CloseNow wait for them.
type wsTransport struct {
	conn   *websocket.Conn // the handshake's result: kept for Subprotocol, never read or written
	raw    net.Conn        // the TCP connection under conn; closing it aborts everything
	timing linkTiming
	wsFramer

	// Read side, used by one goroutine at a time (the handshake, then the
	// link's reader).
	inflight chan wsFrame // result of a helper's read a cancelled Read left behind
	readErr  error        // sticky: the error that ended reading

	life          chan struct{} // closed by kill: stops the pinger
	killOnce      sync.Once
	closing       atomic.Bool // Close or CloseNow was called
	closeOnce     sync.Once
	closerStarted atomic.Bool
	closeDone     chan struct{} // closed when the close handshake goroutine ends
	wg            sync.WaitGroup

	readLimit atomic.Int64

	// sc is the TCP socket under the connection, for writable; nil when
	// there is none (the kernel cannot be asked).
	sc syscall.RawConn
	// sndbuf caches the socket's send buffer size.
	sndbuf atomic.Int64
	// queuedEst bounds from above the bytes in the socket's send queue:
	// the kernel's last answer plus the bytes written since.
	queuedEst atomic.Int64

	mu     sync.Mutex
	cause  error // why the transport closed; the first cause wins
	killed bool  // kill ran: no new goroutines

	bytesIn, bytesOut   atomic.Uint64
	framesIn, framesOut atomic.Uint64
}

// wsFrame is one result of a read: a frame or the error that ended reading.
type wsFrame struct {
	data []byte
	err  error
}

// errTextMessage: the peer sent a text message; hakuban frames are binary.
var errTextMessage = fmt.Errorf("core: link: text message on a binary link: %w", wire.ErrMalformed)

// newWSTransport starts the transport's goroutines on a connection whose
// opening handshake conn did. stream is the connection frames go over
// (TLS for wss://), leftover what was read of it past the handshake, raw
// the TCP connection under it; client is true on the dialing side;
// readLimit is the largest frame accepted.
func newWSTransport(conn *websocket.Conn, stream net.Conn, leftover []byte, raw net.Conn, client bool, timing linkTiming, readLimit int) *wsTransport {
	t := &wsTransport{
		conn:      conn,
		raw:       raw,
		timing:    timing.withDefaults(),
		life:      make(chan struct{}),
		closeDone: make(chan struct{}),
	}
	t.wsFramer.init(stream, client, leftover)
	t.setReadLimit(readLimit)
	if c, ok := raw.(syscall.Conn); ok {
		t.sc, _ = c.SyscallConn()
	}
	if t.timing.pingInterval > 0 {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			keepalive(t.life, t.timing.pingInterval, t.timing.pingTimeout, t.ping, t.dead)
		}()
	}
	return t
}

// setReadLimit sets the largest frame accepted. It applies from the next
// frame whose header has not arrived yet.
func (t *wsTransport) setReadLimit(n int) {
	t.readLimit.Store(int64(n))
}

// Read returns the next frame, valid until the next Read. When ctx cannot
// be cancelled (ctx.Done() is nil, as for the link's reader, which reads
// until the transport closes), Read reads in the calling goroutine.
// Otherwise a helper goroutine reads and cancelling ctx makes Read return
// at once without harming the connection: the frame goes to the next Read.
func (t *wsTransport) Read(ctx context.Context) ([]byte, error) {
	if t.inflight == nil {
		if t.readErr != nil {
			return nil, t.readErr
		}
		if ctx.Done() == nil {
			return t.result(t.readFrame())
		}
		ch := make(chan wsFrame, 1)
		t.mu.Lock()
		if t.killed {
			t.mu.Unlock()
			return nil, t.closedErr()
		}
		t.wg.Add(1) // before kill, so before any Wait
		t.mu.Unlock()
		t.inflight = ch
		go func() {
			defer t.wg.Done()
			data, err := t.readFrame()
			ch <- wsFrame{data: data, err: err}
		}()
	}
	select {
	case f := <-t.inflight:
		t.inflight = nil
		return t.result(f.data, f.err)
	case <-t.life:
		return nil, t.closedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// result records the error that ends reading, so that every later Read
// returns it.
func (t *wsTransport) result(data []byte, err error) ([]byte, error) {
	if err != nil {
		t.readErr = err
		return nil, err
	}
	return data, nil
}

// Write sends frame as one binary message. A frame cannot be taken back
// half sent, so ctx is checked only before sending: a Write blocked by a
// peer that does not read returns when the transport closes, which the
// pinger (dead link) or Close (deadline) bound.
func (t *wsTransport) Write(ctx context.Context, frame []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.closing.Load() {
		return t.closedErr()
	}
	if err := t.writeData(frame); err != nil {
		return err
	}
	t.bytesOut.Add(uint64(len(frame)))
	t.framesOut.Add(1)
	return nil
}

// writable reports whether a frame of n bytes would go into the socket's
// send buffer at once, so that Write would not wait for the peer: the
// bytes queued in the kernel (SIOCOUTQ: not yet acknowledged) plus the
// frame, its WebSocket header and the kernel's per-segment overhead
// (counted as the frame's size again) fit in half the send buffer.
// Writing only when this holds lets a goroutine other than the link's
// writer write without risking to block on a slow peer.
//
// The kernel is asked only when needed. The send buffer's size is cached:
// the kernel only grows it (autotuning), so a stale size errs on the safe
// side. The queue is estimated from above: what the kernel said last time
// plus every byte written since (acknowledgements only shrink it); while
// that estimate passes, no system call is made. Safe for concurrent use.
func (t *wsTransport) writable(n int) bool {
	if t.sc == nil || t.closing.Load() {
		return false
	}
	need := 2*n + wsMaxHeader
	if sb := int(t.sndbuf.Load()); sb > 0 && int(t.queuedEst.Load())+need <= sb/2 {
		return true
	}
	for fresh := false; ; fresh = true {
		queued, sndbuf := 0, int(t.sndbuf.Load())
		ok := false
		err := t.sc.Control(func(fd uintptr) {
			if sndbuf == 0 || fresh {
				if sndbuf, ok = socketSendBuffer(fd); !ok {
					return
				}
			}
			queued, ok = socketQueued(fd)
		})
		if err != nil || !ok {
			return false
		}
		t.sndbuf.Store(int64(sndbuf))
		t.queuedEst.Store(int64(queued))
		if queued+need <= sndbuf/2 {
			return true
		}
		if fresh {
			return false
		}
	}
}

// wsMaxHeader is the largest WebSocket frame header (client frames carry
// a mask).
const wsMaxHeader = 14

// Close sends a close frame with code and reason and waits for the peer's
// answer, at most the close timeout; then it closes at once. It waits for
// the transport's goroutines and is safe to call more than once and
// concurrently with CloseNow. Never call it while holding a lock.
func (t *wsTransport) Close(code wire.CloseCode, reason string) error {
	t.setCause(&linkClosedError{Code: code, Reason: reason})
	t.closing.Store(true)
	t.startClose(code, reason)
	timer := time.NewTimer(t.timing.closeTimeout)
	select {
	case <-t.closeDone:
	case <-timer.C:
	}
	timer.Stop()
	t.kill()
	<-t.closeDone
	t.wg.Wait()
	return nil
}

// closeBound is how long Close may take: the close timeout, after which
// it cuts the connection.
func (t *wsTransport) closeBound() time.Duration { return t.timing.closeTimeout }

// startClose runs the library's close handshake in its own goroutine, once:
// it can block for seconds, and nobody may wait on it holding a lock.
func (t *wsTransport) startClose(code wire.CloseCode, reason string) {
	t.closeOnce.Do(func() {
		t.closerStarted.Store(true)
		go func() {
			defer close(t.closeDone)
			t.closeHandshake(code, reason)
		}()
	})
}

// CloseNow closes the connection without a close handshake, for
// misbehaving peers and shutdown, and waits for the transport's goroutines.
func (t *wsTransport) CloseNow() error {
	t.setCause(&linkClosedError{Reason: "closed at once"})
	t.closing.Store(true)
	t.kill()
	t.wg.Wait()
	if t.closerStarted.Load() {
		<-t.closeDone
	}
	return nil
}

// kill closes everything at once. It does not wait, so the pinger may
// call it.
func (t *wsTransport) kill() {
	t.killOnce.Do(func() {
		t.mu.Lock()
		t.killed = true
		t.mu.Unlock()
		close(t.life)
		if t.raw != nil {
			_ = t.raw.Close()
		}
		if t.conn != nil {
			_ = t.conn.CloseNow()
		}
	})
}

// dead is called by the pinger when a pong did not arrive in time. It
// still tries to tell the peer (close 4007, PROTOCOL.md §14), but gives
// the close frame only deadCloseGrace before cutting the connection.
func (t *wsTransport) dead() {
	if t.closing.Swap(true) {
		return
	}
	err := deadLinkError(t.timing.pingTimeout)
	t.setCause(err)
	t.startClose(wire.CloseTimeout, err.Reason)
	timer := time.NewTimer(min(deadCloseGrace, t.timing.closeTimeout))
	select {
	case <-t.closeDone:
	case <-timer.C:
	}
	timer.Stop()
	t.kill()
}

func (t *wsTransport) setCause(err error) {
	t.mu.Lock()
	if t.cause == nil {
		t.cause = err
	}
	t.mu.Unlock()
}

// closedErr returns why the transport closed.
func (t *wsTransport) closedErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cause == nil {
		return &linkClosedError{Reason: "closed"}
	}
	return t.cause
}

// connError turns an error of the connection into the transport's cause.
func (t *wsTransport) connError(err error) error {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		t.setCause(&linkClosedError{Code: wire.CloseCode(ce.Code), Reason: ce.Reason, Remote: true})
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		t.setCause(&linkClosedError{Reason: "closed without a close frame", Remote: true})
	default:
		t.setCause(&linkClosedError{Reason: err.Error(), Remote: true})
	}
	return t.closedErr()
}

// readFrame reads one message (a hakuban frame) and counts it; the frame
// is valid until the next read.
func (t *wsTransport) readFrame() ([]byte, error) {
	data, err := t.readMessage()
	switch {
	case err == nil:
		t.bytesIn.Add(uint64(len(data)))
		t.framesIn.Add(1)
		return data, nil
	case errors.Is(err, errWSTooBig):
		// The connection was failed with 1009.
		return nil, fmt.Errorf("core: link: frame over the limit of %d bytes: %w", t.readLimit.Load(), wire.ErrTooLarge)
	}
	return nil, err
}

// stats returns the traffic counters.
func (t *wsTransport) stats() linkStats {
	return linkStats{
		BytesIn: t.bytesIn.Load(), BytesOut: t.bytesOut.Load(),
		FramesIn: t.framesIn.Load(), FramesOut: t.framesOut.Load(),
	}
}

// remoteAddr returns the peer's network address.
func (t *wsTransport) remoteAddr() string {
	if t.raw == nil {
		return ""
	}
	return t.raw.RemoteAddr().String()
}

// dialWS opens a WebSocket to url (ws:// or wss://) offering the hakuban
// subprotocol. timeout bounds the TCP, TLS and HTTP handshakes. A server
// that answers the upgrade with an HTTP error is reported with its status
// and the start of its body, which says why.
func dialWS(ctx context.Context, url string, tlsConf *tls.Config, timeout time.Duration, timing linkTiming, readLimit int) (*wsTransport, error) {
	var (
		mu  sync.Mutex
		raw net.Conn
		hc  *handshakeConn
	)
	dialer := &net.Dialer{Timeout: timeout}
	if tlsConf != nil {
		tlsConf = tlsConf.Clone()
	} else {
		tlsConf = &tls.Config{}
	}
	tlsConf.NextProtos = []string{"http/1.1"} // WebSocket needs HTTP/1.1
	keep := func(c net.Conn, stream net.Conn) net.Conn {
		mu.Lock()
		defer mu.Unlock()
		raw, hc = c, &handshakeConn{Conn: stream}
		return hc
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return keep(c, c), nil
		},
		// TLS is done here rather than by the HTTP client, so that the
		// handshakeConn sits above it and sees the HTTP response in clear.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			conf := tlsConf
			if conf.ServerName == "" {
				conf = conf.Clone()
				conf.ServerName, _, _ = net.SplitHostPort(addr)
			}
			tc := tls.Client(c, conf)
			hctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := tc.HandshakeContext(hctx); err != nil {
				c.Close()
				return nil, err
			}
			return keep(c, tc), nil
		},
		// One connection per dial: nothing may stay pooled after a
		// refused upgrade.
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		// A redirect is not followed: it could lead the Hello, and its
		// token, to another host or from wss:// to ws://. It fails the
		// attempt like any other answer but 101.
		HTTPClient: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		Subprotocols:    []string{wire.Subprotocol},
		CompressionMode: websocket.CompressionDisabled, // the framing speaks no extension
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
			}
			msg := strings.TrimSpace(string(body))
			if msg == "" {
				msg = "no reason given"
			}
			return nil, fmt.Errorf("core: %s refused the WebSocket upgrade: HTTP %s: %s: %w", url, resp.Status, msg, ErrConnection)
		}
		return nil, fmt.Errorf("core: dial %s: %w (%w)", url, ErrConnection, err)
	}
	mu.Lock()
	c, h := raw, hc
	mu.Unlock()
	return newWSTransport(conn, h.Conn, h.rest, c, true, timing, readLimit), nil
}

// handshakeConn gives the HTTP client nothing past the end of the upgrade
// response's head (a 101 has no body), so that frames the server sends
// right after it are left for the transport (rest).
type handshakeConn struct {
	net.Conn
	state int    // how much of "\r\n\r\n" the bytes read so far end with
	done  bool   // the head's end was read
	rest  []byte // what was read past it
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	if c.done {
		if len(c.rest) > 0 {
			n := copy(p, c.rest)
			c.rest = c.rest[n:]
			return n, nil
		}
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p)
	for i, b := range p[:n] {
		switch {
		case b == '\r' && c.state%2 == 0:
			c.state++
		case b == '\n' && c.state%2 == 1:
			c.state++
		case b == '\r':
			c.state = 1
		default:
			c.state = 0
		}
		if c.state == 4 {
			c.done = true
			c.rest = append([]byte(nil), p[i+1:n]...)
			return i + 1, nil
		}
	}
	return n, err
}

// offeredSubprotocols lists the subprotocols a WebSocket request offers.
func offeredSubprotocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// errNoSubprotocol: a client offered no hakuban subprotocol at all.
var errNoSubprotocol = fmt.Errorf("core: WebSocket subprotocol %q required: %w", wire.Subprotocol, ErrConnection)

// acceptWS upgrades a request to a hakuban WebSocket. A client that offers
// no hakuban subprotocol is not a hakuban client: it gets HTTP 400 with
// the reason. A client that offers only other hakuban versions is upgraded
// without a subprotocol (t.conn.Subprotocol() is ""), so that the caller
// can close with CloseUnsupportedVersion and a reason its user will see.
func acceptWS(w http.ResponseWriter, r *http.Request, timing linkTiming, readLimit int) (*wsTransport, error) {
	offers := offeredSubprotocols(r)
	if !slices.ContainsFunc(offers, func(p string) bool { return strings.HasPrefix(p, "hakuban.") }) {
		http.Error(w, fmt.Sprintf("hakuban: the WebSocket subprotocol %q is required (offered: %q)", wire.Subprotocol, offers), http.StatusBadRequest)
		return nil, errNoSubprotocol
	}
	hr := &hijackRecorder{ResponseWriter: w}
	conn, err := websocket.Accept(hr, r, &websocket.AcceptOptions{
		Subprotocols:    []string{wire.Subprotocol},
		CompressionMode: websocket.CompressionDisabled, // the framing speaks no extension
	})
	if err != nil {
		return nil, fmt.Errorf("core: accept: %w (%w)", ErrConnection, err)
	}
	raw := hr.conn
	if tc, ok := raw.(*tls.Conn); ok {
		// Closing a tls.Conn writes an alert and can block; closing the
		// TCP connection under it cannot.
		raw = tc.NetConn()
	}
	return newWSTransport(conn, hr.conn, hr.leftover, raw, false, timing, readLimit), nil
}

// hijackRecorder remembers the connection websocket.Accept hijacks, and
// what the HTTP server had read of it past the request, for the transport.
type hijackRecorder struct {
	http.ResponseWriter
	conn     net.Conn
	leftover []byte
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	if err == nil && brw.Reader.Buffered() > 0 {
		b, _ := brw.Reader.Peek(brw.Reader.Buffered())
		h.leftover = bytes.Clone(b)
	}
	return c, brw, err
}
