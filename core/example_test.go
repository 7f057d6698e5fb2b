package core_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hakuban/hakuban/core"
)

// An exposer produces an object only while somebody observes it.
func Example() {
	ex, err := core.NewExchange(core.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer ex.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	temperature := core.MustObjectDescriptor(map[string]any{"sensor": "kitchen"}, core.MustTagDescriptor("sensors"))

	exposer, _ := ex.ExposeObject(temperature, 1)
	defer exposer.Close()
	observer, _ := ex.ObserveObject(temperature)
	defer observer.Close()

	// The observer made the object live: the exposer gets an assignment.
	sink, _ := exposer.Next(ctx)
	st, _ := core.NewJSONState(map[string]float64{"celsius": 21.5})
	sink.Send(st)

	got, _ := observer.Next(ctx)
	var v map[string]float64
	got.DecodeJSON(&v)
	fmt.Println(v["celsius"], got.Synchronized)
	// Output: 21.5 true
}

// A tag observer sees every live object carrying its tag.
func ExampleExchange_ObserveTag() {
	ex, _ := core.NewExchange(core.DefaultConfig())
	defer ex.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rooms := core.MustTagDescriptor("rooms")

	all, _ := ex.ObserveTag(rooms)
	producer, _ := ex.ExposeTag(rooms, 1)
	kitchen, _ := ex.ObserveObject(core.MustObjectDescriptor("kitchen", rooms))

	sink, _ := producer.Next(ctx)
	sink.Send(core.ObjectState{Data: []byte("lights on")})
	ev, _ := all.Next(ctx)
	fmt.Println(ev.Descriptor.JSON(), string(ev.State.Data))

	kitchen.Close() // the object is no longer live
	ev, _ = all.Next(ctx)
	fmt.Println(ev.Descriptor.JSON(), ev.Gone)
	// Output:
	// "kitchen" lights on
	// "kitchen" true
}
