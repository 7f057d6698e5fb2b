package main

// The driver side of each scenario: it starts the server and the client
// processes, steps them through the run and turns their reports into
// metrics. Every repetition starts fresh processes; run.close stops them
// all whatever happens.

import (
	"fmt"
	"time"
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
	return url, s.expect("ready", r.cfg.timeout, &url)
}

func scenarioLatency(r *run) (metrics, error) {
	cfg := r.cfg
	n := int(cfg.latDuration / cfg.latInterval)
	warm := int(cfg.latWarmup / cfg.latInterval)
	pacedFor := time.Duration(n) * cfg.latInterval
	m := metrics{}

	// The floor: a raw TCP hop between two processes, paced the same way.
	recv, err := r.role("tcp-recv", "tcp-recv", Args{N: n, Warmup: warm, Interval: cfg.latInterval, Size: 64})
	if err != nil {
		return nil, err
	}
	var addr string
	if err := recv.expect("ready", cfg.timeout, &addr); err != nil {
		return nil, err
	}
	send, err := r.role("tcp-send", "tcp-send", Args{Addr: addr, N: n, Interval: cfg.latInterval, Size: 64})
	if err != nil {
		return nil, err
	}
	var tcp latStats
	if err := recv.expect("result", pacedFor+cfg.timeout, &tcp); err != nil {
		return nil, err
	}
	if err := send.expect("done", cfg.timeout, nil); err != nil {
		return nil, err
	}
	m["tcp_p50"], m["tcp_p90"], m["tcp_p99"], m["tcp_p999"] = us(tcp.P50), us(tcp.P90), us(tcp.P99), us(tcp.P999)

	// Publisher → nats-server → subscriber.
	url, err := r.startServer()
	if err != nil {
		return nil, err
	}
	sub, err := r.role("subscriber", "lat-sub", Args{URL: url, N: n, Warmup: warm, Interval: cfg.latInterval})
	if err != nil {
		return nil, err
	}
	if err := sub.expect("ready", cfg.timeout, nil); err != nil {
		return nil, err
	}
	pub, err := r.role("publisher", "lat-pub", Args{URL: url, N: n, Interval: cfg.latInterval, Size: 64})
	if err != nil {
		return nil, err
	}
	if err := pub.expect("ready", cfg.timeout, nil); err != nil {
		return nil, err
	}
	var lat latStats
	if err := sub.expect("result", pacedFor+cfg.timeout, &lat); err != nil {
		return nil, err
	}
	if err := pub.expect("done", cfg.timeout, nil); err != nil {
		return nil, err
	}
	m["lat_p50"], m["lat_p90"], m["lat_p99"], m["lat_p999"] = us(lat.P50), us(lat.P90), us(lat.P99), us(lat.P999)
	m["lat_delivered"] = 100 * float64(lat.Count) / float64(max(1, lat.Expected))
	return m, nil
}

func scenarioFanout(r *run) (metrics, error) {
	cfg := r.cfg
	url, err := r.startServer()
	if err != nil {
		return nil, err
	}
	messages := 1 + int(cfg.fanDuration/cfg.fanInterval) // message 1 is the warm-up
	perProc := cfg.fanSubscribers / cfg.fanProcs
	subs := make([]*child, cfg.fanProcs)
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
	if err := pub.expect("ready", cfg.timeout, nil); err != nil {
		return nil, err
	}
	for _, s := range subs {
		if err := s.expect("subscribed", cfg.timeout, nil); err != nil {
			return nil, err
		}
	}
	if err := pub.send("warm"); err != nil {
		return nil, err
	}
	if err := pub.expect("warmed", cfg.timeout, nil); err != nil {
		return nil, err
	}
	for _, s := range subs {
		if err := s.expect("ready", cfg.timeout, nil); err != nil {
			return nil, err
		}
	}
	if err := pub.send("go"); err != nil {
		return nil, err
	}
	var done fanDone
	if err := pub.expect("done", cfg.fanDuration+cfg.timeout, &done); err != nil {
		return nil, err
	}
	first, last := make([]int64, messages+1), make([]int64, messages+1)
	delivered, expected := 0, 0
	for _, s := range subs {
		var res fanResult
		if err := s.expect("result", cfg.timeout, &res); err != nil {
			return nil, err
		}
		if res.Missing > 0 {
			return nil, fmt.Errorf("%s: %d (connection, message) pairs never reached", s.name, res.Missing)
		}
		delivered, expected = delivered+res.Delivered, expected+res.Expected
		for v := range res.Last {
			last[v] = max(last[v], res.Last[v])
			if first[v] == 0 || res.First[v] < first[v] {
				first[v] = res.First[v]
			}
		}
	}
	var lastLat, firstLat []int64
	for v := 2; v <= messages; v++ {
		lastLat = append(lastLat, last[v]-done.Sent[v])
		firstLat = append(firstLat, first[v]-done.Sent[v])
	}
	l, f := summarize(lastLat, messages-1), summarize(firstLat, messages-1)
	return metrics{
		"fan_p50": ms(l.P50), "fan_p99": ms(l.P99), "fan_max": ms(l.Max),
		"fan_first_p50": ms(f.P50), "fan_first_p99": ms(f.P99),
		"fan_delivered": 100 * float64(delivered) / float64(max(1, expected)),
	}, nil
}
