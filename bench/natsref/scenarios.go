package main

// The driver side of each scenario: it starts the server and the client
// processes, steps them through the run and turns their reports into
// metrics. Every repetition starts fresh processes; run.close stops them
// all whatever happens.

import (
	"fmt"
	"time"

	"github.com/hakuban/hakuban/bench/internal/harness"
)

func us(ns int64) float64 { return float64(ns) / 1e3 }
func ms(ns int64) float64 { return float64(ns) / 1e6 }

// startServer starts a nats-server process and returns its client URL.
func (r *run) startServer() (string, error) {
	s, err := r.role("server", "server", Args{})
	if err != nil {
		return "", err
	}
	var url string
	return url, s.Expect("ready", r.cfg.timeout, &url)
}

func scenarioLatency(r *run) (metrics, error) {
	cfg := r.cfg
	n := int(cfg.latDuration / cfg.latInterval)
	warm := int(cfg.latWarmup / cfg.latInterval)
	pacedFor := time.Duration(n) * cfg.latInterval
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
	m["tcp_p50"], m["tcp_p90"], m["tcp_p99"], m["tcp_p999"] = us(tcp.P50), us(tcp.P90), us(tcp.P99), us(tcp.P999)
	m["chain_p50"], m["chain_p90"], m["chain_p99"], m["chain_p999"] = us(chain.P50), us(chain.P90), us(chain.P99), us(chain.P999)

	// Publisher → nats-server → subscriber.
	url, err := r.startServer()
	if err != nil {
		return nil, err
	}
	sub, err := r.role("subscriber", "lat-sub", Args{URL: url, N: n, Warmup: warm, Interval: cfg.latInterval})
	if err != nil {
		return nil, err
	}
	if err := sub.Expect("ready", cfg.timeout, nil); err != nil {
		return nil, err
	}
	pub, err := r.role("publisher", "lat-pub", Args{URL: url, N: n, Interval: cfg.latInterval, Size: 64})
	if err != nil {
		return nil, err
	}
	if err := pub.Expect("ready", cfg.timeout, nil); err != nil {
		return nil, err
	}
	var lat harness.LatStats
	if err := sub.Expect("result", pacedFor+cfg.timeout, &lat); err != nil {
		return nil, err
	}
	if err := pub.Expect("done", cfg.timeout, nil); err != nil {
		return nil, err
	}
	m["lat_p50"], m["lat_p90"], m["lat_p99"], m["lat_p999"] = us(lat.P50), us(lat.P90), us(lat.P99), us(lat.P999)
	m["lat_delivered"] = 100 * float64(lat.Count) / float64(max(1, lat.Expected))
	return m, nil
}

func scenarioFanout(r *run) (metrics, error) {
	cfg := r.cfg
	messages := 1 + int(cfg.fanDuration/cfg.fanInterval) // message 1 is the warm-up
	// The floor: the same fan-out with raw TCP and a relay process.
	ff, fl, floorDelivered, err := harness.FanFloor(r.floor, harness.TCP{
		N: messages, Size: 64, Interval: cfg.fanInterval, Conns: cfg.fanSubscribers, Timeout: cfg.timeout,
	}, cfg.fanProcs)
	if err != nil {
		return nil, fmt.Errorf("raw TCP fan-out: %w", err)
	}

	url, err := r.startServer()
	if err != nil {
		return nil, err
	}
	perProc := cfg.fanSubscribers / cfg.fanProcs
	subs := make([]*harness.Child, cfg.fanProcs)
	for k := range cfg.fanProcs {
		subs[k], err = r.role(fmt.Sprintf("subscriber%d", k), "fan-sub", Args{
			URL: url, N: perProc, Messages: messages, Duration: cfg.fanDuration,
		})
		if err != nil {
			return nil, err
		}
	}
	pub, err := r.role("publisher", "fan-pub", Args{URL: url, N: messages, Interval: cfg.fanInterval, Size: 64})
	if err != nil {
		return nil, err
	}
	if err := pub.Expect("ready", cfg.timeout, nil); err != nil {
		return nil, err
	}
	if err := harness.ExpectAll(subs, "subscribed", cfg.timeout); err != nil {
		return nil, err
	}
	if err := pub.Send("warm"); err != nil {
		return nil, err
	}
	if err := pub.Expect("warmed", cfg.timeout, nil); err != nil {
		return nil, err
	}
	if err := harness.ExpectAll(subs, "ready", cfg.timeout); err != nil {
		return nil, err
	}
	if err := pub.Send("go"); err != nil {
		return nil, err
	}
	var done fanDone
	if err := pub.Expect("done", cfg.fanDuration+cfg.timeout, &done); err != nil {
		return nil, err
	}
	fan := harness.NewFanOut(messages)
	for _, s := range subs {
		var res harness.FanReport
		if err := s.Expect("result", cfg.timeout, &res); err != nil {
			return nil, err
		}
		if res.Missing > 0 {
			return nil, fmt.Errorf("%s: %d (connection, message) pairs never reached", s.Name, res.Missing)
		}
		fan.Add(res)
	}
	f, l := fan.Latencies(done.Sent)
	return metrics{
		"fanfloor_first_p50": ms(ff.P50), "fanfloor_p50": ms(fl.P50), "fanfloor_p99": ms(fl.P99), "fanfloor_max": ms(fl.Max),
		"fanfloor_delivered": floorDelivered,
		"fan_p50":            ms(l.P50), "fan_p99": ms(l.P99), "fan_max": ms(l.Max),
		"fan_first_p50": ms(f.P50), "fan_first_p99": ms(f.P99),
		"fan_delivered": fan.DeliveredPct(),
	}, nil
}

// run is one repetition of one scenario: the processes it started.
type run struct {
	cfg  *config
	kids []*harness.Child
}

func (r *run) role(name, role string, a Args) (*harness.Child, error) {
	a.Name = name
	a.Timeout, a.MaxLife, a.SubMode = r.cfg.timeout, r.cfg.maxLife, r.cfg.subMode
	c, err := harness.StartRole(name, role, a)
	if err != nil {
		return nil, err
	}
	r.kids = append(r.kids, c)
	return c, nil
}

// close stops every process of the run, in parallel; SIGKILL after 5 s.
func (r *run) close() { harness.StopAll(r.kids, 5*time.Second) }

// floor starts a raw TCP floor's process in this run (harness.Starter).
func (r *run) floor(name, role string, t harness.TCP) (*harness.Child, error) {
	return r.role(name, role, Args{Floor: t})
}
