package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// ConnectorOptions configure a Connector. Start from
// DefaultConnectorOptions; a zero duration or limit means its default.
type ConnectorOptions struct {
	// URLs lists the upstream's addresses, ws:// or wss://, in order of
	// preference (a hot-standby root after the primary). Required.
	URLs []string
	// Name is this exchange's name as the upstream sees it (logs,
	// snapshots). Default: the exchange's Config.Name.
	Name string
	// Token is sent in the handshake for the upstream to authenticate.
	// At most 4096 bytes; empty for none.
	Token []byte
	// TLS configures wss:// connections (CA bundle, client certificates).
	// Nil uses the system roots.
	TLS *tls.Config
	// MinBackoff and MaxBackoff bound the wait between attempts: after n
	// consecutive failures the wait is random in [0, min(MaxBackoff,
	// MinBackoff·2^n)) ("full jitter"). A session that lasted
	// StableSession resets n. Defaults 100 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// StableSession is how long a session must last to count as a
	// success that resets the backoff, so that an upstream that accepts
	// and at once drops links is not hammered. Default 1 s.
	StableSession time.Duration
	// PingInterval and PingTimeout: the connector pings every
	// PingInterval and declares the link dead when a pong takes longer
	// than PingTimeout. Defaults 4 s and 5 s (a dead link is noticed
	// within 9 s).
	PingInterval, PingTimeout time.Duration
	// DialTimeout bounds the TCP, TLS and HTTP upgrade handshakes.
	// Default 10 s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the wait for the upstream's Welcome.
	// Default 10 s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds a graceful close of the link. Default 2 s.
	CloseTimeout time.Duration
	// Limits are what this side accepts from the upstream, announced in
	// the handshake.
	Limits LinkLimits
	// Logger receives connection events; nil logs nothing.
	Logger *slog.Logger
}

// Connector defaults.
const (
	DefaultMinBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff    = 10 * time.Second
	DefaultStableSession = time.Second
	DefaultDialTimeout   = 10 * time.Second
)

// DefaultConnectorOptions returns the default options, without URLs.
func DefaultConnectorOptions() ConnectorOptions {
	return ConnectorOptions{
		MinBackoff:       DefaultMinBackoff,
		MaxBackoff:       DefaultMaxBackoff,
		StableSession:    DefaultStableSession,
		PingInterval:     wire.DefaultPingInterval,
		PingTimeout:      wire.DefaultPingTimeout,
		DialTimeout:      DefaultDialTimeout,
		HandshakeTimeout: wire.DefaultHandshakeTimeout,
		CloseTimeout:     defaultCloseTimeout,
		Limits:           DefaultLinkLimits(),
	}
}

// withDefaults fills zero fields.
func (o ConnectorOptions) withDefaults() ConnectorOptions {
	d := DefaultConnectorOptions()
	for _, f := range []struct{ v, def *time.Duration }{
		{&o.MinBackoff, &d.MinBackoff}, {&o.MaxBackoff, &d.MaxBackoff},
		{&o.StableSession, &d.StableSession},
		{&o.PingInterval, &d.PingInterval}, {&o.PingTimeout, &d.PingTimeout},
		{&o.DialTimeout, &d.DialTimeout}, {&o.HandshakeTimeout, &d.HandshakeTimeout},
		{&o.CloseTimeout, &d.CloseTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	o.Limits = o.Limits.WithDefaults()
	return o
}

// Validate reports the first option that is out of range.
func (o ConnectorOptions) Validate() error {
	if len(o.URLs) == 0 {
		return fmt.Errorf("core: connector: no upstream URL: %w", ErrInvalidConfig)
	}
	for _, s := range o.URLs {
		if err := checkLinkURL(s); err != nil {
			return err
		}
	}
	switch {
	case len(o.Name) > wire.MaxNameLen || !utf8.ValidString(o.Name):
		return fmt.Errorf("core: connector: Name must be valid UTF-8 of at most %d bytes: %w", wire.MaxNameLen, ErrInvalidConfig)
	case len(o.Token) > wire.MaxTokenLen:
		return fmt.Errorf("core: connector: Token of %d bytes, limit %d: %w", len(o.Token), wire.MaxTokenLen, ErrInvalidConfig)
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"MinBackoff", o.MinBackoff}, {"MaxBackoff", o.MaxBackoff}, {"StableSession", o.StableSession},
		{"PingInterval", o.PingInterval}, {"PingTimeout", o.PingTimeout},
		{"DialTimeout", o.DialTimeout}, {"HandshakeTimeout", o.HandshakeTimeout}, {"CloseTimeout", o.CloseTimeout},
	} {
		if f.v < 0 {
			return fmt.Errorf("core: connector: %s %v is negative: %w", f.name, f.v, ErrInvalidConfig)
		}
	}
	if o.MaxBackoff != 0 && o.MaxBackoff < o.MinBackoff {
		return fmt.Errorf("core: connector: MaxBackoff %v below MinBackoff %v: %w", o.MaxBackoff, o.MinBackoff, ErrInvalidConfig)
	}
	if err := o.Limits.Validate(); err != nil {
		return fmt.Errorf("core: connector: %w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// checkLinkURL accepts ws:// and wss:// URLs with a host.
func checkLinkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("core: connector: URL %q: %w: %w", s, ErrInvalidConfig, err)
	}
	if (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("core: connector: URL %q: want ws://host[:port][/path] or wss://...: %w", s, ErrInvalidConfig)
	}
	return nil
}

// ConnectorState says what a Connector is doing.
type ConnectorState int

// Connector states.
const (
	// ConnectorConnecting: dialing an upstream address or in the handshake.
	ConnectorConnecting ConnectorState = iota
	// ConnectorConnected: the link to the upstream is up.
	ConnectorConnected
	// ConnectorDisconnected: the last attempt or session failed; waiting
	// (backoff) before the next attempt.
	ConnectorDisconnected
	// ConnectorClosed: Close was called, or the exchange closed.
	ConnectorClosed
	// ConnectorRefused: every address refused the link for good
	// (unsupported protocol version, close 4001, or token refused, close
	// 4002; see LastError). Retrying would only repeat the refusal
	// (PROTOCOL.md §15), so the connector stopped trying: Close it and
	// Connect again with new options.
	ConnectorRefused
)

var connectorStateNames = [...]string{"connecting", "connected", "disconnected", "closed", "refused"}

// String returns the state's name, e.g. "connected".
func (s ConnectorState) String() string {
	if s >= 0 && int(s) < len(connectorStateNames) {
		return connectorStateNames[s]
	}
	return "unknown"
}

// ConnectorStatus is a Connector's state at one moment.
type ConnectorStatus struct {
	State ConnectorState
	// URL is the address being dialed or connected to (when
	// disconnected: the one that failed last).
	URL string
	// Peer is the upstream exchange's name while connected.
	Peer string
	// LastError says why the last attempt or session ended; nil before
	// the first failure. A refusal reads like "core: upstream refused:
	// auth refused: bad token (close 4002)".
	LastError error
	// Connects counts the sessions established so far.
	Connects uint64
	// Failures counts the attempts that failed since the last stable
	// session.
	Failures int
	// Since is when State was entered.
	Since time.Time
}

// Connector keeps an exchange linked to its upstream: it dials the
// upstream's addresses in order, uses the first that answers, fails over
// to the next when the link is lost, and reconnects forever with capped
// exponential backoff and full jitter. On every new session the link
// re-declares the exchange's contracts and the versions it holds. The one
// exception to "forever" is an address that refuses the link with close
// 4001 (unsupported version) or 4002 (auth refused): it is not tried
// again, and when every address did so the state becomes
// ConnectorRefused.
//
// An exchange has at most one upstream, so it accepts one Connector at a
// time. Close stops the Connector and waits for its goroutines.
type Connector struct {
	ex     *Exchange
	opts   ConnectorOptions
	log    *slog.Logger
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	status  ConnectorStatus
	changed chan struct{} // closed and replaced at every change
	notify  func()
}

// Connect starts a Connector that links ex to an upstream (SPEC §3.1). It
// returns at once; watch Status, Watch or SetNotify to learn when the link
// is up. It fails when opts are invalid, when ex already has a Connector,
// or when ex is closed.
func (ex *Exchange) Connect(opts ConnectorOptions) (*Connector, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if opts.Name == "" {
		opts.Name = ex.cfg.Name
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	c := &Connector{
		ex:      ex,
		opts:    opts,
		log:     opts.Logger,
		cancel:  cancel,
		changed: make(chan struct{}),
		status:  ConnectorStatus{State: ConnectorConnecting, URL: opts.URLs[0], Since: time.Now()},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	// One upstream per exchange (SPEC §3.1): the exchange records its connector.
	ex.mu.Lock()
	switch {
	case ex.closed:
		ex.mu.Unlock()
		cancel(errNormalClose)
		return nil, fmt.Errorf("core: connect: exchange: %w", ErrClosed)
	case ex.connector != nil:
		ex.mu.Unlock()
		cancel(errNormalClose)
		return nil, fmt.Errorf("core: connect: the exchange already has a connector (one upstream per exchange): %w", ErrInvalidArgument)
	}
	ex.connector = c
	ex.mu.Unlock()
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		select {
		case <-ex.done:
			cancel(errNormalClose)
		case <-ctx.Done():
		}
	}()
	go func() {
		defer c.wg.Done()
		defer func() {
			ex.mu.Lock()
			if ex.connector == c {
				ex.connector = nil
			}
			ex.mu.Unlock()
		}()
		c.run(ctx)
	}()
	return c, nil
}

// Close stops the connector: it closes the link, or the handshake under
// way, with close code 1000 (normal closure: the upstream does not expect
// it back), stops reconnecting and waits for its goroutines. It is
// idempotent.
func (c *Connector) Close() error {
	c.cancel(errNormalClose)
	c.wg.Wait()
	return nil
}

// Status returns the connector's current status.
func (c *Connector) Status() ConnectorStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Watch returns the current status and a channel that is closed at the
// next change, for select loops:
//
//	for st, ch := c.Watch(); st.State != core.ConnectorConnected; st, ch = c.Watch() {
//		<-ch
//	}
func (c *Connector) Watch() (ConnectorStatus, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.changed
}

// SetNotify sets a hook run after every status change (nil removes it),
// for pollable interfaces such as the C API's. It runs on the connector's
// goroutine, so it must return quickly and must not call Close.
func (c *Connector) SetNotify(f func()) {
	c.mu.Lock()
	c.notify = f
	c.mu.Unlock()
}

// setStatus applies change to the status, wakes watchers and runs the hook.
func (c *Connector) setStatus(change func(*ConnectorStatus)) {
	c.mu.Lock()
	prev := c.status.State
	change(&c.status)
	if c.status.State != prev {
		c.status.Since = time.Now()
	}
	close(c.changed)
	c.changed = make(chan struct{})
	notify := c.notify
	c.mu.Unlock()
	if notify != nil {
		notify()
	}
}

// run is the connector's loop: attempt, session, backoff, again.
func (c *Connector) run(ctx context.Context) {
	defer c.setStatus(func(s *ConnectorStatus) { s.State, s.Peer = ConnectorClosed, "" })
	rnd := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	urls := c.opts.URLs
	refused := make([]bool, len(urls)) // addresses that refused for good
	failures, idx := 0, 0
	// next moves idx to the next address that has not refused for good;
	// false when none is left.
	next := func() bool {
		for range urls {
			idx = (idx + 1) % len(urls)
			if !refused[idx] {
				return true
			}
		}
		return false
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			timer := time.NewTimer(backoff(failures, c.opts.MinBackoff, c.opts.MaxBackoff, rnd))
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		u := urls[idx]
		c.setStatus(func(s *ConnectorStatus) { s.State, s.URL, s.Peer = ConnectorConnecting, u, "" })
		c.log.Debug("hakuban: connecting to upstream", "url", u)
		t, peer, err := c.dial(ctx, u)
		connected := err == nil
		start := time.Now()
		if connected {
			c.setStatus(func(s *ConnectorStatus) {
				s.State, s.Peer = ConnectorConnected, peer.Name
				s.Connects++
			})
			c.log.Info("hakuban: connected to upstream", "url", u, "peer", peer.Name)
			err = c.ex.runLink(ctx, t, roleUpstream, peer)
		}
		if ctx.Err() != nil {
			return
		}
		// A session that lasted counts as a success and resets the
		// backoff; one that ended at once does not, so that an upstream
		// that accepts and drops every link is not hammered.
		if connected && time.Since(start) >= c.opts.StableSession {
			failures = 0
		} else {
			failures++
		}
		c.log.Warn("hakuban: upstream link ended", "url", u, "error", err)
		state := ConnectorDisconnected
		if refusedForGood(err) {
			refused[idx] = true
		}
		// Fail over: the next attempt goes to the next address.
		if !next() {
			state = ConnectorRefused
		}
		c.setStatus(func(s *ConnectorStatus) {
			s.State, s.LastError, s.Failures, s.Peer = state, err, failures, ""
		})
		if state == ConnectorRefused {
			c.log.Error("hakuban: every upstream address refused the link; giving up", "error", err)
			<-ctx.Done()
			return
		}
	}
}

// dial opens a transport to u and runs the client handshake.
func (c *Connector) dial(ctx context.Context, u string) (transport, linkPeer, error) {
	timing := linkTiming{pingInterval: c.opts.PingInterval, pingTimeout: c.opts.PingTimeout, closeTimeout: c.opts.CloseTimeout}
	// Until the Welcome, frames are bounded by the handshake's limit
	// (PROTOCOL.md §12); clientHandshake then applies ours.
	t, err := dialWS(ctx, u, c.opts.TLS, c.opts.DialTimeout, timing, wire.MaxHandshakeFrame)
	if err != nil {
		return nil, linkPeer{}, err
	}
	if sp := t.conn.Subprotocol(); sp != wire.Subprotocol {
		reason := fmt.Sprintf("the server does not speak hakuban protocol %d", wire.ProtocolMajor)
		_ = t.Close(wire.CloseUnsupportedVersion, reason)
		return nil, linkPeer{}, &messageError{
			msg:  fmt.Sprintf("core: %s: %s (it selected no subprotocol %s)", u, reason, wire.Subprotocol),
			errs: []error{ErrConnection, &linkClosedError{Code: wire.CloseUnsupportedVersion, Reason: reason, Remote: true}},
		}
	}
	hello := &wire.Hello{
		Major: wire.ProtocolMajor, Minor: wire.ProtocolMinor,
		Name: c.opts.Name, Token: c.opts.Token,
		Features: linkFeatures, Limits: c.opts.Limits,
	}
	peer, err := clientHandshake(ctx, t, hello, c.opts.HandshakeTimeout)
	if err != nil {
		return nil, linkPeer{}, fmt.Errorf("%w (%s)", err, u)
	}
	return t, peer, nil
}

// refusedForGood reports whether err is an upstream's refusal that would
// only repeat (unsupported version, bad token): PROTOCOL.md §15 says not
// to reconnect to that address.
func refusedForGood(err error) bool {
	var lc *linkClosedError
	return errors.As(err, &lc) && lc.Remote && lc.Code != 0 && !lc.Code.Retry()
}

// backoff returns the wait before the next attempt after failures
// consecutive failures: uniformly random in [0, min(maxB, minB·2^failures))
// ("full jitter"), so that many downstreams that lost the same upstream do
// not return in lock-step. The bound doubles per failure and is capped;
// minB must be positive.
func backoff(failures int, minB, maxB time.Duration, rnd *rand.Rand) time.Duration {
	ceil := maxB
	if failures < 63 {
		if c := minB << failures; c>>failures == minB && c > 0 && c < maxB {
			ceil = c
		}
	}
	return time.Duration(rnd.Int64N(int64(ceil)))
}
