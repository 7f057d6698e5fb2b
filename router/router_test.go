package router_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core"
	"github.com/hakuban/hakuban/router"
)

// pollFor polls cond until it holds, failing the test after timeout.
func pollFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testConfig(t *testing.T) router.Config {
	cfg := router.DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.CloseTimeout = time.Second
	cfg.PingInterval, cfg.PingTimeout = 100*time.Millisecond, time.Second
	cfg.Logger = slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

func startRouter(t *testing.T, cfg router.Config) *router.Router {
	t.Helper()
	r, err := router.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// get fetches url without keeping the connection alive.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func exchange(t *testing.T, name string) *core.Exchange {
	t.Helper()
	cfg := core.DefaultConfig()
	cfg.Name = name
	ex, err := core.NewExchange(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func connect(t *testing.T, ex *core.Exchange, urls ...string) *core.Connector {
	t.Helper()
	return connectWithToken(t, ex, "", urls...)
}

func waitConnected(t *testing.T, c *core.Connector) {
	t.Helper()
	pollFor(t, 10*time.Second, "connected", func() bool { return c.Status().State == core.ConnectorConnected })
}

func TestConfigValidate(t *testing.T) {
	if err := router.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*router.Config){
		"no listen":        func(c *router.Config) { c.Listen = nil },
		"bad listen":       func(c *router.Config) { c.Listen = []string{"nowhere"} },
		"bad metrics":      func(c *router.Config) { c.MetricsAddr = "x" },
		"bad upstream":     func(c *router.Config) { c.Upstreams = []string{"http://x"} },
		"threshold":        func(c *router.Config) { c.RebalanceThreshold = 1.5 },
		"log level":        func(c *router.Config) { c.LogLevel = "loud" },
		"log format":       func(c *router.Config) { c.LogFormat = "xml" },
		"limits":           func(c *router.Config) { c.Limits.MaxFrame = 1 },
		"monitor interval": func(c *router.Config) { c.MonitorTag, c.MonitorInterval = "routers", 0 },
		"monitor tag":      func(c *router.Config) { c.MonitorTag = "bad\xff" },
		"max handshakes":   func(c *router.Config) { c.MaxHandshakes = -1 },
	} {
		cfg := router.DefaultConfig()
		change(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRouterEndpoints(t *testing.T) {
	cfg := testConfig(t)
	cfg.Name = "r1"
	cfg.AddrFile = filepath.Join(t.TempDir(), "addr")
	r := startRouter(t, cfg)

	b, err := os.ReadFile(cfg.AddrFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(string(b))
	if addr != r.Addrs()[0].String() || strings.HasSuffix(addr, ":0") {
		t.Fatalf("addr file says %q, router bound %v", addr, r.Addrs())
	}
	base := "http://" + r.MetricsAddr().String()
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %q", code, body)
	}

	// A leaf connects; it shows up in metrics and snapshot.
	leaf := exchange(t, "leaf")
	waitConnected(t, connect(t, leaf, "ws://"+addr+"/"))
	obs, err := leaf.ObserveObject(core.MustObjectDescriptor("wanted"))
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	var metrics string
	pollFor(t, 5*time.Second, "metrics show the link and the contract", func() bool {
		_, metrics = get(t, base+"/metrics")
		return strings.Contains(metrics, `hakuban_links{role="downstream"} 1`) &&
			strings.Contains(metrics, `hakuban_contracts{kind="object_observe"} 1`)
	})
	for _, want := range []string{
		"# TYPE hakuban_up gauge\nhakuban_up 1\n",
		"hakuban_downstream_links_accepted_total 1\n",
		`hakuban_link_received_bytes_total{role="downstream",peer="leaf",remote="127.0.0.1:`,
		"# TYPE hakuban_elections_total counter\n",
		`hakuban_limit{name="max_frame"} 16842752`,
		"hakuban_objects 1\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	code, body := get(t, base+"/snapshot")
	var snap struct {
		Name    string
		Objects []struct{ Observed bool }
		Links   []struct{ Peer, Role string }
	}
	if err := json.Unmarshal([]byte(body), &snap); code != 200 || err != nil {
		t.Fatalf("/snapshot: %d %v: %s", code, err, body)
	}
	if snap.Name != "r1" || len(snap.Objects) != 1 || !snap.Objects[0].Observed || len(snap.Links) != 1 || snap.Links[0].Peer != "leaf" {
		t.Errorf("/snapshot: %+v", snap)
	}

	r.Close()
	if _, err := os.Stat(cfg.AddrFile); !os.IsNotExist(err) {
		t.Errorf("addr file left after Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", r.MetricsAddr().String(), time.Second); err == nil {
		t.Error("metrics endpoint still answers after Close")
	}
}

func TestRouterReadyWaitsForUpstream(t *testing.T) {
	root := startRouter(t, testConfig(t))
	// A free address, where the upstream will appear later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()
	cfg := testConfig(t)
	cfg.Upstreams = []string{"ws://" + free + "/", root.URLs()[0]}
	r := startRouter(t, cfg)
	base := "http://" + r.MetricsAddr().String()
	// The first upstream is down: the router fails over to the second.
	pollFor(t, 10*time.Second, "ready", func() bool { code, _ := get(t, base+"/readyz"); return code == 200 })
	st, ok := r.Upstream()
	if !ok || st.URL != root.URLs()[0] || st.Peer != "router" {
		t.Errorf("upstream status %+v", st)
	}
	root.Close()
	pollFor(t, 10*time.Second, "not ready", func() bool {
		code, body := get(t, base+"/readyz")
		return code == 503 && strings.Contains(body, "upstream")
	})
}

func TestRouterStartFailsOnBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.Listen = []string{"127.0.0.1:0", ln.Addr().String()}
	r, err := router.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Start(context.Background()); err == nil {
		t.Fatal("Start on a busy address succeeded")
	}
	if err := r.Ready(); err == nil {
		t.Error("a router that failed to start says it is ready")
	}
}

// TestStateThroughStackedRouters runs a state from an exposer on one leaf
// to an observer on another through three stacked routers, and a second
// object between two leaves of the same router.
func TestStateThroughStackedRouters(t *testing.T) {
	root := startRouter(t, testConfig(t))
	mid := testConfig(t)
	mid.Name, mid.Upstreams = "mid", root.URLs()
	rMid := startRouter(t, mid)
	edge := testConfig(t)
	edge.Name, edge.Upstreams = "edge", rMid.URLs()
	rEdge := startRouter(t, edge)
	for _, r := range []*router.Router{rMid, rEdge} {
		pollFor(t, 10*time.Second, "stack connected", func() bool { return r.Ready() == nil })
	}
	exposer, observer, neighbour := exchange(t, "exposer"), exchange(t, "observer"), exchange(t, "neighbour")
	waitConnected(t, connect(t, exposer, rEdge.URLs()...))
	waitConnected(t, connect(t, observer, root.URLs()...))
	waitConnected(t, connect(t, neighbour, rEdge.URLs()...))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, o := range []struct {
		name   string
		reader *core.Exchange
	}{{"via three routers", observer}, {"via one router", neighbour}} {
		d := core.MustObjectDescriptor(map[string]any{"route": o.name})
		exp, err := exposer.ExposeObject(d, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer exp.Close()
		obs, err := o.reader.ObserveObject(d)
		if err != nil {
			t.Fatal(err)
		}
		defer obs.Close()
		sink, err := exp.Next(ctx)
		if err != nil {
			t.Fatalf("%s: no assignment: %v", o.name, err)
		}
		if err := sink.Send(core.ObjectState{Data: []byte(o.name)}); err != nil {
			t.Fatal(err)
		}
		for {
			st, err := obs.Next(ctx)
			if err != nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			if string(st.Data) == o.name && st.Synchronized {
				break
			}
		}
	}
}

func TestRouterMonitorTag(t *testing.T) {
	root := testConfig(t)
	root.Name, root.MonitorTag, root.MonitorInterval = "root", "routers", 20*time.Millisecond
	rRoot := startRouter(t, root)
	edge := testConfig(t)
	edge.Name, edge.MonitorTag, edge.Upstreams = "edge", "routers", rRoot.URLs()
	rEdge := startRouter(t, edge)
	pollFor(t, 10*time.Second, "edge connected", func() bool { return rEdge.Ready() == nil })

	// Nobody observes: the monitor produces nothing.
	if n := rRoot.Exchange().Snapshot().Counters.States; n != 0 {
		t.Errorf("root published %d states while unobserved", n)
	}

	// A client on the root watches every router of the tree with an
	// ordinary tag contract.
	client := exchange(t, "client")
	waitConnected(t, connect(t, client, rRoot.URLs()...))
	obs, err := client.ObserveTag(core.MustTagDescriptor("routers"))
	if err != nil {
		t.Fatal(err)
	}
	defer obs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[string]router.MonitorValue{}
	for len(seen) < 2 || seen["root"].Links == nil || len(seen["root"].Links) < 2 {
		ev, err := obs.Next(ctx)
		if err != nil {
			t.Fatalf("routers seen %v: %v", len(seen), err)
		}
		if ev.Gone || ev.State.Data == nil {
			continue
		}
		var v router.MonitorValue
		if _, err := ev.State.DecodeJSON(&v); err != nil {
			t.Fatal(err)
		}
		seen[v.Router] = v
	}
	if up := seen["edge"].Upstream; up == nil || up.State != "connected" || up.Peer != "root" {
		t.Errorf("edge's monitor: upstream %+v", up)
	}
	if seen["root"].Upstream != nil || len(seen["root"].Listen) != 1 {
		t.Errorf("root's monitor: %+v", seen["root"])
	}
}
