package router

import (
	"bytes"
	"context"
	"os"
	"slices"
	"time"

	"github.com/hakuban/hakuban/core"
)

// The monitor publishes the router's own state as a hakuban object, so any
// client can watch a router with ordinary contracts (SPEC §3.4,
// --monitor-tag): the object {"hakuban_router": <name>, "host": <host
// name>, "listen": [<bound addresses>]} tagged with Config.MonitorTag (a
// JSON string). Observe the tag to see every router of the tree: the
// routers' expose contracts travel upstream like any other. The host name
// keeps routers apart that share a name and a listen address (containers
// started from one image): with the same descriptor they would be one
// object, and only the elected one would be seen.
//
// It is lazy like every exposer: the router is only asked to produce the
// object while somebody observes it, and then writes the newest
// monitorValue every Config.MonitorInterval when it changed.

// MonitorValue is the JSON value a router publishes under its monitor tag.
type MonitorValue struct {
	Router string `json:"router"`
	// Listen lists the URLs downstreams connect to.
	Listen []string `json:"listen"`
	// Upstream is the upstream connector's status; nil for a root.
	Upstream *MonitorUpstream `json:"upstream,omitempty"`
	// Links describes the downstream links.
	Links []core.LinkInfo `json:"links"`
	// Snapshot is the exchange's snapshot, without the monitor object
	// itself (whose every version would otherwise change the next).
	Snapshot core.Snapshot `json:"snapshot"`
}

// MonitorUpstream is the upstream part of MonitorValue.
type MonitorUpstream struct {
	State     string `json:"state"`
	URL       string `json:"url"`
	Peer      string `json:"peer,omitempty"`
	LastError string `json:"last_error,omitempty"`
	Connects  uint64 `json:"connects"`
}

// monitorDescriptor names the router's monitor object.
func monitorDescriptor(cfg Config, urls []string) (core.ObjectDescriptor, error) {
	tag, err := core.NewTagDescriptor(cfg.MonitorTag)
	if err != nil {
		return core.ObjectDescriptor{}, err
	}
	host, _ := os.Hostname() // "" when unknown
	return core.NewObjectDescriptor(map[string]any{"hakuban_router": cfg.Name, "host": host, "listen": urls}, tag)
}

// monitorTrafficEvery: a monitor value that differs from the last one
// sent only in its traffic counters (bytes, frames, states...) is sent
// once every this many intervals. Sending a version moves those counters,
// so without it an idle router would publish a new version every interval.
const monitorTrafficEvery = 10

// startMonitor exposes the monitor object and starts its goroutine, which
// reads the listeners and connector given here (they do not change after
// Start) and never takes r.mu. Called by Start with r.mu held.
func (r *Router) startMonitor(listeners []*core.Listener, connector *core.Connector) error {
	urls := make([]string, len(listeners))
	for i, l := range listeners {
		urls[i] = l.URL()
	}
	d, err := monitorDescriptor(r.cfg, urls)
	if err != nil {
		return err
	}
	c, err := r.ex.ExposeObject(d, 1)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.monitorStop = func() {
		cancel()
		c.Close()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			sink, err := c.Next(ctx)
			if err != nil {
				return
			}
			r.publish(ctx, d, sink, listeners, connector)
		}
	}()
	return nil
}

// publish writes the monitor value through sink until the assignment
// ends: at once, then every interval when it changed, and when only its
// traffic counters changed, every monitorTrafficEvery intervals.
func (r *Router) publish(ctx context.Context, d core.ObjectDescriptor, sink *core.ObjectStateSink, listeners []*core.Listener, connector *core.Connector) {
	tick := time.NewTicker(r.cfg.MonitorInterval)
	defer tick.Stop()
	var last, lastShape []byte
	quiet := 0 // intervals since the last send
	for {
		v := monitorValue(r.cfg.Name, r.ex, d, listeners, connector)
		st, err := core.NewJSONState(v)
		shape, err2 := core.NewJSONState(withoutTraffic(v))
		quiet++
		if err == nil && err2 == nil && !bytes.Equal(st.Data, last) &&
			(!bytes.Equal(shape.Data, lastShape) || quiet >= monitorTrafficEvery) {
			last, lastShape, quiet = st.Data, shape.Data, 0
			if err := sink.Send(st); err != nil {
				return // revoked or closed
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-sink.Done():
			return
		case <-tick.C:
		}
	}
}

// withoutTraffic returns v with its traffic counters zeroed (a copy: v's
// slices are not changed), to tell whether anything else changed.
func withoutTraffic(v MonitorValue) MonitorValue {
	v.Links = slices.Clone(v.Links)
	for i := range v.Links {
		l := &v.Links[i]
		l.BytesIn, l.BytesOut, l.FramesIn, l.FramesOut = 0, 0, 0, 0
	}
	v.Snapshot.Counters = core.Counters{}
	v.Snapshot.Links = slices.Clone(v.Snapshot.Links)
	for i := range v.Snapshot.Links {
		l := &v.Snapshot.Links[i]
		l.BytesIn, l.BytesOut, l.FramesIn, l.FramesOut = 0, 0, 0, 0
	}
	return v
}

// monitorValue gathers the router's state.
func monitorValue(name string, ex *core.Exchange, self core.ObjectDescriptor, listeners []*core.Listener, connector *core.Connector) MonitorValue {
	v := MonitorValue{Router: name, Listen: []string{}, Links: []core.LinkInfo{}, Snapshot: ex.Snapshot()}
	for _, l := range listeners {
		v.Listen = append(v.Listen, l.URL())
		v.Links = append(v.Links, l.Links()...)
	}
	if connector != nil {
		st := connector.Status()
		v.Upstream = &MonitorUpstream{State: st.State.String(), URL: st.URL, Peer: st.Peer, Connects: st.Connects}
		if st.LastError != nil {
			v.Upstream.LastError = st.LastError.Error()
		}
	}
	s := &v.Snapshot
	objects := s.Objects[:0]
	for _, o := range s.Objects {
		if !o.Descriptor.Equal(self) {
			objects = append(objects, o)
		}
	}
	s.Objects = objects
	contracts := s.Contracts[:0]
	for _, c := range s.Contracts {
		if c.Object == nil || !c.Object.Equal(self) {
			contracts = append(contracts, c)
		}
	}
	s.Contracts = contracts
	return v
}
