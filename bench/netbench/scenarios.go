package main

// The driver side of each scenario: it starts the router and the peer
// processes, steps them through the run and turns their reports into
// metrics. Every repetition starts fresh processes and stops them all
// (defer) whatever happens.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hakuban/hakuban/bench/internal/harness"
)

// run is one repetition of one scenario.
type run struct {
	cfg  *config
	tag  string // scenario and repetition, for file names
	kids []*harness.Child
}

// metrics of one repetition, in display units (see metricDefs).
type metrics map[string]float64

func (r *run) role(name, role string, a Args) (*harness.Child, error) {
	if a.Name == "" {
		a.Name = name
	}
	if a.Timeout == 0 {
		a.Timeout = r.cfg.timeout
	}
	if a.MaxLife == 0 {
		a.MaxLife = r.cfg.maxLife
	}
	if r.cfg.profDir != "" {
		a.CPUProfile = filepath.Join(r.cfg.profDir, r.tag+"-"+name+".prof")
	}
	c, err := harness.StartRole(name, role, a)
	if err != nil {
		return nil, err
	}
	r.kids = append(r.kids, c)
	return c, nil
}

// close stops every process of the run: gracefully (profiles are
// written), SIGKILL after a grace period.
func (r *run) close() { harness.StopAll(r.kids, 5*time.Second) }

// floor starts a raw TCP floor's process in this run (harness.Starter).
func (r *run) floor(name, role string, t harness.TCP) (*harness.Child, error) {
	return r.role(name, role, Args{Floor: t})
}

// routerProc is a running router.
type routerProc struct {
	c        *harness.Child
	addr     string // host:port
	url      string // ws://host:port/
	metrics  string // host:port of /metrics, "" for none
	addrFile string
	backAt   time.Time // when its address file appeared
}

var routerStarts int

// startRouter starts a router on listen ("127.0.0.1:0" for any port): the
// hakuban-router binary, or this binary in the router role when
// profiling. It returns once the router wrote its address file.
func (r *run) startRouter(listen string, maxObjects int, withMetrics bool) (*routerProc, error) {
	routerStarts++
	p := &routerProc{addrFile: filepath.Join(r.cfg.tmp, fmt.Sprintf("addr-%d", routerStarts))}
	if withMetrics {
		m, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p.metrics = m
	}
	var err error
	if r.cfg.inproc {
		p.c, err = r.role(fmt.Sprintf("router%d", routerStarts), "router", Args{
			Listen: listen, AddrFile: p.addrFile, MetricsAddr: p.metrics, MaxObjects: maxObjects,
		})
	} else {
		argv := []string{r.cfg.routerBin, "--listen", listen, "--addr-file", p.addrFile, "--log-level", "warn"}
		if p.metrics != "" {
			argv = append(argv, "--metrics-addr", p.metrics)
		}
		if maxObjects > 0 {
			argv = append(argv, "--max-objects", strconv.Itoa(maxObjects))
		}
		p.c, err = harness.StartChild(fmt.Sprintf("router%d", routerStarts), argv, nil)
		if err == nil {
			p.c.Term = true
			r.kids = append(r.kids, p.c)
		}
	}
	if err != nil {
		return nil, err
	}
	// Poll for the address file: its appearance is "the router is back".
	deadline := time.Now().Add(r.cfg.timeout)
	for {
		b, err := os.ReadFile(p.addrFile)
		if s := strings.TrimSpace(string(b)); err == nil && s != "" {
			p.backAt = time.Now()
			p.addr = strings.Split(s, "\n")[0]
			p.url = "ws://" + p.addr + "/"
			return p, nil
		}
		select {
		case <-p.c.Done():
			return nil, fmt.Errorf("router exited before listening: %v", p.c.Wait())
		default:
		}
		if time.Now().After(deadline) {
			return nil, errors.New("router wrote no address file in time")
		}
		time.Sleep(time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrape reads the router's /metrics: hakuban_states_total (states its
// exchange applied) and the frames it received from and sent to its
// downstreams.
func (p *routerProc) scrape() (counters, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return counters{}, err
	}
	defer resp.Body.Close()
	c := counters{at: time.Now()}
	want := map[string]*float64{
		"hakuban_states_total":                     &c.states,
		"hakuban_downstream_received_frames_total": &c.framesIn,
		"hakuban_downstream_sent_frames_total":     &c.framesOut,
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if dst := want[name]; ok && dst != nil {
			if *dst, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				return c, err
			}
			delete(want, name)
		}
	}
	if len(want) > 0 {
		return c, fmt.Errorf("router /metrics lacks %v", want)
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	resp, err = cl.Get("http://" + p.metrics + "/snapshot")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	var snap struct {
		Objects []struct {
			Version []int64 `json:"version"`
		} `json:"objects"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return c, fmt.Errorf("router /snapshot: %w", err)
	}
	for _, o := range snap.Objects {
		if len(o.Version) > 0 {
			c.versions += float64(o.Version[0])
		}
	}
	return c, nil
}

type counters struct {
	at                          time.Time
	states, framesIn, framesOut float64
	// versions sums the first element of every object's version in the
	// router's /snapshot: with versions 1, 2, 3, ... its growth is the
	// number of versions the router's state moved through (latest wins
	// skips some of them on the way in).
	versions float64
}

// rates returns the per-second rates from c0 to c1.
func rates(c0, c1 counters) (states, versions, framesIn, framesOut float64) {
	dt := c1.at.Sub(c0.at).Seconds()
	return (c1.states - c0.states) / dt, (c1.versions - c0.versions) / dt,
		(c1.framesIn - c0.framesIn) / dt, (c1.framesOut - c0.framesOut) / dt
}

func us(ns int64) float64 { return float64(ns) / 1e3 }

// ---- 1. latency ----

func scenarioLatency(r *run) (metrics, error) {
	cfg := r.cfg
	n := int(cfg.latDuration / cfg.latInterval)
	warm := int(cfg.latWarmup / cfg.latInterval)
	m := metrics{}

	// The floors, paced the same way: a raw TCP hop between two
	// processes, then a raw TCP relay chain of three (two hops, the shape
	// of the system measured).
	floor := harness.TCP{N: n, Warmup: warm, Size: 64, Interval: cfg.latInterval, Timeout: cfg.timeout}
	tcp, err := harness.LatencyFloor(r.floor, floor, 0)
	if err != nil {
		return nil, fmt.Errorf("raw TCP hop: %w", err)
	}
	chain, err := harness.LatencyFloor(r.floor, floor, 1)
	if err != nil {
		return nil, fmt.Errorf("raw TCP relay chain: %w", err)
	}
	m["tcp_p50"], m["tcp_p99"] = us(tcp.P50), us(tcp.P99)
	m["chain_p50"], m["chain_p90"], m["chain_p99"], m["chain_p999"] = us(chain.P50), us(chain.P90), us(chain.P99), us(chain.P999)

	// Exposer → router → observer, the observer taking states with Next,
	// then on the same router with the observer taking them in its
	// contract's SetNotify hook (no goroutine hand-off per state).
	rt, err := r.startRouter("127.0.0.1:0", 0, false)
	if err != nil {
		return nil, err
	}
	lat, err := latencyThrough(r, rt, n, warm, false)
	if err != nil {
		return nil, err
	}
	m["lat_p50"], m["lat_p90"], m["lat_p99"], m["lat_p999"] = us(lat.P50), us(lat.P90), us(lat.P99), us(lat.P999)
	m["lat_delivered"] = 100 * float64(lat.Count) / float64(max(1, lat.Expected))
	hook, err := latencyThrough(r, rt, n, warm, true)
	if err != nil {
		return nil, fmt.Errorf("observer in the SetNotify hook: %w", err)
	}
	m["hook_p50"], m["hook_p99"] = us(hook.P50), us(hook.P99)
	return m, nil
}

// latencyThrough runs one paced exposer → router → observer measurement:
// n states, the first warm left out; notify makes the observer take them
// in its SetNotify hook.
func latencyThrough(r *run, rt *routerProc, n, warm int, notify bool) (harness.LatStats, error) {
	cfg := r.cfg
	var lat harness.LatStats
	suffix := ""
	if notify {
		suffix = "-hook"
	}
	obs, err := r.role("observer"+suffix, "lat-observer", Args{URL: rt.url, N: n, Warmup: warm, Notify: notify})
	if err != nil {
		return lat, err
	}
	if err := obs.Expect("ready", cfg.timeout, nil); err != nil {
		return lat, err
	}
	exp, err := r.role("exposer"+suffix, "lat-exposer", Args{URL: rt.url, N: n, Interval: cfg.latInterval, Size: 64, Notify: notify})
	if err != nil {
		return lat, err
	}
	if err := exp.Expect("ready", cfg.timeout, nil); err != nil {
		return lat, err
	}
	if err := obs.Expect("result", time.Duration(n)*cfg.latInterval+cfg.timeout, &lat); err != nil {
		return lat, err
	}
	if err := exp.Expect("done", cfg.timeout, nil); err != nil {
		return lat, err
	}
	return lat, nil
}

// ---- 2. absorption ----

// absorb: procs exposer processes × perProc exchanges (one object each),
// one observer process following every object. Two phases on the same
// processes: the exposers send in a tight loop ("go"), then the same
// loop yielding after each Send ("go-yield").
func absorb(r *run, procs, perProc int, prefix string) (metrics, error) {
	cfg := r.cfg
	rt, err := r.startRouter("127.0.0.1:0", 0, true)
	if err != nil {
		return nil, err
	}
	objects := procs * perProc
	obs, err := r.role("observer", "abs-observer", Args{URL: rt.url, Objects: objects})
	if err != nil {
		return nil, err
	}
	if err := obs.Expect("ready", cfg.timeout, nil); err != nil {
		return nil, err
	}
	exps := make([]*harness.Child, procs)
	for k := range procs {
		exps[k], err = r.role(fmt.Sprintf("exposer%d", k), "abs-exposer", Args{
			URL: rt.url, N: perProc, First: k * perProc, Size: 64, Duration: cfg.absDuration,
		})
		if err != nil {
			return nil, err
		}
	}
	if err := harness.ExpectAll(exps, "ready", cfg.timeout); err != nil {
		return nil, err
	}
	m := metrics{}
	for _, phase := range []struct{ cmd, suffix string }{{"go", ""}, {"go-yield", "_yield"}} {
		pm, err := absorbPhase(r, rt, obs, exps, phase.cmd)
		if err != nil {
			return nil, fmt.Errorf("%s phase: %w", phase.cmd, err)
		}
		for k, v := range pm {
			m[prefix+"_"+k+phase.suffix] = v
		}
	}
	if err := obs.Send("stop"); err != nil {
		return nil, err
	}
	return m, obs.Expect("result", cfg.timeout, nil)
}

// absorbPhase runs one back-to-back phase. Figures, per second: router
// (states the router's exchange applied: distinct versions that reached
// it), routerVersions (how far the router's versions advanced: versions
// absorbed, latest wins), routerIn and routerOut (frames from and to its
// downstreams), sent (the exposers' Send() calls), observer (states the
// observer received) and observerVersions (how far its versions advanced).
func absorbPhase(r *run, rt *routerProc, obs *harness.Child, exps []*harness.Child, cmd string) (metrics, error) {
	cfg := r.cfg
	count := func() (absResult, time.Time, error) {
		if err := obs.Send("count"); err != nil {
			return absResult{}, time.Time{}, err
		}
		var res absResult
		err := obs.Expect("count", cfg.timeout, &res)
		return res, time.Now(), err
	}
	for _, e := range exps {
		if err := e.Send(cmd); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	// Count over the steady middle of the run: skip the first sixth (0.5 s
	// of 3 s) and the last twelfth (0.25 s).
	time.Sleep(time.Until(start.Add(cfg.absDuration / 6)))
	c0, err := rt.scrape()
	if err != nil {
		return nil, err
	}
	o0, ot0, err := count()
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Until(start.Add(cfg.absDuration * 11 / 12)))
	c1, err := rt.scrape()
	if err != nil {
		return nil, err
	}
	o1, ot1, err := count()
	if err != nil {
		return nil, err
	}
	if r.cfg.verbose {
		fmt.Fprintf(os.Stderr, "netbench: %s %s: router %+v → %+v; observer %+v → %+v\n", r.tag, cmd, c0, c1, o0, o1)
	}
	var n float64
	var elapsed time.Duration
	for _, e := range exps {
		var d absDone
		if err := e.Expect("done", cfg.absDuration+cfg.timeout, &d); err != nil {
			return nil, err
		}
		if d.Errors > 0 {
			return nil, fmt.Errorf("%s: %d sends failed", e.Name, d.Errors)
		}
		n += float64(d.Sent)
		elapsed = max(elapsed, d.Elapsed)
	}
	states, versions, in, out := rates(c0, c1)
	odt := ot1.Sub(ot0).Seconds()
	return metrics{
		"router": states, "routerVersions": versions, "routerIn": in, "routerOut": out,
		"sent":     n / elapsed.Seconds(),
		"observer": float64(o1.Received-o0.Received) / odt, "observerVersions": float64(o1.LastVersions-o0.LastVersions) / odt,
	}, nil
}

func scenarioAbsorb1(r *run) (metrics, error) { return absorb(r, 1, 1, "abs1") }

func scenarioAbsorbMany(r *run) (metrics, error) {
	return absorb(r, r.cfg.absProcs, r.cfg.absExposers/r.cfg.absProcs, "absN")
}

// ---- 3. fan-out ----

func scenarioFanout(r *run) (metrics, error) {
	cfg := r.cfg
	versions := 1 + int(cfg.fanDuration/cfg.fanInterval) // version 1 is the warm-up
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	// The floor: the same fan-out with raw TCP and a relay process
	// (latest wins).
	ff, fl, floorDelivered, err := harness.FanFloor(r.floor, harness.TCP{
		N: versions, Size: 64, Interval: cfg.fanInterval, Conns: cfg.fanObservers, Timeout: cfg.timeout,
	}, cfg.fanProcs)
	if err != nil {
		return nil, fmt.Errorf("raw TCP fan-out: %w", err)
	}
	m := metrics{
		"fanfloor_first_p50": ms(ff.P50), "fanfloor_p50": ms(fl.P50), "fanfloor_p99": ms(fl.P99), "fanfloor_max": ms(fl.Max),
		"fanfloor_delivered": floorDelivered,
	}

	// Through a router: the observers take the states with Next, then,
	// on a fresh router, in their contracts' SetNotify hooks (as the C
	// API and the bindings do: no goroutine hand-off per state).
	for _, phase := range []struct {
		notify bool
		prefix string
	}{{false, "fan"}, {true, "fanhook"}} {
		first, last, delivered, err := fanThrough(r, versions, phase.notify)
		if err != nil {
			if phase.notify {
				err = fmt.Errorf("observers in the SetNotify hook: %w", err)
			}
			return nil, err
		}
		p := phase.prefix
		m[p+"_delivered"] = delivered
		m[p+"_p50"], m[p+"_p99"], m[p+"_max"] = ms(last.P50), ms(last.P99), ms(last.Max)
		m[p+"_first_p50"], m[p+"_first_p99"] = ms(first.P50), ms(first.P99)
	}
	return m, nil
}

// fanThrough runs one fan-out through a router of its own: versions
// states, one every cfg.fanInterval, to cfg.fanObservers exchanges in
// cfg.fanProcs processes; notify makes the observers take the states in
// their SetNotify hooks. It returns the latencies to the first and to the
// last observer of each version, and the share of (observer, version)
// pairs delivered.
func fanThrough(r *run, versions int, notify bool) (first, last harness.LatStats, delivered float64, err error) {
	cfg := r.cfg
	suffix := ""
	if notify {
		suffix = "-hook"
	}
	rt, err := r.startRouter("127.0.0.1:0", 0, false)
	if err != nil {
		return first, last, 0, err
	}
	perProc := cfg.fanObservers / cfg.fanProcs
	obs := make([]*harness.Child, cfg.fanProcs)
	for k := range cfg.fanProcs {
		obs[k], err = r.role(fmt.Sprintf("observer%d%s", k, suffix), "fan-observer", Args{
			URL: rt.url, N: perProc, Objects: versions, Duration: cfg.fanDuration, Notify: notify,
		})
		if err != nil {
			return first, last, 0, err
		}
	}
	exp, err := r.role("exposer"+suffix, "fan-exposer", Args{URL: rt.url, N: versions, Interval: cfg.fanInterval, Size: 64})
	if err != nil {
		return first, last, 0, err
	}
	if err := exp.Expect("ready", cfg.timeout, nil); err != nil {
		return first, last, 0, err
	}
	if err := harness.ExpectAll(obs, "ready", cfg.timeout); err != nil {
		return first, last, 0, err
	}
	if err := exp.Send("go"); err != nil {
		return first, last, 0, err
	}
	var done fanDone
	if err := exp.Expect("done", cfg.fanDuration+cfg.timeout, &done); err != nil {
		return first, last, 0, err
	}
	fan := harness.NewFanOut(versions)
	for _, o := range obs {
		var res harness.FanReport
		if err := o.Expect("result", cfg.timeout, &res); err != nil {
			return first, last, 0, err
		}
		if res.Missing > 0 {
			return first, last, 0, fmt.Errorf("%s: %d (exchange, version) pairs never reached", o.Name, res.Missing)
		}
		fan.Add(res)
	}
	first, last = fan.Latencies(done.Sent)
	return first, last, fan.DeliveredPct(), nil
}

// ---- 4. resync ----

func scenarioResync(r *run) (metrics, error) {
	cfg := r.cfg
	n := cfg.resyncObjects
	maxObjects := max(2*n, 65536)
	rt, err := r.startRouter("127.0.0.1:0", maxObjects, false)
	if err != nil {
		return nil, err
	}
	exp, err := r.role("exposer", "resync-exposer", Args{URL: rt.url, Size: 16, MaxObjects: maxObjects})
	if err != nil {
		return nil, err
	}
	if err := exp.Expect("ready", cfg.timeout, nil); err != nil {
		return nil, err
	}
	start := time.Now()
	obs, err := r.role("observer", "resync-observer", Args{URL: rt.url, Objects: n, MaxObjects: maxObjects})
	if err != nil {
		return nil, err
	}
	if err := obs.Expect("ready", cfg.timeout, nil); err != nil {
		return nil, err
	}
	var first syncedAt
	if err := obs.Expect("synced", 2*cfg.timeout, &first); err != nil {
		return nil, fmt.Errorf("initial sync: %w%s", err, syncedSoFar(obs, n))
	}
	// SIGKILL the router: no goodbye on any link.
	killed := time.Now()
	rt.c.Kill()
	var gone syncedAt
	if err := obs.Expect("desynced", cfg.timeout, &gone); err != nil {
		return nil, err
	}
	rt2, err := r.startRouter(rt.addr, maxObjects, false)
	if err != nil {
		return nil, fmt.Errorf("restart on %s: %w", rt.addr, err)
	}
	var again syncedAt
	if err := obs.Expect("synced", 2*cfg.timeout, &again); err != nil {
		return nil, fmt.Errorf("resync: %w%s", err, syncedSoFar(obs, n))
	}
	back := rt2.backAt.UnixNano()
	return metrics{
		"resync_s":   float64(again.At-back) / 1e9,
		"initial_s":  float64(first.At-start.UnixNano()) / 1e9,
		"desync_ms":  float64(gone.At-killed.UnixNano()) / 1e6,
		"restart_ms": float64(back-gone.At) / 1e6,
	}, nil
}

// syncedSoFar asks a resync observer how many objects it holds
// synchronized, for an error message.
func syncedSoFar(obs *harness.Child, n int) string {
	if obs.Send("count") != nil {
		return ""
	}
	var count int
	if obs.Expect("count", 5*time.Second, &count) != nil {
		return ""
	}
	return fmt.Sprintf(" (%d of %d objects synchronized by then)", count, n)
}
