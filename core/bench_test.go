package core_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core"
)

// BenchmarkDeliver measures one exposer → one observer of one object with
// 64-byte states: Send, then the observer's TryNext, on one goroutine (one
// core). Every state is delivered. Target: ≥ 2 M states/s, ≤ 1 alloc/state.
func BenchmarkDeliver(b *testing.B) {
	ex := newExchange(b)
	d := obj("bench")
	exp := must[*core.ObjectExposeContract](b)(ex.ExposeObject(d, 1))
	obs := must[*core.ObjectObserveContract](b)(ex.ObserveObject(d))
	sink := trySink(b, exp)
	data := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	for range b.N {
		// No version: the sink makes one (its only allocation).
		if err := sink.Send(core.ObjectState{Data: data}); err != nil {
			b.Fatal(err)
		}
		if _, ok, _ := obs.TryNext(); !ok {
			b.Fatal("not delivered")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "states/s")
}

// BenchmarkDeliverConcurrent: the exposer and the observer on separate
// goroutines; the observer takes whatever is newest (latest wins), so the
// delivered rate is what one blocked reader keeps up with.
func BenchmarkDeliverConcurrent(b *testing.B) {
	ex := newExchange(b)
	d := obj("bench")
	exp := must[*core.ObjectExposeContract](b)(ex.ExposeObject(d, 1))
	obs := must[*core.ObjectObserveContract](b)(ex.ObserveObject(d))
	sink := trySink(b, exp)
	data := make([]byte, 64)
	received := make(chan int)
	go func() {
		n := 0
		for {
			st, err := obs.Next(context.Background())
			if err != nil {
				received <- n
				return
			}
			n++
			if st.Version[0] == int64(b.N) {
				received <- n
				return
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		sink.Send(core.ObjectState{Version: core.Version{int64(i + 1)}, Data: data})
	}
	n := <-received
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sent/s")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "delivered/s")
}

// BenchmarkFanout: 1 exposer → 1,000 observers of one object; every
// observer takes every state. Reports the cost per observer per state.
func BenchmarkFanout(b *testing.B) {
	ex := newExchange(b)
	d := obj("fanout")
	exp := must[*core.ObjectExposeContract](b)(ex.ExposeObject(d, 1))
	const observers = 1000
	obs := make([]*core.ObjectObserveContract, observers)
	for i := range obs {
		obs[i] = must[*core.ObjectObserveContract](b)(ex.ObserveObject(d))
	}
	sink := trySink(b, exp)
	data := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		sink.Send(core.ObjectState{Data: data})
		for _, o := range obs {
			if _, ok, _ := o.TryNext(); !ok {
				b.Fatal("not delivered")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/observers, "ns/observer/state")
}

// BenchmarkLiveObjects creates 1,000,000 observed objects and reports the
// heap they use beyond their descriptors (descriptors are made before
// measuring), and the time to create them. Target: ≤ 400 B/object.
func BenchmarkLiveObjects(b *testing.B) {
	const n = 1_000_000
	descs := make([]core.ObjectDescriptor, n)
	for i := range descs {
		descs[i] = obj(i)
	}
	for range b.N {
		b.StopTimer()
		ex := newExchange(b)
		contracts := make([]*core.ObjectObserveContract, n) // 8 B/object, counted
		before := heapLive()
		b.StartTimer()
		start := time.Now()
		for i, d := range descs {
			contracts[i] = must[*core.ObjectObserveContract](b)(ex.ObserveObject(d))
		}
		elapsed := time.Since(start)
		b.StopTimer()
		after := heapLive()
		b.ReportMetric(float64(after-before)/n, "B/object")
		b.ReportMetric(elapsed.Seconds(), "s/1M-objects")
		runtime.KeepAlive(contracts)
		ex.Close()
	}
}

// BenchmarkElection elects 100,000 observed objects over 10 tag exposers
// with capacities 1..4. Target: < 1 s in all.
func BenchmarkElection(b *testing.B) {
	const n = 100_000
	descs := make([]core.ObjectDescriptor, n)
	for i := range descs {
		descs[i] = obj(i, "elect")
	}
	for range b.N {
		b.StopTimer()
		ex := newExchange(b)
		var exps []*core.TagExposeContract
		for i := range 10 {
			exps = append(exps, must[*core.TagExposeContract](b)(ex.ExposeTag(tag("elect"), 1+i%4)))
		}
		b.StartTimer()
		start := time.Now()
		for _, d := range descs {
			must[*core.ObjectObserveContract](b)(ex.ObserveObject(d))
		}
		elapsed := time.Since(start)
		b.StopTimer()
		total := 0
		for _, e := range exps {
			total += e.Load()
		}
		if total != n {
			b.Fatalf("%d of %d objects elected", total, n)
		}
		b.ReportMetric(elapsed.Seconds(), "s/100k-elections")
		ex.Close()
	}
}

func heapLive() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
