package core

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// ListenerOptions configure a Listener. Start from DefaultListenerOptions;
// a zero duration or limit means its default.
type ListenerOptions struct {
	// Addr is the TCP address to bind, host:port. Port 0 picks a free
	// port (see Listener.Addr). Default "127.0.0.1:3001".
	Addr string
	// TLS, when set, makes the listener serve wss:// (it needs a
	// certificate; set ClientAuth and ClientCAs for mutual TLS).
	TLS *tls.Config
	// Path is the HTTP path of the WebSocket endpoint. Default "/".
	Path string
	// Name is this exchange's name as downstreams see it. Default: the
	// exchange's Config.Name.
	Name string
	// Authenticate, when set, checks the token of every downstream's
	// handshake; an error refuses the link with close code 4002 and the
	// error's text as the reason the downstream's user reads. It runs on
	// the link's goroutine, concurrently for different links.
	Authenticate func(token []byte) error
	// Authorize, when set, runs after Authenticate (if any) and returns
	// the permissions of the link the token opens: the contracts its
	// subtree may make (nil allows everything). An error refuses the link
	// like Authenticate does. Listener.Reauthorize runs both again for
	// the open links. It runs on the link's goroutine, concurrently for
	// different links.
	Authorize func(token []byte) (*Permissions, error)
	// Limits are what this side accepts from downstreams, announced in
	// the handshake.
	Limits LinkLimits
	// PingInterval and PingTimeout: each link pings every PingInterval
	// and is declared dead when a pong takes longer than PingTimeout.
	// Defaults 4 s and 5 s.
	PingInterval, PingTimeout time.Duration
	// HandshakeTimeout bounds the wait for a downstream's Hello.
	// Default 10 s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds the graceful close of each link, also when the
	// listener closes. Default 2 s.
	CloseTimeout time.Duration
	// MaxHandshakes bounds the connections between the upgrade request
	// and the end of the handshake (not yet authenticated): more upgrades
	// are answered HTTP 503, and their clients retry. Established links
	// do not count. Default 1024.
	MaxHandshakes int
	// Logger receives connection events; nil logs nothing.
	Logger *slog.Logger
}

// DefaultListenAddr is the default ListenerOptions.Addr.
const DefaultListenAddr = "127.0.0.1:3001"

// DefaultListenerOptions returns the default options.
func DefaultListenerOptions() ListenerOptions {
	return ListenerOptions{
		Addr:             DefaultListenAddr,
		Path:             "/",
		Limits:           DefaultLinkLimits(),
		PingInterval:     wire.DefaultPingInterval,
		PingTimeout:      wire.DefaultPingTimeout,
		HandshakeTimeout: wire.DefaultHandshakeTimeout,
		CloseTimeout:     defaultCloseTimeout,
		MaxHandshakes:    1024,
	}
}

func (o ListenerOptions) withDefaults() ListenerOptions {
	d := DefaultListenerOptions()
	if o.Addr == "" {
		o.Addr = d.Addr
	}
	if o.Path == "" {
		o.Path = d.Path
	}
	if o.MaxHandshakes == 0 {
		o.MaxHandshakes = d.MaxHandshakes
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&o.PingInterval, &d.PingInterval}, {&o.PingTimeout, &d.PingTimeout},
		{&o.HandshakeTimeout, &d.HandshakeTimeout}, {&o.CloseTimeout, &d.CloseTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	o.Limits = o.Limits.WithDefaults()
	return o
}

// Validate reports the first option that is out of range.
func (o ListenerOptions) Validate() error {
	if o.Path != "" && !strings.HasPrefix(o.Path, "/") {
		return fmt.Errorf("core: listener: Path %q must start with /: %w", o.Path, ErrInvalidConfig)
	}
	if o.MaxHandshakes < 0 {
		return fmt.Errorf("core: listener: MaxHandshakes %d is negative: %w", o.MaxHandshakes, ErrInvalidConfig)
	}
	if len(o.Name) > wire.MaxNameLen || !utf8.ValidString(o.Name) {
		return fmt.Errorf("core: listener: Name must be valid UTF-8 of at most %d bytes: %w", wire.MaxNameLen, ErrInvalidConfig)
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"PingInterval", o.PingInterval}, {"PingTimeout", o.PingTimeout},
		{"HandshakeTimeout", o.HandshakeTimeout}, {"CloseTimeout", o.CloseTimeout},
	} {
		if f.v < 0 {
			return fmt.Errorf("core: listener: %s %v is negative: %w", f.name, f.v, ErrInvalidConfig)
		}
	}
	if err := o.Limits.Validate(); err != nil {
		return fmt.Errorf("core: listener: %w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// LinkInfo describes one downstream link of a Listener.
type LinkInfo struct {
	// Peer is the downstream exchange's name; empty during the handshake.
	Peer string `json:"peer"`
	// RemoteAddr is the downstream's network address.
	RemoteAddr string `json:"remote_addr"`
	// Established is false during the handshake.
	Established bool      `json:"established"`
	Since       time.Time `json:"since"`
	// Traffic in whole frames (WebSocket messages), without WebSocket
	// framing.
	BytesIn   uint64 `json:"bytes_in"`
	BytesOut  uint64 `json:"bytes_out"`
	FramesIn  uint64 `json:"frames_in"`
	FramesOut uint64 `json:"frames_out"`
}

// ListenerStats are a Listener's cumulative counters.
type ListenerStats struct {
	// Accepted counts links that completed the handshake.
	Accepted uint64 `json:"accepted"`
	// Refused counts upgrades and handshakes refused (bad subprotocol,
	// version, token, timeout).
	Refused uint64 `json:"refused"`
	// Open is the number of links now open, handshakes included.
	Open int `json:"open"`
	// Bytes and frames over every link, closed ones included.
	BytesIn   uint64 `json:"bytes_in"`
	BytesOut  uint64 `json:"bytes_out"`
	FramesIn  uint64 `json:"frames_in"`
	FramesOut uint64 `json:"frames_out"`
}

// Listener accepts downstream links for an exchange (SPEC §3.1): a
// WebSocket endpoint where each accepted connection, after the handshake,
// becomes a link whose subtree takes part in the exchange's elections.
// Close stops accepting, closes every link in parallel (close code 4004,
// going away) within CloseTimeout and waits for all goroutines.
type Listener struct {
	ex   *Exchange
	opts ListenerOptions
	log  *slog.Logger
	ln   net.Listener // nil for NewListener
	srv  *http.Server

	ctx    context.Context // cancelled by Close: ends every link
	cancel context.CancelFunc
	wg     sync.WaitGroup // serve goroutine, exchange watcher, link handlers

	mu     sync.Mutex
	closed bool
	links  map[*listenerLink]struct{}
	done   linkStats // traffic of closed links

	accepted, refused atomic.Uint64
	handshaking       atomic.Int64 // connections before the end of their handshake
	// authGen counts Reauthorize calls: a link authorized before one
	// and started after it checks its token again (see ServeHTTP).
	authGen atomic.Uint64
}

// listenerLink is one accepted connection. peer is set once, before
// established.
type listenerLink struct {
	t           *wsTransport
	since       time.Time
	peer        string
	established atomic.Bool
	// link runs the connection once the handshake is done; token is what
	// the peer presented (both for Reauthorize).
	link  atomic.Pointer[link]
	token []byte
}

// Listen binds opts.Addr and serves downstream links on it until Close.
func (ex *Exchange) Listen(opts ListenerOptions) (*Listener, error) {
	l, err := ex.newListener(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", l.opts.Addr)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("core: listen on %s: %w: %w", l.opts.Addr, ErrConnection, err)
	}
	if l.opts.TLS != nil {
		tc := l.opts.TLS.Clone()
		tc.NextProtos = []string{"http/1.1"} // WebSocket needs HTTP/1.1
		ln = tls.NewListener(ln, tc)
	}
	l.ln = ln
	path := l.opts.Path
	l.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != path {
				http.NotFound(w, r)
				return
			}
			l.ServeHTTP(w, r)
		}),
		// An unauthenticated peer costs at most the handshake timeout
		// (PROTOCOL.md §16): a request that is not an upgrade, and the
		// keep-alive connection after it, too. Hijacking clears the
		// deadlines, so links are not bounded by them.
		ReadHeaderTimeout: l.opts.HandshakeTimeout,
		ReadTimeout:       l.opts.HandshakeTimeout,
		WriteTimeout:      l.opts.HandshakeTimeout,
		IdleTimeout:       l.opts.HandshakeTimeout,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = l.srv.Serve(ln)
	}()
	l.log.Info("hakuban: listening", "addr", ln.Addr().String(), "path", path, "tls", l.opts.TLS != nil)
	return l, nil
}

// NewListener returns a Listener that binds nothing: serve its Handler
// from your own HTTP server (which must support hijacking, i.e. HTTP/1.1).
// Its Close still closes every link it accepted.
func (ex *Exchange) NewListener(opts ListenerOptions) (*Listener, error) {
	return ex.newListener(opts)
}

func (ex *Exchange) newListener(opts ListenerOptions) (*Listener, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if opts.Name == "" {
		opts.Name = ex.cfg.Name
	}
	ex.mu.Lock()
	closed := ex.closed
	ex.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("core: listen: exchange: %w", ErrClosed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{ex: ex, opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel, links: map[*listenerLink]struct{}{}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	// Links end when the exchange closes.
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		select {
		case <-ex.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return l, nil
}

// Addr returns the bound address (with the real port when Addr asked for
// port 0), or nil for a Listener made by NewListener.
func (l *Listener) Addr() net.Addr {
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// URL returns the ws:// (or wss://) URL downstreams connect to, or "" for
// a Listener made by NewListener.
func (l *Listener) URL() string {
	if l.ln == nil {
		return ""
	}
	scheme := "ws"
	if l.opts.TLS != nil {
		scheme = "wss"
	}
	return scheme + "://" + l.ln.Addr().String() + l.opts.Path
}

// Handler returns the WebSocket endpoint, for mounting in another HTTP
// server.
func (l *Listener) Handler() http.Handler { return l }

// ServeHTTP upgrades a downstream's request and runs its link until it
// ends; it implements http.Handler.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		http.Error(w, "hakuban: listener closed", http.StatusServiceUnavailable)
		return
	}
	l.wg.Add(1)
	l.mu.Unlock()
	defer l.wg.Done()
	if l.handshaking.Add(1) > int64(l.opts.MaxHandshakes) {
		l.handshaking.Add(-1)
		l.refused.Add(1)
		l.log.Warn("hakuban: upgrade refused: too many handshakes under way", "remote", r.RemoteAddr, "max", l.opts.MaxHandshakes)
		http.Error(w, "hakuban: too many handshakes under way, retry later", http.StatusServiceUnavailable)
		return
	}
	handshaking := true
	defer func() {
		if handshaking {
			l.handshaking.Add(-1)
		}
	}()

	timing := linkTiming{pingInterval: l.opts.PingInterval, pingTimeout: l.opts.PingTimeout, closeTimeout: l.opts.CloseTimeout}
	t, err := acceptWS(w, r, timing, wire.MaxHandshakeFrame)
	if err != nil {
		l.refused.Add(1)
		l.log.Info("hakuban: upgrade refused", "remote", r.RemoteAddr, "error", err)
		return
	}
	ll := &listenerLink{t: t, since: time.Now()}
	l.mu.Lock()
	l.links[ll] = struct{}{}
	l.mu.Unlock()
	defer l.forget(ll)

	if t.conn.Subprotocol() != wire.Subprotocol {
		l.refused.Add(1)
		reason := fmt.Sprintf("unsupported protocol: client offers %s, server speaks %s", strings.Join(offeredSubprotocols(r), ","), wire.Subprotocol)
		l.log.Info("hakuban: link refused", "remote", r.RemoteAddr, "reason", reason)
		_ = t.Close(wire.CloseUnsupportedVersion, reason)
		return
	}
	welcome := wire.Welcome{Name: l.opts.Name, Features: linkFeatures, Limits: l.opts.Limits}
	gen := l.authGen.Load()
	peer, err := serverHandshake(l.ctx, t, welcome, l.authorize, l.opts.HandshakeTimeout)
	l.handshaking.Add(-1)
	handshaking = false
	if err != nil {
		l.refused.Add(1)
		l.log.Info("hakuban: handshake failed", "remote", r.RemoteAddr, "error", err)
		return
	}
	ll.peer = peer.Name
	ll.token = peer.Token
	peer.started = func(lk *link) {
		ll.link.Store(lk)
		if l.authGen.Load() != gen {
			l.reauthorize(ll, lk) // a Reauthorize ran since the handshake's check
		}
	}
	ll.established.Store(true)
	l.accepted.Add(1)
	l.log.Info("hakuban: downstream connected", "remote", r.RemoteAddr, "peer", peer.Name, "permissions", peer.Perms.Name())
	err = l.ex.runLink(l.ctx, t, roleDownstream, peer)
	if l.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	l.log.Info("hakuban: downstream disconnected", "remote", r.RemoteAddr, "peer", peer.Name, "error", err)
}

// authorize checks a downstream's token with Authenticate and Authorize;
// without either every token is welcome and may do everything.
func (l *Listener) authorize(token []byte) (*Permissions, error) {
	if l.opts.Authenticate != nil {
		if err := l.opts.Authenticate(token); err != nil {
			return nil, err
		}
	}
	if l.opts.Authorize != nil {
		return l.opts.Authorize(token)
	}
	return nil, nil
}

// Reauthorize checks the token of every open link again with
// Authenticate and Authorize and applies the answer at once (SPEC §3.3):
//
//   - a link whose token is now refused is closed with close code 4002
//     (auth refused), which its downstream does not retry;
//   - a link keeps going with its new permissions, and each contract of
//     its subtree they no longer allow is ended as if it had been refused
//     when declared: the downstream hears Error (permission denied), loses
//     the assignments and the states the contract brought, and reports the
//     contract as refused.
//
// Rights the answer adds apply to declarations made afterwards; what a
// downstream was refused before is asked again when it reconnects. A
// router calls it after reloading its auth file. It returns how many
// links were closed and how many contracts were revoked; without
// Authenticate and Authorize it does nothing.
func (l *Listener) Reauthorize() (closed, revoked int) {
	if l.opts.Authenticate == nil && l.opts.Authorize == nil {
		return 0, 0
	}
	l.authGen.Add(1)
	l.mu.Lock()
	links := l.linksLocked()
	l.mu.Unlock()
	for _, ll := range links {
		lk := ll.link.Load()
		if lk == nil {
			continue // not started: it checks again when it starts (authGen)
		}
		c, r := l.reauthorize(ll, lk)
		closed, revoked = closed+c, revoked+r
	}
	return closed, revoked
}

// reauthorize checks the token of one link again (Reauthorize).
func (l *Listener) reauthorize(ll *listenerLink, lk *link) (closed, revoked int) {
	perms, err := l.authorize(ll.token)
	if err != nil {
		l.log.Info("hakuban: link closed: its token is no longer accepted", "peer", ll.peer, "error", err)
		lk.abort(&linkAbort{code: wire.CloseAuthRefused, reason: "auth refused: " + err.Error()})
		return 1, 0
	}
	return 0, lk.setPermissions(perms)
}

// forget removes a finished link, keeping its traffic in the totals. The
// transport is closed (runLink and the handshake close it; this makes
// sure on every other path).
func (l *Listener) forget(ll *listenerLink) {
	_ = ll.t.CloseNow()
	s := ll.t.stats()
	l.mu.Lock()
	delete(l.links, ll)
	l.done.BytesIn += s.BytesIn
	l.done.BytesOut += s.BytesOut
	l.done.FramesIn += s.FramesIn
	l.done.FramesOut += s.FramesOut
	l.mu.Unlock()
}

// Links describes the open links, oldest first.
func (l *Listener) Links() []LinkInfo {
	l.mu.Lock()
	links := l.linksLocked()
	l.mu.Unlock()
	out := make([]LinkInfo, 0, len(links))
	for _, ll := range links {
		s := ll.t.stats()
		info := LinkInfo{
			RemoteAddr: ll.t.remoteAddr(), Since: ll.since, Established: ll.established.Load(),
			BytesIn: s.BytesIn, BytesOut: s.BytesOut, FramesIn: s.FramesIn, FramesOut: s.FramesOut,
		}
		if info.Established {
			info.Peer = ll.peer
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b LinkInfo) int { return cmp.Compare(a.Since.UnixNano(), b.Since.UnixNano()) })
	return out
}

// linksLocked returns the open links. Called with mu held.
func (l *Listener) linksLocked() []*listenerLink {
	links := make([]*listenerLink, 0, len(l.links))
	for ll := range l.links {
		links = append(links, ll)
	}
	return links
}

// Stats returns the listener's counters.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	s := ListenerStats{
		Open: len(l.links), BytesIn: l.done.BytesIn, BytesOut: l.done.BytesOut,
		FramesIn: l.done.FramesIn, FramesOut: l.done.FramesOut,
	}
	links := l.linksLocked()
	l.mu.Unlock()
	for _, ll := range links {
		ls := ll.t.stats()
		s.BytesIn += ls.BytesIn
		s.BytesOut += ls.BytesOut
		s.FramesIn += ls.FramesIn
		s.FramesOut += ls.FramesOut
	}
	s.Accepted, s.Refused = l.accepted.Load(), l.refused.Load()
	return s
}

// Close stops accepting, closes every link in parallel with close code
// 4004 (going away) and waits, at most about CloseTimeout, for all of the
// listener's goroutines. It is idempotent.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if l.srv != nil {
		_ = l.srv.Close() // stops accepting; hijacked connections are ours
	}
	l.cancel() // every runLink and handshake closes its link, in parallel
	l.wg.Wait()
	return nil
}
