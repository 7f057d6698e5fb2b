// Command netbench is hakuban's network benchmark driver (`make
// bench-net`): it builds the hakuban-router binary into a temporary
// directory, runs each scenario of issue 6 on loopback with every process
// started by itself (the router, and this binary re-executed as exposer and
// observer processes), repeats each scenario -n times and prints the
// medians and the spread (min–max) of every figure.
//
// Scenarios (-scenarios, comma-separated; default all):
//
//	latency     64-byte states paced at 1,000/s for 5 s, exposer → router →
//	            observer (three processes): one-way p50/p99 (the exposer
//	            puts its send time, time.Now().UnixNano(), in the data); in
//	            the same run a raw TCP process-to-process hop paced the same
//	            way, as the floor, and a raw TCP relay chain sender → relay →
//	            receiver (three processes, two hops: the floor of the
//	            system's shape).
//	absorb      one exposer of one object sends back-to-back for 3 s while
//	            one observer follows: versions/s the router applied (its
//	            /metrics hakuban_states_total over the steady middle of the
//	            run), Send() calls/s at the exposer, states/s the observer got.
//	absorb1000  the same from 1,000 exposers of distinct objects: 4
//	            processes × 250 exchanges, each with its own connector.
//	fanout      one object, 1,000 observer connections (4 processes × 250
//	            exchanges), 100 updates/s for 5 s: p50/p99/max of the time
//	            from the send until the last observer holds the version (or
//	            a newer one: latest wins); before it, in the same run, the
//	            same fan-out over raw TCP through one relay process as the
//	            floor (latest wins, as hakuban).
//	resync      100,000 objects observed by one process, tag-exposed by
//	            another, all synchronized; the router is SIGKILLed and
//	            restarted on the same address: time from its address file
//	            appearing until the observer holds all objects synchronized.
//
// Benchmark clients use MinBackoff 100 ms and MaxBackoff 200 ms (the
// default MaxBackoff is 10 s) so that resync measures hakuban, not a
// client's sleep; that sleep (up to 200 ms, full jitter) is part of the
// resync figure. Resync raises the per-link object limit (router
// --max-objects, client Limits.MaxObjects) to 200,000: the default 65,536
// cannot carry 100,000 objects on one link.
//
// -cpuprofile DIR writes a CPU profile of every process (the router then
// runs in-process from package router, as this binary in the router role,
// since the hakuban-router binary has no pprof endpoint): inspect with
// `go tool pprof -top DIR/absorb-1-router1.prof`.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hakuban/hakuban/bench/internal/harness"
)

// interrupted is set by the signal handler, which then exits.
var interrupted atomic.Bool

type config struct {
	reps      int
	verbose   bool
	routerBin string
	inproc    bool
	profDir   string
	tmp       string
	timeout   time.Duration
	maxLife   time.Duration

	latDuration, latInterval, latWarmup time.Duration
	absDuration                         time.Duration
	absExposers, absProcs               int
	fanDuration, fanInterval            time.Duration
	fanObservers, fanProcs              int
	resyncObjects                       int
	loadBefore                          string
}

type scenario struct {
	name string
	run  func(*run) (metrics, error)
}

var scenarios = []scenario{
	{"latency", scenarioLatency},
	{"absorb", scenarioAbsorb1},
	{"absorb1000", scenarioAbsorbMany},
	{"fanout", scenarioFanout},
	{"resync", scenarioResync},
}

// metricDef describes one figure of the table.
type metricDef struct {
	scenario, key, label, unit string
	// target: the median must be ≤ target (≥ when higher), 0 for none.
	target float64
	higher bool
	ref    string
}

var metricDefs = []metricDef{
	{"latency", "tcp_p50", "raw TCP hop p50 (floor)", "µs", 0, false, "~58 µs"},
	{"latency", "tcp_p99", "raw TCP hop p99 (floor)", "µs", 0, false, "~117 µs"},
	{"latency", "chain_p50", "raw TCP relay chain p50 (floor, 2 hops)", "µs", 0, false, ""},
	{"latency", "chain_p90", "raw TCP relay chain p90 (floor, 2 hops)", "µs", 0, false, ""},
	{"latency", "chain_p99", "raw TCP relay chain p99 (floor, 2 hops)", "µs", 0, false, ""},
	{"latency", "chain_p999", "raw TCP relay chain p99.9 (floor, 2 hops)", "µs", 0, false, ""},
	{"latency", "lat_p50", "exposer→router→observer p50", "µs", 150, false, "nats 164 µs"},
	{"latency", "lat_p90", "exposer→router→observer p90", "µs", 0, false, ""},
	{"latency", "lat_p99", "exposer→router→observer p99", "µs", 350, false, "nats 351 µs"},
	{"latency", "lat_p999", "exposer→router→observer p99.9", "µs", 0, false, ""},
	{"latency", "lat_delivered", "paced states delivered", "%", 0, false, ""},
	{"latency", "hook_p50", "same, observer in its SetNotify hook, p50", "µs", 0, false, ""},
	{"latency", "hook_p99", "same, observer in its SetNotify hook, p99", "µs", 0, false, ""},
	{"absorb", "abs1_sent", "tight Send loop: exposer Send() calls/s", "/s", 0, false, ""},
	{"absorb", "abs1_routerVersions", "  router: versions absorbed/s (latest wins)", "/s", 500000, true, "nats pub/sub 1.5 M/s"},
	{"absorb", "abs1_router", "  router: distinct states applied/s", "/s", 0, true, ""},
	{"absorb", "abs1_routerIn", "  router: frames in/s", "/s", 0, false, ""},
	{"absorb", "abs1_routerOut", "  router: frames out/s", "/s", 0, false, ""},
	{"absorb", "abs1_observerVersions", "  observer: versions followed/s", "/s", 0, false, ""},
	{"absorb", "abs1_observer", "  observer: distinct states received/s", "/s", 0, false, ""},
	{"absorb", "abs1_sent_yield", "Gosched after each Send: exposer Send() calls/s", "/s", 0, false, ""},
	{"absorb", "abs1_routerVersions_yield", "  router: versions absorbed/s (latest wins)", "/s", 500000, true, ""},
	{"absorb", "abs1_router_yield", "  router: distinct states applied/s", "/s", 0, true, ""},
	{"absorb", "abs1_routerIn_yield", "  router: frames in/s", "/s", 0, false, ""},
	{"absorb", "abs1_routerOut_yield", "  router: frames out/s", "/s", 0, false, ""},
	{"absorb", "abs1_observerVersions_yield", "  observer: versions followed/s", "/s", 0, false, ""},
	{"absorb", "abs1_observer_yield", "  observer: distinct states received/s", "/s", 0, false, ""},
	{"absorb1000", "absN_sent", "tight Send loops: exposers' Send() calls/s", "/s", 0, false, ""},
	{"absorb1000", "absN_routerVersions", "  router: versions absorbed/s (latest wins)", "/s", 0, true, ""},
	{"absorb1000", "absN_router", "  router: distinct states applied/s", "/s", 0, true, ""},
	{"absorb1000", "absN_routerIn", "  router: frames in/s", "/s", 0, false, ""},
	{"absorb1000", "absN_routerOut", "  router: frames out/s", "/s", 0, false, ""},
	{"absorb1000", "absN_observerVersions", "  observer: versions followed/s", "/s", 0, false, ""},
	{"absorb1000", "absN_observer", "  observer: distinct states received/s", "/s", 0, false, ""},
	{"absorb1000", "absN_sent_yield", "Gosched after each Send: exposers' Send() calls/s", "/s", 0, false, ""},
	{"absorb1000", "absN_routerVersions_yield", "  router: versions absorbed/s (latest wins)", "/s", 0, true, ""},
	{"absorb1000", "absN_router_yield", "  router: distinct states applied/s", "/s", 0, true, ""},
	{"absorb1000", "absN_routerIn_yield", "  router: frames in/s", "/s", 0, false, ""},
	{"absorb1000", "absN_routerOut_yield", "  router: frames out/s", "/s", 0, false, ""},
	{"absorb1000", "absN_observerVersions_yield", "  observer: versions followed/s", "/s", 0, false, ""},
	{"absorb1000", "absN_observer_yield", "  observer: distinct states received/s", "/s", 0, false, ""},
	{"fanout", "fanfloor_first_p50", "raw TCP fan-out, first of N receivers p50 (floor)", "ms", 0, false, ""},
	{"fanout", "fanfloor_p50", "raw TCP fan-out, last of N receivers p50 (floor)", "ms", 0, false, ""},
	{"fanout", "fanfloor_p99", "raw TCP fan-out, last of N receivers p99 (floor)", "ms", 0, false, ""},
	{"fanout", "fanfloor_max", "raw TCP fan-out, last of N receivers max (floor)", "ms", 0, false, ""},
	{"fanout", "fanfloor_delivered", "raw TCP fan-out: (receiver, message) pairs delivered (floor)", "%", 0, false, ""},
	{"fanout", "fan_first_p50", "send → first of 1,000 observers, p50", "ms", 0, false, ""},
	{"fanout", "fan_first_p99", "send → first of 1,000 observers, p99", "ms", 0, false, ""},
	{"fanout", "fan_p50", "send → last of 1,000 observers, p50", "ms", 0, false, ""},
	{"fanout", "fan_p99", "send → last of 1,000 observers, p99", "ms", 25, false, "nats 47 ms"},
	{"fanout", "fan_max", "send → last of 1,000 observers, max", "ms", 0, false, ""},
	{"fanout", "fan_delivered", "(observer, version) pairs delivered, the rest skipped (latest wins)", "%", 0, false, ""},
	{"fanout", "fanhook_first_p50", "same, observers in their SetNotify hooks: first p50", "ms", 0, false, ""},
	{"fanout", "fanhook_p50", "same, observers in their SetNotify hooks: last p50", "ms", 0, false, ""},
	{"fanout", "fanhook_p99", "same, observers in their SetNotify hooks: last p99", "ms", 0, false, ""},
	{"fanout", "fanhook_max", "same, observers in their SetNotify hooks: last max", "ms", 0, false, ""},
	{"fanout", "fanhook_delivered", "same, observers in their SetNotify hooks: pairs delivered", "%", 0, false, ""},
	{"resync", "initial_s", "initial sync of all objects", "s", 0, false, ""},
	{"resync", "desync_ms", "SIGKILL → observer sees all unsynced", "ms", 0, false, ""},
	{"resync", "restart_ms", "driver: unsynced → router back", "ms", 0, false, ""},
	{"resync", "resync_s", "router back → all objects synced", "s", 3, false, ""},
}

func main() {
	if role := harness.Role(); role != "" {
		childMain(role)
		return
	}
	os.Exit(driverMain())
}

func driverMain() (code int) {
	cfg := &config{}
	var names, out string
	flag.IntVar(&cfg.reps, "n", 5, "repetitions of each scenario")
	flag.BoolVar(&cfg.verbose, "v", false, "print raw counters")
	flag.StringVar(&names, "scenarios", "latency,absorb,absorb1000,fanout,resync", "comma-separated scenarios to run")
	flag.StringVar(&cfg.routerBin, "router-bin", "", "hakuban-router binary to use (default: build one into a temporary directory)")
	flag.StringVar(&cfg.profDir, "cpuprofile", "", "write a CPU profile of every process into this `directory` (runs the router in-process)")
	flag.BoolVar(&cfg.inproc, "inproc-router", false, "run the router from package router in this binary instead of the hakuban-router binary")
	flag.StringVar(&out, "json", "", "also write every repetition's figures to this JSON `file`")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "bound on every wait of a scenario step")
	flag.DurationVar(&cfg.latDuration, "lat-duration", 5*time.Second, "latency: paced run length")
	flag.DurationVar(&cfg.latInterval, "lat-interval", time.Millisecond, "latency: interval between states (1 ms = 1,000/s)")
	flag.DurationVar(&cfg.latWarmup, "lat-warmup", 500*time.Millisecond, "latency: first part of the run left out of the statistics")
	flag.DurationVar(&cfg.absDuration, "abs-duration", 3*time.Second, "absorb: back-to-back run length")
	flag.IntVar(&cfg.absExposers, "abs-exposers", 1000, "absorb1000: exposer connections")
	flag.IntVar(&cfg.absProcs, "abs-procs", 4, "absorb1000: exposer processes")
	flag.DurationVar(&cfg.fanDuration, "fan-duration", 5*time.Second, "fanout: paced run length")
	flag.DurationVar(&cfg.fanInterval, "fan-interval", 10*time.Millisecond, "fanout: interval between versions (10 ms = 100/s)")
	flag.IntVar(&cfg.fanObservers, "fan-observers", 1000, "fanout: observer connections")
	flag.IntVar(&cfg.fanProcs, "fan-procs", 4, "fanout: observer processes")
	flag.IntVar(&cfg.resyncObjects, "resync-objects", 100000, "resync: observed objects")
	flag.Parse()
	if cfg.profDir != "" {
		cfg.inproc = true
		if err := os.MkdirAll(cfg.profDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "netbench:", err)
			return 2
		}
	}
	cfg.loadBefore = harness.LoadAverage()
	cfg.maxLife = 2*cfg.timeout + 2*max(cfg.latDuration, cfg.absDuration, cfg.fanDuration) + time.Minute

	selected, err := harness.Select(names, scenarios, func(s scenario) string { return s.name })
	if err != nil {
		fmt.Fprintf(os.Stderr, "netbench: %v\n", err)
		return 2
	}

	cfg.tmp, err = os.MkdirTemp("", "hakuban-netbench")
	if err != nil {
		fmt.Fprintln(os.Stderr, "netbench:", err)
		return 1
	}
	defer os.RemoveAll(cfg.tmp)
	// Children are killed on every way out: return, panic, signal.
	defer harness.Guard("netbench", func() {
		interrupted.Store(true)
		os.RemoveAll(cfg.tmp)
	})()
	harness.RaiseFileLimit("netbench", 2100)

	if cfg.routerBin == "" && !cfg.inproc {
		cfg.routerBin = filepath.Join(cfg.tmp, "hakuban-router")
		fmt.Fprintln(os.Stderr, "netbench: building hakuban-router")
		build := exec.Command("go", "build", "-o", cfg.routerBin, "github.com/hakuban/hakuban/cmd/router")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "netbench: building the router:", err)
			return 1
		}
	}

	results := map[string][]float64{}
	failures, skipped := map[string]int{}, map[string]int{}
	began := time.Now()
	for _, s := range selected {
		for rep := 1; rep <= cfg.reps; rep++ {
			r := &run{cfg: cfg, tag: fmt.Sprintf("%s-%d", s.name, rep)}
			t := time.Now()
			m, err := s.run(r)
			r.close()
			if err != nil {
				failures[s.name]++
				fmt.Fprintf(os.Stderr, "netbench: %s %d/%d FAILED after %v: %v\n", s.name, rep, cfg.reps, time.Since(t).Round(time.Millisecond), err)
				if time.Since(t) > cfg.timeout {
					// A timeout would only repeat: keep the whole run bounded.
					fmt.Fprintf(os.Stderr, "netbench: %s: skipping its remaining repetitions\n", s.name)
					skipped[s.name] = cfg.reps - rep
					break
				}
				continue
			}
			var parts []string
			for _, d := range metricDefs {
				if v, ok := m[d.key]; ok {
					results[d.key] = append(results[d.key], v)
					parts = append(parts, fmt.Sprintf("%s=%s", d.key, harness.Format(v, d.unit)))
				}
			}
			fmt.Fprintf(os.Stderr, "netbench: %s %d/%d (%v): %s\n", s.name, rep, cfg.reps, time.Since(t).Round(time.Millisecond), strings.Join(parts, " "))
		}
	}
	if interrupted.Load() {
		select {} // the signal handler exits
	}
	printTable(cfg, selected, results, failures, skipped, time.Since(began))
	if out != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(out, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "netbench:", err)
		}
	}
	for _, n := range failures {
		if n > 0 {
			return 1
		}
	}
	return 0
}

func printTable(cfg *config, selected []scenario, results map[string][]float64, failures, skipped map[string]int, took time.Duration) {
	fmt.Printf("\nhakuban network benchmarks: loopback, %d repetitions per scenario, medians (min–max); took %v\n", cfg.reps, took.Round(time.Second))
	if cfg.inproc {
		fmt.Print("router: in-process (package router), profiling")
	} else {
		fmt.Print("router: hakuban-router binary")
	}
	fmt.Printf("; source: %s\n", sourceVersion())
	fmt.Printf("clients: MinBackoff %v, MaxBackoff %v (default 10 s)\n", clientMinBackoff, clientMaxBackoff)
	fmt.Printf("latency: 64 B every %v for %v (first %v left out); absorb: %v per phase; absorb1000: %d exposers in %d processes;\n",
		cfg.latInterval, cfg.latDuration, cfg.latWarmup, cfg.absDuration, cfg.absExposers, cfg.absProcs)
	fmt.Printf("fanout: %d observers in %d processes, a version every %v for %v; resync: %d objects\n",
		cfg.fanObservers, cfg.fanProcs, cfg.fanInterval, cfg.fanDuration, cfg.resyncObjects)
	fmt.Printf("load average before / after: %s / %s\n\n", cfg.loadBefore, harness.LoadAverage())
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tmedian\tmin – max\truns\ttarget\t\treference")
	for _, s := range selected {
		for _, d := range metricDefs {
			if d.scenario != s.name {
				continue
			}
			vs := results[d.key]
			med, lo, hi := harness.Median(vs)
			target, verdict := "", ""
			if d.target != 0 {
				cmp := "≤"
				ok := med <= d.target
				if d.higher {
					cmp, ok = "≥", med >= d.target
				}
				target = cmp + " " + harness.Format(d.target, d.unit)
				verdict = "ok"
				if !ok {
					verdict = "MISS"
				}
				if len(vs) == 0 {
					verdict = "-"
				}
			}
			label := strings.Replace(d.label, "N receivers", fmt.Sprintf("%d receivers", cfg.fanObservers/cfg.fanProcs*cfg.fanProcs), 1)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s – %s\t%d/%d\t%s\t%s\t%s\n", s.name, label, harness.Format(med, d.unit),
				harness.Format(lo, d.unit), harness.Format(hi, d.unit), len(vs), cfg.reps, target, verdict, d.ref)
		}
		if failures[s.name] > 0 {
			fmt.Fprintf(tw, "%s\t%d repetition(s) FAILED, %d skipped (see above)\t\t\t\t\t\t\n", s.name, failures[s.name], skipped[s.name])
		}
	}
	tw.Flush()
}

// sourceVersion names the commit measured, and whether core/, router/ or
// cmd/ had uncommitted changes (the tree is shared and moves quickly).
func sourceVersion() string {
	head, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (no git)"
	}
	v := strings.TrimSpace(string(head))
	if dirty, err := exec.Command("git", "status", "--porcelain", "--", "core", "router", "cmd").Output(); err == nil && len(dirty) > 0 {
		v += " with uncommitted changes in core/, router/ or cmd/"
	}
	return v
}
