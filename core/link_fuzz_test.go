package core

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core/internal/delta"
	"github.com/hakuban/hakuban/core/internal/wire"
)

// FuzzLinkPeer plays a peer that sends a router well-formed messages in
// any order, with any ids, versions, tokens and payloads: the link's
// handling of what a peer says, past the decoders (which have fuzz targets
// of their own). The router also links an honest exposer and an honest
// observer of another object. Whatever the peer sends:
//
//   - nothing panics, and the link ends (when the peer goes) without a
//     deadlock;
//   - every frame the router sends the peer decodes;
//   - when the router closes the link itself, it gives a close code and
//     a reason;
//   - the honest pair's object moves on while a downstream peer is
//     linked, and after any peer has gone.
//
// The input is a program (fuzzPeer): its first byte picks the peer's role
// (downstream or upstream of the router), the protocol minor version and
// the permissions; each following operation is one message, in a frame of
// its own or appended to the previous one.
func FuzzLinkPeer(f *testing.F) {
	for _, seed := range fuzzPeerSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, program []byte) {
		p := parseFuzzPeer(program)
		router := newTestExchange(t, "router")
		exposer := newTestExchange(t, "exposer")
		observer := newTestExchange(t, "observer")
		testLink(t, router, exposer)
		testLink(t, router, observer)
		survivor := MustObjectDescriptor("survivor")
		exp, err := exposer.ExposeObject(survivor, 1)
		if err != nil {
			t.Fatal(err)
		}
		// Objects and tags the peer may name too.
		for _, d := range []ObjectDescriptor{fuzzTagged, MustObjectDescriptor("y")} {
			if _, err := exposer.ExposeObject(d, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := observer.ObserveObject(d); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := observer.ObserveTag(MustTagDescriptor("t")); err != nil {
			t.Fatal(err)
		}
		obs, err := observer.ObserveObject(survivor)
		if err != nil {
			t.Fatal(err)
		}
		sink := nextSink(t, exp)
		// publish sends version v of the survivor, through a new sink if
		// the one held was revoked, and waits until the observer holds it.
		publish := func(v int64) {
			t.Helper()
			for {
				err := sink.Send(ObjectState{Version: Version{v}, Data: []byte("survivor")})
				if err == nil {
					break
				}
				if !errors.Is(err, ErrRevoked) {
					t.Fatalf("sending version %d: %v", v, err)
				}
				sink = nextSink(t, exp)
			}
			// An upstream peer may refuse the router's declarations, and
			// the router passes that on: the observer hears it once, and
			// its contract goes on (PROTOCOL.md §10.5).
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for {
				st, err := obs.Next(ctx)
				if errors.Is(err, ErrRefused) && p.role == roleUpstream {
					continue
				}
				if err != nil {
					t.Fatalf("waiting for version %d: %v", v, err)
				}
				if st.Version.Compare(Version{v}) >= 0 {
					return
				}
			}
		}
		publish(1)

		a, b := peerPair()
		ended := make(chan error, 1)
		go func() {
			ended <- router.runLink(context.Background(), a, p.role, linkPeer{Name: "peer", Features: wire.AllFeatures, Minor: p.minor, Perms: p.perms})
		}()
		// What the router sends the peer must decode.
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for {
				frame, err := b.Read(context.Background())
				if err != nil {
					return
				}
				if _, err := wire.Decode(frame, wire.Limits{}.WithDefaults()); err != nil {
					t.Errorf("the router sent a frame that does not decode: %v\n%x", err, frame)
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The router reads the frames one by one, handling each before it
		// reads the next: once the last one, a harmless Error, is taken,
		// all the others are handled.
		barrier := wire.Append(nil, &wire.Error{Contract: wire.ContractNone, Text: "barrier"})
		for _, frame := range append(p.frames, barrier) {
			if err := b.Write(ctx, frame); err != nil {
				if ctx.Err() != nil {
					t.Fatal("the router stopped reading its peer")
				}
				break // the router closed the link
			}
		}
		if p.role == roleDownstream {
			// A downstream cannot name the survivor: it moves on while the
			// peer is linked. (An upstream runs the election for the
			// router's subtree: what it says may stop the survivor.)
			publish(2)
		}
		routerClosed := false
		select {
		case <-a.done: // only the router closes a
			routerClosed = true
		default:
		}
		// The peer goes away; the link must end, and the router's own
		// election take over again.
		b.CloseNow()
		select {
		case err := <-ended:
			t.Logf("%d frames; the link ended: %v (router closed it: %v, %d %q)", len(p.frames), err, routerClosed, a.closed.code, a.closed.reason)
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("the link did not end after its peer went away\n%s", buf[:runtime.Stack(buf, true)])
		}
		<-drained
		if routerClosed && (a.closed.code == 0 || a.closed.reason == "") {
			t.Errorf("the router closed the link with code %d and reason %q: want both", a.closed.code, a.closed.reason)
		}
		publish(1000) // newer than any version the peer could send
	})
}

// peerPair is chanPair where the peer's (b's) writes return only once
// the router has taken the frame.
func peerPair() (a, b *chanTransport) {
	a, b = chanPair()
	toRouter := make(chan []byte)
	a.in, b.out = toRouter, toRouter
	return a, b
}

// fuzzTagged is an object the honest exposer exposes and the peer can
// declare too: "x" with tag "t".
var fuzzTagged = MustObjectDescriptor("x", MustTagDescriptor("t"))

// Descriptors a fuzzed peer chooses from: some the honest side uses, some
// new, some invalid.
var (
	fuzzObjectJSON = [][]byte{[]byte(`"x"`), []byte(`"y"`), []byte(`"z"`), []byte(`{"a":[1,2]}`), []byte(`{"a":1,"a":2}`), []byte(`nul`), []byte(``)}
	fuzzTagJSON    = [][]byte{[]byte(`"t"`), []byte(`"u"`), []byte(`[1]`), []byte(`{`)}
)

// fuzzPeer is a parsed FuzzLinkPeer program.
type fuzzPeer struct {
	role   linkRole
	minor  uint32
	perms  *Permissions
	frames [][]byte
}

// fuzzReader hands out a program's bytes; past the end, zeros.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// id is a small id most of the time, so that messages meet; now and then
// a large one.
func (r *fuzzReader) id() uint32 {
	c := r.byte()
	if c >= 0xf0 {
		return uint32(c) << 24
	}
	return uint32(c % 5)
}

func (r *fuzzReader) small() uint64 { return uint64(r.byte() % 5) }

func (r *fuzzReader) version() []int64 {
	v := make([]int64, r.byte()%3)
	for i := range v {
		v[i] = int64(int8(r.byte()))
	}
	return v
}

func (r *fuzzReader) data() []byte {
	n := int(r.byte() % 16)
	if n > len(r.b) {
		n = len(r.b)
	}
	d := bytes.Clone(r.b[:n])
	r.b = r.b[n:]
	return d
}

func (r *fuzzReader) pick(list [][]byte) []byte { return list[int(r.byte())%len(list)] }

// parseFuzzPeer turns a program into the peer's set-up and frames.
func parseFuzzPeer(program []byte) fuzzPeer {
	r := &fuzzReader{b: program}
	head := r.byte()
	p := fuzzPeer{role: roleDownstream, minor: wire.ProtocolMinor}
	if head&1 != 0 {
		p.role = roleUpstream
	}
	if head&2 != 0 {
		p.minor = 0
	}
	if head&4 != 0 && p.role == roleDownstream {
		// May observe tag "t" and expose "y" only.
		p.perms = NewPermissions("fuzz", Grant{Tags: []TagDescriptor{MustTagDescriptor("t")}}, Grant{Objects: []ObjectDescriptor{MustObjectDescriptor("y")}})
	}
	var frame []byte
	for len(r.b) > 0 && len(p.frames) < 64 {
		op := r.byte()
		if op&0x80 == 0 && len(frame) > 0 {
			p.frames = append(p.frames, frame)
			frame = nil
		}
		if m := r.message(op & 0x7f); m != nil {
			frame = wire.Append(frame, m)
		} else {
			frame = append(frame, r.data()...) // raw bytes
		}
	}
	if len(frame) > 0 {
		p.frames = append(p.frames, frame)
	}
	return p
}

// message reads the fields of message kind k; nil means raw bytes.
func (r *fuzzReader) message(k byte) wire.Message {
	switch k % 24 {
	case 0:
		return &wire.DeclareTag{ID: r.id(), JSON: r.pick(fuzzTagJSON)}
	case 1:
		return &wire.ForgetTag{ID: r.id()}
	case 2:
		m := &wire.DeclareObject{ID: r.id(), JSON: r.pick(fuzzObjectJSON)}
		for range r.byte() % 3 {
			m.Tags = append(m.Tags, r.id())
		}
		return m
	case 3:
		return &wire.ForgetObject{ID: r.id()}
	case 4:
		return &wire.ObjectObserve{Object: r.id()}
	case 5:
		return &wire.ObjectUnobserve{Object: r.id()}
	case 6:
		return &wire.ObjectExpose{Object: r.id(), Capacity: uint32(r.small())}
	case 7:
		return &wire.ObjectUnexpose{Object: r.id()}
	case 8:
		return &wire.TagObserve{Tag: r.id()}
	case 9:
		return &wire.TagUnobserve{Tag: r.id()}
	case 10:
		return &wire.TagExpose{Tag: r.id(), Capacity: uint32(r.small())}
	case 11:
		return &wire.TagUnexpose{Tag: r.id()}
	case 12:
		return &wire.Have{Object: r.id(), Version: r.version()}
	case 13:
		return &wire.ObjectLive{Object: r.id()}
	case 14:
		return &wire.ObjectGone{Object: r.id()}
	case 15:
		return &wire.ObjectUnexposed{Object: r.id()}
	case 16:
		return &wire.ObjectExposed{Object: r.id()}
	case 17:
		return &wire.Assign{Object: r.id(), Token: r.small()}
	case 18:
		return &wire.Revoke{Object: r.id(), Token: r.small()}
	case 19:
		return r.state()
	case 20:
		flags := r.byte()
		return &wire.Sync{Object: r.id(), Version: r.version(), Synchronized: flags&1 != 0, Age: time.Duration(flags>>1) * time.Millisecond, Token: r.small()}
	case 21:
		return &wire.Error{Contract: wire.ContractKind(r.byte() % 6), Ref: r.id(), Code: wire.ErrorCode(r.byte() % 8), Text: string(r.data())}
	case 22:
		return &wire.Hello{Major: wire.ProtocolMajor, Name: "again"}
	}
	return nil
}

// state reads a State: raw, or zstd and delta payloads, each either made
// by the real encoder (so that they decode) or raw bytes (so that they
// do not).
func (r *fuzzReader) state() *wire.State {
	flags := r.byte()
	m := &wire.State{
		Object:       r.id(),
		Version:      r.version(),
		Synchronized: flags&1 != 0,
		Token:        r.small(),
		Encoding:     wire.Encoding((flags >> 1) % 3),
	}
	if !m.Synchronized {
		m.Age = time.Duration(r.byte()) * time.Millisecond
	}
	if flags&0x20 != 0 {
		m.Format = []string{string(r.pick([][]byte{[]byte("json"), []byte("gzip"), []byte("")}))}
	}
	data := r.data()
	real := flags&0x40 != 0
	switch m.Encoding {
	case wire.EncodingRaw:
		m.Data = data
	case wire.EncodingZstd:
		m.Size, m.Data = len(data), data
		if real {
			m.Data = delta.Compress(nil, data)
		}
	case wire.EncodingDelta:
		m.Base = r.version()
		from := r.data()
		m.Size, m.Data = len(data), data
		if real {
			m.Data = delta.Encode(nil, from, data)
		}
	}
	if flags&0x80 != 0 {
		m.Size = int(r.byte()) // a size that may lie
	}
	return m
}

// fuzzPeerSeeds are programs for the seed corpus (op bytes: message kind,
// 0x80 to share the previous frame; then the fields, as message reads
// them).
var fuzzPeerSeeds = [][]byte{
	// Downstream: declare "x" with tag "t", observe it, expose it.
	{0x00, 0, 1, 0, 0x82, 1, 0, 1, 1, 4, 1, 6, 1, 3},
	// Downstream: expose "y" with capacity 4, then send states with tokens.
	{0x00, 2, 1, 1, 0, 6, 1, 4, 19, 0x41, 1, 1, 1, 1, 4, 'd', 'a', 't', 'a', 19, 0x43, 1, 1, 2, 2, 4, 'z', 's', 't', 'd'},
	// Upstream: declare "x", say it is live, assign it, send a delta.
	{0x01, 2, 1, 0, 0, 13, 1, 17, 1, 1, 19, 0x45, 1, 1, 3, 0, 5, 'h', 'e', 'l', 'l', 'o', 1, 2, 3, 'h', 'e', 'l'},
	// Upstream: live, unexposed, exposed, gone, forget, at minor 0.
	{0x03, 2, 2, 1, 0, 13, 2, 15, 2, 16, 2, 14, 2, 3, 2},
	// Downstream with permissions: observe "z", expose tag "u".
	{0x04, 2, 3, 2, 0, 4, 3, 0, 1, 1, 10, 1, 2},
	// A second Hello in the middle, and raw bytes.
	{0x00, 22, 23, 4, 1, 2, 3, 4},
	// Errors and syncs about undeclared objects.
	{0x01, 21, 1, 2, 3, 3, 'b', 'a', 'd', 20, 1, 1, 1, 0, 7},
}
