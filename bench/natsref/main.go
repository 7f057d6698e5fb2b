// Command natsref measures nats-server the way bench/netbench measures
// hakuban (`make bench-nats`), so that the network benchmarks have a
// reference measured in the same run, on the same machine: the issue's
// targets are "at least as good as nats-server measured the same way".
//
// Like netbench it re-executes itself in roles (server, publisher,
// subscriber, and the raw TCP floors' sender, relays and receivers),
// every process started by the driver, repeats each scenario -n times
// and prints the medians and the spread (min–max) of every figure.
//
//	latency  raw TCP sender → receiver (the floor), a raw TCP relay chain
//	         sender → relay → receiver (three processes, the floor of the
//	         system's shape), then publisher → nats-server → subscriber
//	         (three processes); 64-byte messages paced at 1,000/s for 5 s,
//	         the first 0.5 s left out; one-way p50/p90/p99/p99.9 from the
//	         time.Now().UnixNano() stamp the sender puts in the payload.
//	fanout   one publisher, 1,000 subscriber connections (4 processes ×
//	         250), a message every 10 ms for 5 s: per message, the time
//	         from the send until the first and until the last subscriber
//	         has it; before it, the same fan-out over raw TCP through one
//	         relay process (the floor; latest wins, as hakuban).
//
// This is a separate Go module (bench/natsref/go.mod): the hakuban module
// does not depend on nats, and its ./... does not include this directory.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hakuban/hakuban/bench/internal/harness"
)

type config struct {
	reps    int
	timeout time.Duration
	maxLife time.Duration
	subMode string

	latDuration, latInterval, latWarmup time.Duration
	fanDuration, fanInterval            time.Duration
	fanSubscribers, fanProcs            int
	loadBefore                          string
}

// metrics of one repetition, in display units (see metricDefs).
type metrics map[string]float64

type scenario struct {
	name string
	run  func(*run) (metrics, error)
}

var scenarios = []scenario{
	{"latency", scenarioLatency},
	{"fanout", scenarioFanout},
}

type metricDef struct{ scenario, key, label, unit string }

var metricDefs = []metricDef{
	{"latency", "tcp_p50", "raw TCP hop p50 (floor)", "µs"},
	{"latency", "tcp_p90", "raw TCP hop p90 (floor)", "µs"},
	{"latency", "tcp_p99", "raw TCP hop p99 (floor)", "µs"},
	{"latency", "tcp_p999", "raw TCP hop p99.9 (floor)", "µs"},
	{"latency", "chain_p50", "raw TCP relay chain p50 (floor, 2 hops)", "µs"},
	{"latency", "chain_p90", "raw TCP relay chain p90 (floor, 2 hops)", "µs"},
	{"latency", "chain_p99", "raw TCP relay chain p99 (floor, 2 hops)", "µs"},
	{"latency", "chain_p999", "raw TCP relay chain p99.9 (floor, 2 hops)", "µs"},
	{"latency", "lat_p50", "publisher→nats-server→subscriber p50", "µs"},
	{"latency", "lat_p90", "publisher→nats-server→subscriber p90", "µs"},
	{"latency", "lat_p99", "publisher→nats-server→subscriber p99", "µs"},
	{"latency", "lat_p999", "publisher→nats-server→subscriber p99.9", "µs"},
	{"latency", "lat_delivered", "paced messages delivered", "%"},
	{"fanout", "fanfloor_first_p50", "raw TCP fan-out, first of N receivers p50 (floor)", "ms"},
	{"fanout", "fanfloor_p50", "raw TCP fan-out, last of N receivers p50 (floor)", "ms"},
	{"fanout", "fanfloor_p99", "raw TCP fan-out, last of N receivers p99 (floor)", "ms"},
	{"fanout", "fanfloor_max", "raw TCP fan-out, last of N receivers max (floor)", "ms"},
	{"fanout", "fanfloor_delivered", "raw TCP fan-out: (receiver, message) pairs delivered (floor)", "%"},
	{"fanout", "fan_first_p50", "send → first of N subscribers, p50", "ms"},
	{"fanout", "fan_first_p99", "send → first of N subscribers, p99", "ms"},
	{"fanout", "fan_p50", "send → last of N subscribers, p50", "ms"},
	{"fanout", "fan_p99", "send → last of N subscribers, p99", "ms"},
	{"fanout", "fan_max", "send → last of N subscribers, max", "ms"},
	{"fanout", "fan_delivered", "deliveries (message × subscriber) made", "%"},
}

// interrupted is set by the signal handler, which then exits.
var interrupted atomic.Bool

func main() {
	if role := harness.Role(); role != "" {
		childMain(role)
		return
	}
	os.Exit(driverMain())
}

func driverMain() int {
	cfg := &config{}
	var names string
	flag.IntVar(&cfg.reps, "n", 3, "repetitions of each scenario")
	flag.StringVar(&names, "scenarios", "latency,fanout", "comma-separated scenarios to run")
	flag.StringVar(&cfg.subMode, "sub", "sync", "subscriber API: sync (SubscribeSync + NextMsg) or async (Subscribe with a handler)")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "bound on every wait of a scenario step")
	flag.DurationVar(&cfg.latDuration, "lat-duration", 5*time.Second, "latency: paced run length")
	flag.DurationVar(&cfg.latInterval, "lat-interval", time.Millisecond, "latency: interval between messages (1 ms = 1,000/s)")
	flag.DurationVar(&cfg.latWarmup, "lat-warmup", 500*time.Millisecond, "latency: first part of the run left out of the statistics")
	flag.DurationVar(&cfg.fanDuration, "fan-duration", 5*time.Second, "fanout: paced run length")
	flag.DurationVar(&cfg.fanInterval, "fan-interval", 10*time.Millisecond, "fanout: interval between messages (10 ms = 100/s)")
	flag.IntVar(&cfg.fanSubscribers, "fan-subscribers", 1000, "fanout: subscriber connections")
	flag.IntVar(&cfg.fanProcs, "fan-procs", 4, "fanout: subscriber processes")
	flag.Parse()
	if cfg.subMode != "sync" && cfg.subMode != "async" {
		fmt.Fprintf(os.Stderr, "natsref: -sub %q: want sync or async\n", cfg.subMode)
		return 2
	}
	if cfg.reps < 1 || cfg.fanProcs < 1 || cfg.fanSubscribers < cfg.fanProcs || cfg.latInterval <= 0 || cfg.fanInterval <= 0 {
		fmt.Fprintln(os.Stderr, "natsref: -n, -fan-procs, -fan-subscribers and the intervals must be positive")
		return 2
	}
	cfg.loadBefore = harness.LoadAverage()
	cfg.maxLife = 2*cfg.timeout + 2*max(cfg.latDuration, cfg.fanDuration) + time.Minute

	selected, err := harness.Select(names, scenarios, func(s scenario) string { return s.name })
	if err != nil {
		fmt.Fprintf(os.Stderr, "natsref: %v\n", err)
		return 2
	}

	// Children are killed on every way out: return, panic, signal (and
	// by the kernel, Pdeathsig, if this process dies).
	defer harness.Guard("natsref", func() {
		interrupted.Store(true)
	})()
	harness.RaiseFileLimit("natsref", 1100)

	results := map[string][]float64{}
	failures := map[string]int{}
	began := time.Now()
	for _, s := range selected {
		for rep := 1; rep <= cfg.reps; rep++ {
			r := &run{cfg: cfg}
			t := time.Now()
			m, err := s.run(r)
			r.close()
			if err != nil {
				failures[s.name]++
				fmt.Fprintf(os.Stderr, "natsref: %s %d/%d FAILED after %v: %v\n", s.name, rep, cfg.reps, time.Since(t).Round(time.Millisecond), err)
				if time.Since(t) > cfg.timeout {
					fmt.Fprintf(os.Stderr, "natsref: %s: skipping its remaining repetitions\n", s.name)
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
			fmt.Fprintf(os.Stderr, "natsref: %s %d/%d (%v): %s\n", s.name, rep, cfg.reps, time.Since(t).Round(time.Millisecond), strings.Join(parts, " "))
		}
	}
	if interrupted.Load() {
		select {} // the signal handler exits
	}
	printTable(cfg, selected, results, failures, time.Since(began))
	for _, n := range failures {
		if n > 0 {
			return 1
		}
	}
	return 0
}

func printTable(cfg *config, selected []scenario, results map[string][]float64, failures map[string]int, took time.Duration) {
	fmt.Printf("\nnats-server reference (bench/natsref): loopback, %d repetitions per scenario, medians (min–max); took %v\n", cfg.reps, took.Round(time.Second))
	fmt.Printf("nats-server %s (embedded, own process, default options), nats.go %s, %s; %d CPUs\n",
		server.VERSION, nats.Version, runtime.Version(), runtime.NumCPU())
	fmt.Printf("publisher: Publish, no Flush per message (the client's flusher goroutine writes); subscriber: %s\n", subModeText(cfg.subMode))
	fmt.Printf("latency: 64 B every %v for %v (first %v left out); fanout: %d subscribers in %d processes, a message every %v for %v\n",
		cfg.latInterval, cfg.latDuration, cfg.latWarmup, cfg.fanSubscribers, cfg.fanProcs, cfg.fanInterval, cfg.fanDuration)
	fmt.Printf("load average before / after: %s / %s\n\n", cfg.loadBefore, harness.LoadAverage())
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tmedian\tmin – max\truns")
	for _, s := range selected {
		for _, d := range metricDefs {
			if d.scenario != s.name {
				continue
			}
			vs := results[d.key]
			med, lo, hi := harness.Median(vs)
			n := cfg.fanSubscribers / cfg.fanProcs * cfg.fanProcs // connections opened
			label := strings.NewReplacer("N subscribers", fmt.Sprintf("%d subscribers", n), "N receivers", fmt.Sprintf("%d receivers", n)).Replace(d.label)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s – %s\t%d/%d\n", s.name, label, harness.Format(med, d.unit),
				harness.Format(lo, d.unit), harness.Format(hi, d.unit), len(vs), cfg.reps)
		}
		if failures[s.name] > 0 {
			fmt.Fprintf(tw, "%s\t%d repetition(s) FAILED (see above)\t\t\t\n", s.name, failures[s.name])
		}
	}
	tw.Flush()
}

func subModeText(mode string) string {
	if mode == "async" {
		return "Subscribe with a handler (the subscription's delivery goroutine calls it)"
	}
	return "SubscribeSync + NextMsg in a goroutine per connection"
}
