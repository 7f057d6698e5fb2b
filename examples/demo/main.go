// Command demo is hakuban's live demo: exposers and observers sharing
// sensor objects through one exchange. It shows lazy exposing, capacity-
// weighted election, tag observation, failover and a snapshot.
//
// Until the router lands (issue: network), everything runs in one process.
package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/hakuban/hakuban/core"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ex, err := core.NewExchange(core.DefaultConfig())
	if err != nil {
		return err
	}
	defer ex.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	rooms := core.MustTagDescriptor("rooms")
	// Two producers able to serve any room; "big" has twice the capacity.
	small, err := ex.ExposeTag(rooms, 1)
	if err != nil {
		return err
	}
	big, err := ex.ExposeTag(rooms, 2)
	if err != nil {
		return err
	}
	for name, c := range map[string]*core.TagExposeContract{"small": small, "big": big} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			produce(ctx, name, c)
		}()
	}

	// A dashboard watches every live room; nobody asks for a room yet, so
	// nothing is produced.
	dashboard, err := ex.ObserveTag(rooms)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range dashboard.Events(ctx) {
			if ev.Gone {
				fmt.Printf("dashboard: %s is gone\n", ev.Descriptor.JSON())
				continue
			}
			var v struct {
				Celsius float64 `json:"celsius"`
				By      string  `json:"by"`
			}
			ev.State.DecodeJSON(&v)
			fmt.Printf("dashboard: %-12s %5.1f°C from %-5s synchronized=%v\n", ev.Descriptor.JSON(), v.Celsius, v.By, ev.State.Synchronized)
		}
	}()

	fmt.Println("== observers ask for six rooms: objects go live, producers are elected (capacity 1 vs 2)")
	var observers []*core.ObjectObserveContract
	for i := range 6 {
		o, err := ex.ObserveObject(core.MustObjectDescriptor(fmt.Sprintf("room-%d", i), rooms))
		if err != nil {
			return err
		}
		observers = append(observers, o)
	}
	time.Sleep(1500 * time.Millisecond)
	fmt.Printf("== load: small=%d big=%d\n", small.Load(), big.Load())

	fmt.Println("== the big producer stops: its rooms fail over to the small one")
	big.Close()
	time.Sleep(1500 * time.Millisecond)
	fmt.Printf("== load: small=%d\n", small.Load())

	fmt.Println("== observers of rooms 3..5 leave: those rooms are forgotten")
	for _, o := range observers[3:] {
		o.Close()
	}
	time.Sleep(500 * time.Millisecond)

	snap, err := ex.SnapshotJSON()
	if err != nil {
		return err
	}
	fmt.Println("== snapshot:")
	os.Stdout.Write(snap)
	fmt.Println()
	return nil
}

// produce answers each assignment with a reading every 300 ms until the
// assignment ends.
func produce(ctx context.Context, name string, c *core.TagExposeContract) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for sink := range c.Sinks(ctx) {
		fmt.Printf("%s: assigned %s\n", name, sink.Descriptor().JSON())
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for {
				st, _ := core.NewJSONState(map[string]any{"celsius": 18 + rand.Float64()*6, "by": name})
				if err := sink.Send(st); err != nil {
					fmt.Printf("%s: %s ended: %v\n", name, sink.Descriptor().JSON(), err)
					return
				}
				select {
				case <-sink.Done():
					fmt.Printf("%s: released %s\n", name, sink.Descriptor().JSON())
					return
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
}
