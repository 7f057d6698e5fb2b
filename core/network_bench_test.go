package core

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkNetworkFanout measures one state reaching 100 observers over
// real loopback WebSockets: an exposer exchange and 100 observer exchanges,
// each with its own connection to a router exchange, all in this process.
// One op is one 64-byte state sent and held by every observer. B/op is the
// garbage the whole network makes per state (router, exposer and the 100
// observers), about 100 times what one delivery makes. It is what sets how
// often a router or a process of many clients collects garbage during a
// fan-out (bench/netbench's fanout scenario).
func BenchmarkNetworkFanout(b *testing.B) {
	const observers = 100
	router := netExchange(b, "router")
	l := testListener(b, router)
	ctx := testCtx(b)
	d := MustObjectDescriptor("fanout")
	// Default options: the test connectors' fast pings would be measured
	// too.
	opts := DefaultConnectorOptions()
	opts.URLs = []string{l.URL()}
	obs := make([]*ObjectObserveContract, observers)
	for i := range obs {
		ex := netExchange(b, fmt.Sprintf("observer-%d", i))
		testConnect(b, ex, opts)
		var err error
		if obs[i], err = ex.ObserveObject(d); err != nil {
			b.Fatal(err)
		}
	}
	exposer := netExchange(b, "exposer")
	testConnect(b, exposer, opts)
	exp, err := exposer.ExposeObject(d, 1)
	if err != nil {
		b.Fatal(err)
	}
	sink, err := exp.Next(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// send sends version v and waits until every observer holds it.
	send := func(v int64) {
		if err := sink.Send(ObjectState{Version: Version{v}, Data: make([]byte, 64)}); err != nil {
			b.Fatal(err)
		}
		for _, o := range obs {
			for {
				st, err := o.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if st.Version.Compare(Version{v}) >= 0 {
					break
				}
			}
		}
	}
	send(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		send(int64(i + 2))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/observers, "ns/delivery")
}

// BenchmarkWSTransport measures the WebSocket transport alone over
// loopback: one op is one 64-byte frame written by the dialing side
// (masked) and read by the accepting side, one goroutine each, so ns/op
// is the CPU of both sides' framing and system calls per frame (the
// writer runs ahead; reads return frames the socket has already taken).
func BenchmarkWSTransport(b *testing.B) {
	client, server := wsConnect(b, linkTiming{})
	frame := make([]byte, 64)
	ctx := context.Background()
	done := make(chan error, 1)
	b.ResetTimer()
	go func() {
		for range b.N {
			if err := client.Write(ctx, frame); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if f, err := server.Read(ctx); err != nil || len(f) != len(frame) {
			b.Fatalf("read %d bytes: %v", len(f), err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
