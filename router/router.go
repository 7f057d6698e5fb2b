// Package router is hakuban's standalone router as an embeddable library:
// an exchange with no contracts of its own, one or more listeners that
// downstream exchanges connect to, an optional upstream (stacked routers),
// and HTTP endpoints for health, readiness, Prometheus metrics and
// snapshots (SPEC §3.4). cmd/router is a thin main around it.
//
//	r, err := router.New(cfg)
//	if err != nil { ... }
//	if err := r.Start(ctx); err != nil { ... }
//	defer r.Close()
//	fmt.Println(r.Addrs())
package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hakuban/hakuban/core"
)

// Config configures a Router. Start from DefaultConfig.
type Config struct {
	// Name is the router exchange's name, shown to its peers.
	Name string
	// Listen lists the addresses (host:port) to accept downstream links
	// on; port 0 picks a free port (see Router.Addrs and AddrFile).
	Listen []string
	// Upstreams lists the upstream router's URLs (ws:// or wss://), in
	// order of preference, for stacked routers; empty for a root.
	Upstreams []string
	// UpstreamToken is sent to the upstream to authenticate.
	UpstreamToken []byte
	// AuthFile, when set, is the JSON file of tokens and their
	// permissions (see Auth): every downstream must present a token it
	// lists (or none, if it has an "anonymous" entry), and may then make
	// only the contracts its entry allows. New loads it; ReloadAuth
	// reloads it and applies it to the open links too.
	AuthFile string
	// TLS, when set, makes every listener serve wss:// (see TLSFiles).
	TLS *tls.Config
	// UpstreamTLS configures wss:// upstream connections (CA bundle,
	// client certificate); nil uses the system roots.
	UpstreamTLS *tls.Config
	// MetricsAddr is where /healthz, /readyz, /metrics and /snapshot are
	// served (host:port, port 0 allowed); empty disables them.
	MetricsAddr string
	// AddrFile, when set, receives the bound listen addresses, one
	// host:port per line, once all are bound (written atomically), for
	// tests and scripts that start a router on port 0. Start removes a
	// file left behind first; Close removes it as it stops accepting,
	// before draining the links.
	AddrFile string
	// Limits are what the router accepts on every link.
	Limits core.LinkLimits
	// RebalanceThreshold is the exchange's rebalancing threshold, in
	// (0,1).
	RebalanceThreshold float64
	// PingInterval and PingTimeout tune dead-link detection on every link
	// (zero: 4 s and 5 s).
	PingInterval, PingTimeout time.Duration
	// CloseTimeout bounds the graceful close of each link at shutdown;
	// links close in parallel. Default 2 s.
	CloseTimeout time.Duration
	// MaxHandshakes bounds, per listen address, the connections not yet
	// through their handshake; more upgrades are answered HTTP 503 (see
	// core.ListenerOptions). 0 means the default, 1024.
	MaxHandshakes int
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	// Logs go to stderr. Both are ignored when Logger is set.
	LogLevel, LogFormat string
	// Logger, when set, receives the router's logs.
	Logger *slog.Logger
	// MonitorTag, when set, makes the router publish its own state
	// (MonitorValue: links, upstream, snapshot) as an object with this tag
	// (a JSON string), so that clients can watch it with ordinary
	// contracts. It is produced only while observed.
	MonitorTag string
	// MonitorInterval is how often the monitor object is refreshed while
	// observed, when it changed. A change of its traffic counters alone
	// (which sending the object itself causes) is published every 10
	// intervals. Default 1 s.
	MonitorInterval time.Duration
}

// DefaultConfig returns the default configuration: one listener on
// 127.0.0.1:3001, no upstream, no HTTP endpoints.
func DefaultConfig() Config {
	return Config{
		Name:               "router",
		Listen:             []string{core.DefaultListenAddr},
		Limits:             core.DefaultLinkLimits(),
		RebalanceThreshold: core.DefaultConfig().RebalanceThreshold,
		CloseTimeout:       2 * time.Second,
		MonitorInterval:    time.Second,
		LogLevel:           "info",
		LogFormat:          "text",
	}
}

// Validate reports the first setting that is out of range.
func (c Config) Validate() error {
	if len(c.Listen) == 0 {
		return errors.New("router: no listen address")
	}
	for _, a := range c.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("router: listen address %q: %w", a, err)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("router: metrics address %q: %w", c.MetricsAddr, err)
		}
	}
	if len(c.Upstreams) > 0 {
		if err := c.connectorOptions().Validate(); err != nil {
			return fmt.Errorf("router: upstream: %w", err)
		}
	}
	if err := c.listenerOptions("127.0.0.1:0").Validate(); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if !(c.RebalanceThreshold > 0 && c.RebalanceThreshold < 1) {
		return fmt.Errorf("router: rebalance threshold %v not in (0,1)", c.RebalanceThreshold)
	}
	if c.CloseTimeout < 0 {
		return fmt.Errorf("router: close timeout %v is negative", c.CloseTimeout)
	}
	if c.Logger == nil {
		if _, err := parseLevel(c.LogLevel); err != nil {
			return err
		}
		if c.LogFormat != "text" && c.LogFormat != "json" {
			return fmt.Errorf("router: log format %q: want text or json", c.LogFormat)
		}
	}
	if c.MonitorInterval < 0 || (c.MonitorTag != "" && c.MonitorInterval == 0) {
		return fmt.Errorf("router: monitor interval %v must be positive", c.MonitorInterval)
	}
	if c.MonitorTag != "" {
		if _, err := core.NewTagDescriptor(c.MonitorTag); err != nil {
			return fmt.Errorf("router: monitor tag: %w", err)
		}
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("router: log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// NewLogger returns the logger Config describes: slog to w in the given
// level and format.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("router: log format %q: want text or json", format)
}

func (c Config) connectorOptions() core.ConnectorOptions {
	o := core.DefaultConnectorOptions()
	o.URLs = c.Upstreams
	o.Name = c.Name
	o.Token = c.UpstreamToken
	o.TLS = c.UpstreamTLS
	o.Limits = c.Limits
	o.PingInterval, o.PingTimeout = c.PingInterval, c.PingTimeout
	o.CloseTimeout = c.CloseTimeout
	o.Logger = c.Logger
	return o
}

func (c Config) listenerOptions(addr string) core.ListenerOptions {
	o := core.DefaultListenerOptions()
	o.Addr = addr
	o.Name = c.Name
	o.TLS = c.TLS
	o.Limits = c.Limits
	o.PingInterval, o.PingTimeout = c.PingInterval, c.PingTimeout
	o.CloseTimeout = c.CloseTimeout
	o.MaxHandshakes = c.MaxHandshakes // 0: the listener's default
	o.Logger = c.Logger
	return o
}

// Router is a running router. Its methods are safe for concurrent use.
type Router struct {
	cfg Config
	log *slog.Logger
	ex  *core.Exchange
	// auth is the loaded AuthFile, nil without one.
	auth atomic.Pointer[Auth]

	mu        sync.Mutex
	state     routerState
	listeners []*core.Listener
	connector *core.Connector
	metrics   *http.Server
	metricsLn net.Listener
	// monitorStop stops the monitor (monitor.go); nil without one.
	monitorStop func()
	wg          sync.WaitGroup // the metrics server and the monitor
	closeOnce   sync.Once
}

type routerState int

const (
	stateNew routerState = iota
	stateRunning
	stateClosing
)

// New validates cfg and makes the router's exchange. Nothing listens
// until Start.
func New(cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		l, err := NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
		if err != nil {
			return nil, err
		}
		cfg.Logger = l
	}
	var auth *Auth
	if cfg.AuthFile != "" {
		a, err := LoadAuth(cfg.AuthFile)
		if err != nil {
			return nil, err
		}
		auth = a
	}
	ecfg := core.DefaultConfig()
	ecfg.Name = cfg.Name
	ecfg.RebalanceThreshold = cfg.RebalanceThreshold
	ecfg.Logger = cfg.Logger
	ex, err := core.NewExchange(ecfg)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r := &Router{cfg: cfg, log: cfg.Logger, ex: ex}
	if auth != nil {
		r.auth.Store(auth)
		r.log.Info("hakuban: auth file loaded", "file", cfg.AuthFile, "clients", auth.Clients())
	}
	return r, nil
}

// ReloadAuth reads Config.AuthFile again and applies it at once, to new
// and open links (core.Listener.Reauthorize): an open link whose token the
// file no longer accepts is closed with 4002 (auth refused); the contracts
// of an open link that its new permissions do not allow are revoked, as
// refusals; rights the file adds apply to what clients declare afterwards
// (and to everything after a reconnect). On error the router keeps the
// file it had and touches no link. Without an AuthFile it does nothing.
func (r *Router) ReloadAuth() error {
	if r.cfg.AuthFile == "" {
		return nil
	}
	a, err := LoadAuth(r.cfg.AuthFile)
	if err != nil {
		return err
	}
	r.auth.Store(a)
	r.mu.Lock()
	listeners := slices.Clone(r.listeners)
	r.mu.Unlock()
	closed, revoked := 0, 0
	for _, l := range listeners {
		c, n := l.Reauthorize()
		closed, revoked = closed+c, revoked+n
	}
	r.log.Info("hakuban: auth file reloaded", "file", r.cfg.AuthFile, "clients", a.Clients(),
		"links_closed", closed, "contracts_revoked", revoked)
	return nil
}

// authorize is the listeners' ListenerOptions.Authorize.
func (r *Router) authorize(token []byte) (*core.Permissions, error) {
	return r.auth.Load().Authorize(token)
}

// Exchange returns the router's exchange.
func (r *Router) Exchange() *core.Exchange { return r.ex }

// Start binds every listen address (and the metrics address), writes
// AddrFile, and starts the upstream connector. It fails, having undone
// what it started, when an address cannot be bound. ctx bounds nothing
// yet (binding does not block); it is there so that a slower start can
// honour it later. Stop the router with Close.
func (r *Router) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != stateNew {
		return errors.New("router: Start called twice or after Close")
	}
	r.state = stateRunning
	if r.cfg.AddrFile != "" {
		// A file left by a router that died must not name its dead
		// address while this one starts (or fails to).
		_ = os.Remove(r.cfg.AddrFile)
	}
	// On failure, undo what was started; the lock is held throughout, so
	// a concurrent Close waits and then finds nothing left to close.
	fail := func(err error) error {
		for _, l := range r.listeners {
			l.Close()
		}
		if r.connector != nil {
			r.connector.Close()
		}
		if r.monitorStop != nil {
			r.monitorStop()
		}
		if r.metrics != nil {
			r.metrics.Close()
		}
		r.wg.Wait()
		r.listeners, r.connector, r.metrics, r.metricsLn, r.monitorStop = nil, nil, nil, nil, nil
		r.state = stateClosing
		r.ex.Close()
		return err
	}
	for _, addr := range r.cfg.Listen {
		o := r.cfg.listenerOptions(addr)
		if r.auth.Load() != nil {
			o.Authorize = r.authorize
		}
		l, err := r.ex.Listen(o)
		if err != nil {
			return fail(fmt.Errorf("router: %w", err))
		}
		r.listeners = append(r.listeners, l)
	}
	if r.cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", r.cfg.MetricsAddr)
		if err != nil {
			return fail(fmt.Errorf("router: metrics: %w", err))
		}
		r.metricsLn = ln
		srv := &http.Server{
			Handler:           r.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
			// net/http's own errors go to the router's log, in its format.
			ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
		}
		r.metrics = srv
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = srv.Serve(ln)
		}()
		r.log.Info("hakuban: metrics listening", "addr", ln.Addr().String())
	}
	if len(r.cfg.Upstreams) > 0 {
		c, err := r.ex.Connect(r.cfg.connectorOptions())
		if err != nil {
			return fail(fmt.Errorf("router: %w", err))
		}
		r.connector = c
	}
	if r.cfg.MonitorTag != "" {
		if err := r.startMonitor(r.listeners, r.connector); err != nil {
			return fail(fmt.Errorf("router: monitor: %w", err))
		}
	}
	if r.cfg.AddrFile != "" {
		if err := writeAddrFile(r.cfg.AddrFile, r.listeners); err != nil {
			return fail(fmt.Errorf("router: addr file: %w", err))
		}
	}
	addrs := make([]string, len(r.listeners))
	for i, l := range r.listeners {
		addrs[i] = l.URL()
	}
	r.log.Info("hakuban: router started", "name", r.cfg.Name, "listen", strings.Join(addrs, ","), "upstreams", strings.Join(r.cfg.Upstreams, ","))
	return nil
}

// writeAddrFile writes the bound addresses through a temporary file and a
// rename, so a reader never sees half a file.
func writeAddrFile(path string, ls []*core.Listener) error {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Addr().String())
		b.WriteByte('\n')
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hakuban-addr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Addrs returns the bound listen addresses, in Config.Listen order.
func (r *Router) Addrs() []net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]net.Addr, len(r.listeners))
	for i, l := range r.listeners {
		out[i] = l.Addr()
	}
	return out
}

// URLs returns the ws:// URLs downstreams connect to.
func (r *Router) URLs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.listeners))
	for i, l := range r.listeners {
		out[i] = l.URL()
	}
	return out
}

// MetricsAddr returns the bound address of the HTTP endpoints, or nil.
func (r *Router) MetricsAddr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.metricsLn == nil {
		return nil
	}
	return r.metricsLn.Addr()
}

// Upstream returns the upstream connector's status; ok is false for a
// router without upstreams.
func (r *Router) Upstream() (st core.ConnectorStatus, ok bool) {
	r.mu.Lock()
	c := r.connector
	r.mu.Unlock()
	if c == nil {
		return core.ConnectorStatus{}, false
	}
	return c.Status(), true
}

// Ready returns nil when the router serves: it is listening and, when it
// has upstreams, connected to one. Otherwise the error says why.
func (r *Router) Ready() error {
	r.mu.Lock()
	state, c := r.state, r.connector
	r.mu.Unlock()
	switch state {
	case stateNew:
		return errors.New("not started")
	case stateClosing:
		return errors.New("shutting down")
	}
	if c != nil {
		if st := c.Status(); st.State != core.ConnectorConnected {
			if st.LastError != nil {
				return fmt.Errorf("upstream %s: %v", st.State, st.LastError)
			}
			return fmt.Errorf("upstream %s", st.State)
		}
	}
	return nil
}

// Close shuts the router down gracefully: it stops accepting, closes every
// link in parallel (close code 4004, going away; each within
// CloseTimeout), disconnects from the upstream, stops the monitor and the
// HTTP endpoints, removes AddrFile and closes the exchange. It is
// idempotent.
func (r *Router) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.state = stateClosing
		listeners, connector, metrics, monitorStop := r.listeners, r.connector, r.metrics, r.monitorStop
		r.mu.Unlock()
		r.log.Info("hakuban: router shutting down")
		if r.cfg.AddrFile != "" && len(listeners) > 0 {
			// Stop advertising before draining: the listeners stop
			// accepting now, and a second signal may end the process
			// before the links are closed.
			os.Remove(r.cfg.AddrFile)
		}
		var wg sync.WaitGroup
		for _, l := range listeners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.Close()
			}()
		}
		if connector != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				connector.Close()
			}()
		}
		wg.Wait()
		if monitorStop != nil {
			monitorStop()
		}
		if metrics != nil {
			// A scrape under way may finish (briefly: the links are
			// closed already).
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if metrics.Shutdown(ctx) != nil {
				metrics.Close()
			}
			cancel()
		}
		r.wg.Wait()
		r.ex.Close()
		r.log.Info("hakuban: router stopped")
	})
	return nil
}
