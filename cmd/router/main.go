// Command hakuban-router is hakuban's standalone router: an exchange with
// no contracts of its own that downstream exchanges connect to, optionally
// linked to an upstream router (SPEC §3.4). All the logic is in package
// router; this file parses flags and handles signals.
//
// Every flag has an environment default (HAKUBAN_LISTEN for --listen, and
// so on; see --help). SIGINT or SIGTERM shut down gracefully: stop
// accepting, close every link in parallel within --close-timeout, exit 0.
// A second signal exits at once with status 1. SIGHUP reloads --auth-file
// and applies it to open links too (docs/router.md, "Reloading").
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hakuban/hakuban/core"
	"github.com/hakuban/hakuban/router"
)

// version is the router's version; release builds set it with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "hakuban-router:", err)
		return 2
	}
	if o.version {
		fmt.Fprintf(stdout, "hakuban-router %s (protocol %s, %s)\n", versionString(), core.ProtocolVersion, runtime.Version())
		return 0
	}
	log, err := router.NewLogger(stderr, o.cfg.LogLevel, o.cfg.LogFormat)
	if err != nil {
		fmt.Fprintln(stderr, "hakuban-router:", err)
		return 2
	}
	o.cfg.Logger = log
	r, err := router.New(o.cfg)
	if err != nil {
		log.Error("hakuban: invalid configuration", "error", err)
		return 2
	}
	// Subscribe before starting, so that a signal sent as soon as the
	// address file appears is not lost.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	if err := r.Start(context.Background()); err != nil {
		log.Error("hakuban: router failed to start", "error", err)
		r.Close()
		return 1
	}
	var sig os.Signal
	for sig == nil {
		select {
		case sig = <-sigs:
		case <-hups:
			if o.cfg.AuthFile == "" {
				log.Info("hakuban: SIGHUP ignored: no --auth-file to reload")
			} else if err := r.ReloadAuth(); err != nil {
				log.Error("hakuban: auth file not reloaded, keeping the previous one", "error", err)
			}
		}
	}
	log.Info("hakuban: shutting down gracefully; signal again to exit at once", "signal", sig.String())
	done := make(chan struct{})
	go func() {
		r.Close()
		close(done)
	}()
	// Close is bounded by the links' close timeout; the extra margin
	// only guards against a bug hanging the shutdown.
	timer := time.NewTimer(o.cfg.CloseTimeout + 10*time.Second)
	defer timer.Stop()
	select {
	case <-done:
		return 0
	case sig := <-sigs:
		log.Warn("hakuban: second signal, exiting at once", "signal", sig.String())
	case <-timer.C:
		log.Error("hakuban: shutdown did not finish in time, exiting")
	}
	if o.cfg.AddrFile != "" {
		os.Remove(o.cfg.AddrFile) // Close may not have got that far
	}
	return 1
}

type options struct {
	cfg     router.Config
	version bool
}

// parseFlags reads the flags; each defaults to its environment variable,
// then to router.DefaultConfig.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	o := options{cfg: router.DefaultConfig()}
	c := &o.cfg
	fs := flag.NewFlagSet("hakuban-router", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var errs []error
	// envErrs: environment values that do not parse, by flag; they count
	// only when the command line does not set that flag.
	envErrs := map[string]error{}
	envInt := func(flagName, name string, def int) int {
		s := getenv(name)
		if s == "" {
			return def
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			envErrs[flagName] = fmt.Errorf("$%s: %w", name, err)
		}
		return v
	}
	envDuration := func(flagName, name string, def time.Duration) time.Duration {
		s := getenv(name)
		if s == "" {
			return def
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			envErrs[flagName] = fmt.Errorf("$%s: %w", name, err)
		}
		return v
	}

	listen := &listFlag{values: splitList(env("HAKUBAN_LISTEN", strings.Join(c.Listen, ",")))}
	fs.Var(listen, "listen", "`address` (host:port, port 0 for any) to accept links on; repeatable or comma-separated ($HAKUBAN_LISTEN)")
	upstream := &listFlag{values: splitList(getenv("HAKUBAN_UPSTREAM"))}
	fs.Var(upstream, "upstream", "upstream router `URLs` (ws:// or wss://), comma-separated, in order of preference ($HAKUBAN_UPSTREAM)")
	fs.StringVar(&c.Name, "name", env("HAKUBAN_NAME", c.Name), "the router's `name`, shown to its peers ($HAKUBAN_NAME)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", env("HAKUBAN_METRICS_ADDR", ""), "`address` for /healthz, /readyz, /metrics and /snapshot; empty for none ($HAKUBAN_METRICS_ADDR)")
	fs.StringVar(&c.AddrFile, "addr-file", env("HAKUBAN_ADDR_FILE", ""), "write the bound listen addresses to this `file`, one per line ($HAKUBAN_ADDR_FILE)")
	threshold := env("HAKUBAN_REBALANCE_THRESHOLD", strconv.FormatFloat(c.RebalanceThreshold, 'f', -1, 64))
	fs.Func("rebalance-threshold", "move objects between exposers while their loads differ by more than this `fraction` (default "+threshold+", $HAKUBAN_REBALANCE_THRESHOLD)", func(s string) error {
		threshold = s
		return nil
	})
	fs.StringVar(&c.LogLevel, "log-level", env("HAKUBAN_LOG_LEVEL", c.LogLevel), "`level`: debug, info, warn or error ($HAKUBAN_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("HAKUBAN_LOG_FORMAT", c.LogFormat), "`format` of the logs on stderr: text or json ($HAKUBAN_LOG_FORMAT)")
	fs.IntVar(&c.Limits.MaxFrame, "max-frame", envInt("max-frame", "HAKUBAN_MAX_FRAME", c.Limits.MaxFrame), "largest frame accepted, `bytes` ($HAKUBAN_MAX_FRAME)")
	fs.IntVar(&c.Limits.MaxStateData, "max-state", envInt("max-state", "HAKUBAN_MAX_STATE", c.Limits.MaxStateData), "largest state accepted, `bytes`; --max-frame must exceed it by 64 KiB ($HAKUBAN_MAX_STATE)")
	fs.IntVar(&c.Limits.MaxDescriptor, "max-descriptor", envInt("max-descriptor", "HAKUBAN_MAX_DESCRIPTOR", c.Limits.MaxDescriptor), "largest descriptor accepted, `bytes` ($HAKUBAN_MAX_DESCRIPTOR)")
	fs.IntVar(&c.Limits.MaxObjects, "max-objects", envInt("max-objects", "HAKUBAN_MAX_OBJECTS", c.Limits.MaxObjects), "most objects one peer may declare at once, `count` ($HAKUBAN_MAX_OBJECTS)")
	fs.IntVar(&c.Limits.MaxTags, "max-tags", envInt("max-tags", "HAKUBAN_MAX_TAGS", c.Limits.MaxTags), "most tags one peer may declare at once, `count` ($HAKUBAN_MAX_TAGS)")
	fs.DurationVar(&c.PingInterval, "ping-interval", envDuration("ping-interval", "HAKUBAN_PING_INTERVAL", 0), "time between pings on every link (default 4s, $HAKUBAN_PING_INTERVAL)")
	fs.DurationVar(&c.PingTimeout, "ping-timeout", envDuration("ping-timeout", "HAKUBAN_PING_TIMEOUT", 0), "a link whose pong takes longer is dead (default 5s, $HAKUBAN_PING_TIMEOUT)")
	fs.IntVar(&c.MaxHandshakes, "max-handshakes", envInt("max-handshakes", "HAKUBAN_MAX_HANDSHAKES", c.MaxHandshakes), "most connections per listen address still in their handshake; more get HTTP 503 (default 1024, $HAKUBAN_MAX_HANDSHAKES)")
	fs.DurationVar(&c.CloseTimeout, "close-timeout", envDuration("close-timeout", "HAKUBAN_CLOSE_TIMEOUT", c.CloseTimeout), "bound on closing each link at shutdown ($HAKUBAN_CLOSE_TIMEOUT)")
	fs.StringVar(&c.MonitorTag, "monitor-tag", env("HAKUBAN_MONITOR_TAG", ""), "publish the router's own state as an object with this `tag`, for clients to observe ($HAKUBAN_MONITOR_TAG)")
	fs.DurationVar(&c.MonitorInterval, "monitor-interval", envDuration("monitor-interval", "HAKUBAN_MONITOR_INTERVAL", c.MonitorInterval), "refresh period of the monitor object while observed ($HAKUBAN_MONITOR_INTERVAL)")
	var serverTLS, upstreamTLS router.TLSFiles
	fs.StringVar(&serverTLS.Cert, "tls-cert", env("HAKUBAN_TLS_CERT", ""), "PEM certificate `file`: serve wss:// instead of ws:// ($HAKUBAN_TLS_CERT)")
	fs.StringVar(&serverTLS.Key, "tls-key", env("HAKUBAN_TLS_KEY", ""), "PEM private key `file` for --tls-cert ($HAKUBAN_TLS_KEY)")
	fs.StringVar(&serverTLS.CA, "tls-client-ca", env("HAKUBAN_TLS_CLIENT_CA", ""), "PEM CA bundle `file`: require client certificates signed by it (mutual TLS) ($HAKUBAN_TLS_CLIENT_CA)")
	fs.StringVar(&upstreamTLS.CA, "upstream-ca", env("HAKUBAN_UPSTREAM_CA", ""), "PEM CA bundle `file` to verify wss:// upstreams (default: system roots) ($HAKUBAN_UPSTREAM_CA)")
	fs.StringVar(&upstreamTLS.Cert, "upstream-cert", env("HAKUBAN_UPSTREAM_CERT", ""), "PEM client certificate `file` for wss:// upstreams ($HAKUBAN_UPSTREAM_CERT)")
	fs.StringVar(&upstreamTLS.Key, "upstream-key", env("HAKUBAN_UPSTREAM_KEY", ""), "PEM private key `file` for --upstream-cert ($HAKUBAN_UPSTREAM_KEY)")
	fs.StringVar(&c.AuthFile, "auth-file", env("HAKUBAN_AUTH_FILE", ""), "JSON `file` of client tokens and what each may observe and expose (docs/router.md); reloaded on SIGHUP ($HAKUBAN_AUTH_FILE)")
	tokenFile := env("HAKUBAN_UPSTREAM_TOKEN_FILE", "")
	fs.StringVar(&tokenFile, "upstream-token-file", tokenFile, "`file` whose content is the token sent to the upstream (a file, so the token is not visible in ps) ($HAKUBAN_UPSTREAM_TOKEN_FILE)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")

	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { delete(envErrs, f.Name) })
	for _, f := range slices.Sorted(maps.Keys(envErrs)) {
		errs = append(errs, envErrs[f])
	}
	if !serverTLS.IsZero() {
		cfg, err := serverTLS.ServerConfig()
		if err != nil {
			errs = append(errs, err)
		}
		c.TLS = cfg
	}
	if !upstreamTLS.IsZero() {
		cfg, err := upstreamTLS.ClientConfig()
		if err != nil {
			errs = append(errs, err)
		}
		c.UpstreamTLS = cfg
	}
	if tokenFile != "" {
		token, err := os.ReadFile(tokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("upstream token: %w", err))
		}
		c.UpstreamToken = bytes.TrimSpace(token)
	}
	// With --version nothing else is used: no error stops it.
	if len(errs) > 0 && !o.version {
		return o, errors.Join(errs...)
	}
	var err error
	if c.RebalanceThreshold, err = strconv.ParseFloat(threshold, 64); err != nil && !o.version {
		return o, fmt.Errorf("rebalance threshold %q: %w", threshold, err)
	}
	c.Listen, c.Upstreams = listen.values, upstream.values
	return o, nil
}

// listFlag is a repeatable, comma-separated flag; its first use on the
// command line replaces the default from the environment.
type listFlag struct {
	values []string
	set    bool
}

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.values, ",")
}

func (l *listFlag) Set(s string) error {
	if !l.set {
		l.values, l.set = nil, true
	}
	l.values = append(l.values, splitList(s)...)
	return nil
}

func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// versionString is the version set at link time, or the module version
// when built with go install.
func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}
