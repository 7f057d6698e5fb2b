// Package core is hakuban's Go library: an exchange where processes expose
// data objects and others observe them.
//
// An object is a shared variable named by an ObjectDescriptor (any JSON
// value plus a set of TagDescriptor tags). Exactly one exposer writes it; any
// number of observers read its newest state. It is last-value state sharing,
// not messaging: a slow observer skips versions instead of queueing them.
//
// Everything happens through four contracts made on an Exchange:
//
//   - ObserveObject(d): "I want this object". Yields the object's newest
//     ObjectState whenever it changes.
//   - ExposeObject(d, capacity): "I can produce this object". Yields an
//     ObjectStateSink (an assignment) only while the exchange elected this
//     contract and somebody observes the object, so nothing is produced that
//     nobody wants. The sink's Done channel closes when the assignment ends.
//   - ObserveTag(t): "I want every live object with this tag". Yields an
//     ObjectEvent per state change and per disappearance.
//   - ExposeTag(t, capacity): "I can produce any object with this tag".
//     Yields one sink per object it is elected for.
//
// Closing a contract cancels it at once. Tag contracts never bring an
// object to life by themselves: an object is live while an object observer
// wants it, or while it is exposed by an object expose contract and a tag
// observer covers one of its tags.
//
// # Election
//
// Each observed object gets exactly one exposer: the candidate with the
// lowest load (assigned objects ÷ capacity) after taking it; ties go to the
// longest-standing candidate. When loads drift apart by more than
// Config.RebalanceThreshold, a rate-limited rebalancer moves objects. A move
// is a gap-free handover: the new exposer is assigned first and the old
// sink stays valid until the new one writes (or Config.HandoverTimeout), so
// observers never see the state go unsynchronized. When an exposer leaves,
// its objects fail over at once; observers see the last state marked not
// synchronized until the successor writes. Sinks carry per-object tokens: a
// write through a revoked sink fails with ErrRevoked, so a de-elected
// exposer can never overwrite its successor.
//
// # Receiving
//
// Every stream-like value (the four contracts) offers the same methods:
// Next(ctx) blocks, TryNext never blocks, NextTimeout takes a duration,
// range-over-func iterators (States, Events, Sinks), Ready for select
// loops, and SetNotify for a hook run when something becomes pending — the
// base for the C API's pollable file descriptor.
//
// Next hands each state from the goroutine that delivered it (for an
// object fed over the network, the link's reader) to the goroutine waiting
// in Next. When a processor is idle, the Go runtime wakes an OS thread for
// that, which costs about 10 µs on a virtual machine. The SetNotify hook
// runs on the delivering goroutine itself: a consumer that needs the last
// microseconds can take states there with TryNext, keeping the hook short,
// since the link reads nothing else while it runs. bench/netbench measures
// both ways.
//
// # Permissions
//
// A Listener can give each downstream link Permissions from its token
// (ListenerOptions.Authorize): which objects and tags its subtree may
// observe and expose. A contract outside them is refused by the upstream;
// the contract that asked then reports StatusRefused, and its Next returns
// an error wrapping ErrRefused once (it stays open until closed).
//
// # Ownership
//
// A state passed to Send belongs to the exchange; states handed to
// observers are shared and read-only. Every Exchange must be closed: it owns
// one goroutine. All methods are safe for concurrent use.
package core
