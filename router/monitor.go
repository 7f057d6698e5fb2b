package router

import (
	"bytes"
	"context"
	"time"

	"github.com/hakuban/hakuban/core"
)

// The monitor publishes the router's own state as a hakuban object, so any
// client can watch a router with ordinary contracts (SPEC §3.4,
// --monitor-tag): the object {"hakuban_router": <name>, "listen": [<bound
// addresses>]} tagged with Config.MonitorTag (a JSON string). Observe the
// tag to see every router of the tree: the routers' expose contracts
// travel upstream like any other.
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
func monitorDescriptor(cfg Config, urls []string) core.ObjectDescriptor {
	return core.MustObjectDescriptor(map[string]any{"hakuban_router": cfg.Name, "listen": urls},
		core.MustTagDescriptor(cfg.MonitorTag))
}

// startMonitor exposes the monitor object and starts its goroutine. Called
// by Start with r.mu held.
func (r *Router) startMonitor(urls []string) error {
	d := monitorDescriptor(r.cfg, urls)
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
			r.publish(ctx, d, sink)
		}
	}()
	return nil
}

// publish writes the monitor value through sink until the assignment
// ends.
func (r *Router) publish(ctx context.Context, d core.ObjectDescriptor, sink *core.ObjectStateSink) {
	tick := time.NewTicker(r.cfg.MonitorInterval)
	defer tick.Stop()
	var last []byte
	for {
		st, err := core.NewJSONState(r.monitorValue(d))
		if err == nil && !bytes.Equal(st.Data, last) {
			last = st.Data
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

// monitorValue gathers the router's state.
func (r *Router) monitorValue(self core.ObjectDescriptor) MonitorValue {
	r.mu.Lock()
	listeners, connector := r.listeners, r.connector
	r.mu.Unlock()
	v := MonitorValue{Router: r.cfg.Name, Listen: []string{}, Links: []core.LinkInfo{}, Snapshot: r.ex.Snapshot()}
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
