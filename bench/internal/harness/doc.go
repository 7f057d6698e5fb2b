// Package harness is what the network benchmarks (bench/netbench, and
// bench/natsref, which measures nats-server the same way) share: a driver
// that re-executes its own binary in roles and kills every child on every
// exit path; the child side of that protocol (JSON events on stdout,
// commands on stdin, a bounded lifetime); nanosleep pacing, send stamps,
// nearest-rank percentiles and medians; and the raw TCP floors (a hop, a
// relay chain, a fan-out: tcp.go, fanfloor.go), run by both drivers.
package harness
