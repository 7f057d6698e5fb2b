package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hakuban/hakuban/core/internal/wire"
)

func TestPermissionsMatching(t *testing.T) {
	a, b, c := MustTagDescriptor("a"), MustTagDescriptor("b"), MustTagDescriptor(map[string]any{"room": 12})
	listed := MustObjectDescriptor("listed", b)
	p := NewPermissions("alice",
		Grant{Tags: []TagDescriptor{a, c}, Objects: []ObjectDescriptor{listed}},
		Grant{Objects: []ObjectDescriptor{listed}})
	cases := []struct {
		name string
		got  bool
		want bool
	}{
		{"observe an object carrying a listed tag", p.MayObserveObject(MustObjectDescriptor("x", a)), true},
		{"observe an object with a listed tag among others", p.MayObserveObject(MustObjectDescriptor("x", b, c)), true},
		{"observe an object without listed tags", p.MayObserveObject(MustObjectDescriptor("x", b)), false},
		{"observe an untagged object", p.MayObserveObject(MustObjectDescriptor("x")), false},
		{"observe a listed object", p.MayObserveObject(listed), true},
		{"observe the listed value with another tag set", p.MayObserveObject(MustObjectDescriptor("listed")), false},
		{"observe a listed tag", p.MayObserveTag(a), true},
		{"observe a listed tag, by value", p.MayObserveTag(MustTagDescriptor(map[string]any{"room": 12})), true},
		{"observe an unlisted tag", p.MayObserveTag(b), false},
		{"expose a listed object", p.MayExposeObject(listed), true},
		{"expose an object carrying an observe-only tag", p.MayExposeObject(MustObjectDescriptor("x", a)), false},
		{"expose a tag", p.MayExposeTag(b), false},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	all := NewPermissions("", Grant{All: true}, Grant{})
	if !all.MayObserveObject(MustObjectDescriptor("anything")) || !all.MayObserveTag(b) || all.MayExposeObject(listed) || all.MayExposeTag(a) {
		t.Error("Grant{All: true} for observe only")
	}
	var none *Permissions
	if !none.MayObserveObject(listed) || !none.MayExposeTag(a) || none.Name() != "" {
		t.Error("nil permissions must allow everything")
	}
	if p.Name() != "alice" {
		t.Errorf("Name %q", p.Name())
	}
}

// nextErr waits for c's next event and returns its error (failing the test
// when an event arrives instead).
func nextErr[T any](t *testing.T, next func(context.Context) (T, error)) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := next(ctx)
	if err == nil {
		t.Fatalf("got %v, want an error", v)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("no refusal within 10 s")
	}
	return err
}

// wantRefused checks that err reports a refusal with the router's reason.
func wantRefused(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrRefused) || ErrorCode(err) != CodeRefused || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("got %v, want a permission refusal wrapping ErrRefused", err)
	}
}

func contractStatus(ex *Exchange, id uint64) string {
	for _, c := range ex.Snapshot().Contracts {
		if c.ID == id {
			return c.Status
		}
	}
	return "missing"
}

func randomData(rnd *rand.Rand, n int) []byte {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	return data
}

// TestLinkPermissions: a client allowed to observe tag "a" only, behind a
// router whose other clients expose and observe everything.
func TestLinkPermissions(t *testing.T) {
	tagA, tagB := MustTagDescriptor("a"), MustTagDescriptor("b")
	perms := NewPermissions("reader-a", Grant{Tags: []TagDescriptor{tagA}}, Grant{})
	for _, k := range transportKinds {
		t.Run(k.name, func(t *testing.T) {
			router := newTestExchange(t, "router")
			client := newTestExchange(t, "client")
			exposer := newTestExchange(t, "exposer")
			other := newTestExchange(t, "other")
			timing := linkTiming{pingInterval: time.Second, pingTimeout: 5 * time.Second}
			for _, down := range []*Exchange{client, exposer, other} {
				p := (*Permissions)(nil)
				if down == client {
					p = perms
				}
				a, b := k.pair(t, timing)
				runLinkPairAs(t, a, b, router, down, wire.AllFeatures, p)
			}
			allowed := MustObjectDescriptor("allowed", tagA)
			secret := MustObjectDescriptor("secret", tagB)
			expAllowed, _ := exposer.ExposeObject(allowed, 1)
			expSecret, _ := exposer.ExposeObject(secret, 1)
			otherObs, _ := other.ObserveObject(secret)

			// Observing an allowed object works.
			obs, err := client.ObserveObject(allowed)
			if err != nil {
				t.Fatal(err)
			}
			sinkAllowed := nextSink(t, expAllowed)
			sinkAllowed.Send(ObjectState{Version: Version{1}, Data: []byte("hello")})
			if st := nextState(t, obs); string(st.Data) != "hello" {
				t.Fatalf("allowed object: %q", st.Data)
			}

			// Observing a disallowed one is refused, once, and stays so.
			refused, _ := client.ObserveObject(secret)
			wantRefused(t, nextErr(t, refused.Next))
			if st := refused.Status(); st != StatusRefused {
				t.Fatalf("status %v, want refused", st)
			}
			if s := contractStatus(client, refused.ID()); s != "refused" {
				t.Fatalf("snapshot status %q", s)
			}
			if _, ok, err := refused.TryNext(); ok || err != nil {
				t.Fatalf("refusal reported twice: %v %v", ok, err)
			}
			// A second contract on the same object is refused at once.
			again, _ := client.ObserveObject(secret)
			if again.Status() != StatusRefused {
				t.Fatalf("second contract: %v", again.Status())
			}
			_, _, err = again.TryNext()
			wantRefused(t, err)

			// The secret object is live (another client observes it) and
			// busy, yet none of its states reaches the client.
			sinkSecret := nextSink(t, expSecret)
			rnd := rand.New(rand.NewPCG(3, 4))
			for i := range 10 {
				sinkSecret.Send(ObjectState{Version: Version{int64(i + 1)}, Data: randomData(rnd, 1000)})
			}
			nextStateWhere(t, otherObs, func(s ObjectState) bool { return s.Version.Compare(Version{10}) == 0 })
			// A later state of the allowed object follows any secret state
			// on the client's link.
			sinkAllowed.Send(ObjectState{Version: Version{2}, Data: []byte("world")})
			nextStateWhere(t, obs, func(s ObjectState) bool { return string(s.Data) == "world" })
			if in := client.linkBytesIn(); in > 1000 {
				t.Fatalf("the client received %d bytes: the secret object's states leaked", in)
			}
			if _, ok := refused.Current(); ok {
				t.Fatal("the refused contract holds a state")
			}

			// Tags: observing tag "a" is allowed, tag "b" refused.
			tagObs, _ := client.ObserveTag(tagA)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if ev, err := tagObs.Next(ctx); err != nil || !ev.Descriptor.Equal(allowed) {
				t.Fatalf("tag observer: %v %v", ev.Descriptor, err)
			}
			tagRefused, _ := client.ObserveTag(tagB)
			wantRefused(t, nextErr(t, tagRefused.Next))
			if tagRefused.Status() != StatusRefused {
				t.Fatalf("tag status %v", tagRefused.Status())
			}

			// Exposing is not allowed at all: the router never assigns the
			// client, though another client observes the object.
			exp2, _ := client.ExposeObject(MustObjectDescriptor("wanted", tagA), 1)
			wantRefused(t, nextErr(t, exp2.Next))
			otherWanted, _ := other.ObserveObject(MustObjectDescriptor("wanted", tagA))
			tagExp, _ := client.ExposeTag(tagA, 1)
			wantRefused(t, nextErr(t, tagExp.Next))
			if exp2.Status() != StatusRefused || tagExp.Status() != StatusRefused {
				t.Fatalf("expose statuses %v %v", exp2.Status(), tagExp.Status())
			}
			// Counted before each Error was sent: observe secret, observe
			// tag b, expose wanted, expose tag a (the second contract on
			// secret declared nothing new).
			if n := router.Snapshot().Counters.RefusedContracts; n != 4 {
				t.Fatalf("the router counted %d refused contracts, want 4", n)
			}
			for _, o := range router.Snapshot().Objects {
				if o.Descriptor.Equal(otherWanted.Descriptor()) && (o.Candidates != 0 || o.Exposer != 0) {
					t.Fatalf("the router made the refused exposer a candidate: %+v", o)
				}
			}
			if st := otherWanted.Status(); st != StatusWaitingForExposer {
				t.Fatalf("the other observer's status %v", st)
			}
			// The link stayed up: the allowed object still flows.
			sinkAllowed.Send(ObjectState{Version: Version{3}, Data: []byte("still")})
			nextStateWhere(t, obs, func(s ObjectState) bool { return string(s.Data) == "still" })
		})
	}
}

// TestLinkForgedWriteRefused: a raw client that may expose nothing writes a
// State for an object anyway; the router answers "permission denied"
// without decoding it and keeps the link.
func TestLinkForgedWriteRefused(t *testing.T) {
	router := newTestExchange(t, "router")
	a, b := chanPair()
	done := make(chan error, 1)
	perms := NewPermissions("nobody", Grant{}, Grant{})
	go func() {
		done <- router.runLink(context.Background(), a, roleDownstream, linkPeer{Name: "raw", Perms: perms})
	}()
	t.Cleanup(func() { a.CloseNow(); <-done })
	frame := wire.Append(nil, &wire.DeclareObject{ID: 1, JSON: []byte(`"x"`)})
	frame = wire.Append(frame, &wire.ObjectExpose{Object: 1, Capacity: 1})
	// A delta against a base the router may hold: never decoded.
	frame = wire.Append(frame, &wire.State{Object: 1, Version: []int64{2}, Encoding: wire.EncodingDelta, Base: []int64{1}, Size: 3, Data: []byte{1, 2, 3}})
	b.out <- frame
	// One denial for the declaration, one for the write.
	denied := 0
	readUntil(t, b, func(m wire.Message) bool {
		if e, ok := m.(*wire.Error); ok && e.Code == wire.ErrorPermissionDenied && e.Contract == wire.ContractObjectExpose && e.Ref == 1 {
			denied++
		}
		return denied == 2
	})
	select {
	case err := <-done:
		t.Fatalf("the link ended: %v", err)
	default:
	}
	if n := router.Snapshot().Counters.RefusedContracts; n != 1 {
		t.Fatalf("refused contracts %d, want 1", n)
	}
}

// TestLinkRefusalReachesLeaf: leaf → a → b, where b refuses what a
// declares for the leaf. The leaf's contract is refused with b's reason; a
// reconnect with wider permissions lifts the refusal.
func TestLinkRefusalReachesLeaf(t *testing.T) {
	public, private := MustTagDescriptor("public"), MustTagDescriptor("private")
	b := newTestExchange(t, "b")
	a := newTestExchange(t, "a")
	leaf := newTestExchange(t, "leaf")
	exposer := newTestExchange(t, "exposer")
	testLink(t, b, exposer)
	aLink := func(perms *Permissions) func() {
		x, y := chanPair()
		return runLinkPairAs(t, x, y, b, a, 0, perms)
	}
	breakAB := aLink(NewPermissions("router-a", Grant{Tags: []TagDescriptor{public}}, Grant{}))
	testLink(t, a, leaf)

	pub := MustObjectDescriptor("pub", public)
	priv := MustObjectDescriptor("priv", private)
	expPub, _ := exposer.ExposeObject(pub, 1)
	expPriv, _ := exposer.ExposeObject(priv, 1)
	obsPub, _ := leaf.ObserveObject(pub)
	obsPriv, _ := leaf.ObserveObject(priv)
	local, _ := a.ObserveObject(priv) // a's own contract joins the same declaration

	err := nextErr(t, obsPriv.Next)
	wantRefused(t, err)
	if !strings.Contains(err.Error(), `"router-a"`) {
		t.Fatalf("the leaf's error lacks the router's reason: %v", err)
	}
	wantRefused(t, nextErr(t, local.Next))
	if obsPriv.Status() != StatusRefused || local.Status() != StatusRefused {
		t.Fatalf("statuses %v %v", obsPriv.Status(), local.Status())
	}
	sink := nextSink(t, expPub)
	sink.Send(ObjectState{Data: []byte("public data")})
	if st := nextState(t, obsPub); string(st.Data) != "public data" {
		t.Fatalf("allowed object: %q", st.Data)
	}

	// b's operator allows a everything; a reconnects and declares again.
	breakAB()
	aLink(nil)
	sinkPriv := nextSink(t, expPriv)
	sinkPriv.Send(ObjectState{Data: []byte("now allowed")})
	if st := nextStateWhere(t, obsPriv, func(s ObjectState) bool { return s.Synchronized }); string(st.Data) != "now allowed" {
		t.Fatalf("after the reconnect: %q", st.Data)
	}
	if st := obsPriv.Status(); st != StatusActive {
		t.Fatalf("status after the reconnect %v, want active", st)
	}
}

// TestListenerAuthorize: the listener gives each link the permissions of
// its token; an unknown token is refused at the handshake.
func TestListenerAuthorize(t *testing.T) {
	router := netExchange(t, "router")
	open := MustTagDescriptor("open")
	l := testListener(t, router, func(o *ListenerOptions) {
		o.Authorize = func(token []byte) (*Permissions, error) {
			if string(token) != "reader" {
				return nil, errors.New("unknown token")
			}
			return NewPermissions("reader", Grant{Tags: []TagDescriptor{open}}, Grant{}), nil
		}
	})
	intruder := netExchange(t, "intruder")
	o := fastConnector(l.URL())
	o.Token = []byte("guess")
	c := testConnect(t, intruder, o)
	waitStatus(t, c, "refused", func(s ConnectorStatus) bool { return s.State == ConnectorRefused })

	reader := netExchange(t, "reader")
	o.Token = []byte("reader")
	testConnect(t, reader, o)
	obs, _ := reader.ObserveObject(MustObjectDescriptor("closed"))
	wantRefused(t, nextErr(t, obs.Next))
	if !strings.Contains(obs.Status().String(), "refused") {
		t.Fatalf("status %v", obs.Status())
	}
}

// TestListenerReauthorize: new rules for open links apply at once.
// Contracts they no longer allow end as refused ones (the downstream hears
// why, loses their assignments and feeds); the rest keeps working; a token
// no longer accepted closes its link with 4002, which is not retried.
func TestListenerReauthorize(t *testing.T) {
	tagA, tagB := MustTagDescriptor("a"), MustTagDescriptor("b")
	var rules atomic.Pointer[map[string]*Permissions]
	set := func(m map[string]*Permissions) { rules.Store(&m) }
	all := NewPermissions("exposer", Grant{All: true}, Grant{All: true})
	set(map[string]*Permissions{
		"exposer": all,
		"reader":  NewPermissions("reader", Grant{Tags: []TagDescriptor{tagA, tagB}}, Grant{Tags: []TagDescriptor{tagB}}),
	})
	router := netExchange(t, "router")
	l := testListener(t, router, func(o *ListenerOptions) {
		o.Authorize = func(token []byte) (*Permissions, error) {
			if p, ok := (*rules.Load())[string(token)]; ok {
				return p, nil
			}
			return nil, errors.New("unknown token")
		}
	})
	connect := func(name, token string) (*Exchange, *Connector) {
		ex := netExchange(t, name)
		o := fastConnector(l.URL())
		o.Token = []byte(token)
		c := testConnect(t, ex, o)
		waitStatus(t, c, "connected", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
		return ex, c
	}
	exposer, exposerConn := connect("exposer", "exposer")
	reader, readerConn := connect("reader", "reader")

	objA, objB, objC := MustObjectDescriptor("A", tagA), MustObjectDescriptor("B", tagB), MustObjectDescriptor("C", tagB)
	expA, _ := exposer.ExposeObject(objA, 1)
	expB, _ := exposer.ExposeObject(objB, 1)
	obsA, _ := reader.ObserveObject(objA)
	obsB, _ := reader.ObserveObject(objB)
	sinkA, sinkB := nextSink(t, expA), nextSink(t, expB)
	sinkA.Send(ObjectState{Version: Version{1}, Data: []byte("a1")})
	sinkB.Send(ObjectState{Version: Version{1}, Data: []byte("b1")})
	nextStateWhere(t, obsA, func(s ObjectState) bool { return s.Synchronized })
	nextStateWhere(t, obsB, func(s ObjectState) bool { return s.Synchronized })
	// The reader exposes C, which the exposer's process observes.
	expC, _ := reader.ExposeObject(objC, 1)
	obsC, _ := exposer.ObserveObject(objC)
	sinkC := nextSink(t, expC)
	sinkC.Send(ObjectState{Version: Version{1}, Data: []byte("c1")})
	nextStateWhere(t, obsC, func(s ObjectState) bool { return s.Synchronized })

	// New rules: the reader may observe tag a only, and expose nothing.
	set(map[string]*Permissions{
		"exposer": all,
		"reader":  NewPermissions("reader", Grant{Tags: []TagDescriptor{tagA}}, Grant{}),
	})
	if closed, revoked := l.Reauthorize(); closed != 0 || revoked != 2 {
		t.Fatalf("Reauthorize: %d links closed, %d contracts revoked; want 0 and 2 (observe B, expose C)", closed, revoked)
	}
	// B: refused, its state no longer synchronized (it may arrive first).
	wantRefused(t, nextErr(t, func(ctx context.Context) (ObjectState, error) {
		for {
			st, err := obsB.Next(ctx)
			if err != nil || st.Synchronized {
				return st, err
			}
		}
	}))
	if st := obsB.Status(); st != StatusRefused {
		t.Fatalf("observe B: status %v, want refused", st)
	}
	waitFor(t, func() bool { cur, _ := obsB.Current(); return !cur.Synchronized })
	// C: the reader's assignment ends and its exposer is told why; the
	// observer of C waits for an exposer.
	waitFor(t, sinkC.Revoked)
	wantRefused(t, nextErr(t, expC.Next))
	nextStateWhere(t, obsC, func(s ObjectState) bool { return !s.Synchronized })
	waitFor(t, func() bool { return obsC.Status() == StatusWaitingForExposer })
	// A still flows, both ways of the link are up.
	sinkA.Send(ObjectState{Version: Version{2}, Data: []byte("a2")})
	if st := nextStateWhere(t, obsA, func(s ObjectState) bool { return s.Version.Compare(Version{2}) == 0 }); string(st.Data) != "a2" {
		t.Fatalf("A after the new rules: %q", st.Data)
	}
	if s := readerConn.Status(); s.State != ConnectorConnected {
		t.Fatalf("reader's connector: %v", s.State)
	}
	// Declaring B again is refused too.
	again, _ := reader.ObserveObject(MustObjectDescriptor("B2", tagB))
	wantRefused(t, nextErr(t, again.Next))

	// The reader's token goes: its link closes with 4002 and stays closed.
	set(map[string]*Permissions{"exposer": all})
	if closed, _ := l.Reauthorize(); closed != 1 {
		t.Fatalf("Reauthorize closed %d links, want 1", closed)
	}
	st := waitStatus(t, readerConn, "refused", func(s ConnectorStatus) bool { return s.State == ConnectorRefused })
	if st.LastError == nil || !strings.Contains(st.LastError.Error(), "unknown token") || !strings.Contains(st.LastError.Error(), "4002") {
		t.Fatalf("reader's connector error: %v", st.LastError)
	}
	// The exposer's link was not touched.
	if s := exposerConn.Status(); s.State != ConnectorConnected || s.Connects != 1 {
		t.Fatalf("exposer's connector: %v after %d sessions", s.State, s.Connects)
	}
}

// TestListenerReauthorizeTags: revoking tag rights ends the tag contracts
// as refused, the objects they fed go away (Gone), and the assignments a
// tag expose contract held are revoked.
func TestListenerReauthorizeTags(t *testing.T) {
	tagB := MustTagDescriptor("b")
	all := NewPermissions("all", Grant{All: true}, Grant{All: true})
	var readerPerms atomic.Pointer[Permissions]
	readerPerms.Store(NewPermissions("reader", Grant{Tags: []TagDescriptor{tagB}}, Grant{Tags: []TagDescriptor{tagB}}))
	router := netExchange(t, "router")
	l := testListener(t, router, func(o *ListenerOptions) {
		o.Authorize = func(token []byte) (*Permissions, error) {
			if string(token) == "reader" {
				return readerPerms.Load(), nil
			}
			return all, nil
		}
	})
	connect := func(name string) *Exchange {
		ex := netExchange(t, name)
		o := fastConnector(l.URL())
		o.Token = []byte(name)
		c := testConnect(t, ex, o)
		waitStatus(t, c, "connected", func(s ConnectorStatus) bool { return s.State == ConnectorConnected })
		return ex
	}
	other, reader := connect("other"), connect("reader")

	objB, objD := MustObjectDescriptor("B", tagB), MustObjectDescriptor("D", tagB)
	expB, _ := other.ExposeObject(objB, 1)
	keepB, _ := other.ObserveObject(objB) // B stays live
	tagObs, _ := reader.ObserveTag(tagB)
	sinkB := nextSink(t, expB)
	sinkB.Send(ObjectState{Version: Version{1}, Data: []byte("b1")})
	nextState(t, keepB)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		ev, err := tagObs.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Descriptor.Equal(objB) && ev.State.Synchronized {
			break
		}
	}
	tagExp, _ := reader.ExposeTag(tagB, 1)
	obsD, _ := other.ObserveObject(objD)
	sinkD := nextSink(t, tagExp)
	sinkD.Send(ObjectState{Version: Version{1}, Data: []byte("d1")})
	nextStateWhere(t, obsD, func(s ObjectState) bool { return s.Synchronized })

	readerPerms.Store(NewPermissions("reader", Grant{}, Grant{}))
	if _, revoked := l.Reauthorize(); revoked != 2 {
		t.Fatalf("revoked %d contracts, want 2 (observe and expose tag b)", revoked)
	}
	// The tag observer hears that B is gone here, and why.
	var gone, refused bool
	for !gone || !refused {
		ev, err := tagObs.Next(ctx)
		switch {
		case err != nil:
			wantRefused(t, err)
			refused = true
		case ev.Gone && ev.Descriptor.Equal(objB):
			gone = true
		}
	}
	// D's assignment ends; D waits for an exposer; B's other observer is
	// not affected.
	waitFor(t, sinkD.Revoked)
	wantRefused(t, nextErr(t, tagExp.Next))
	waitFor(t, func() bool { return obsD.Status() == StatusWaitingForExposer })
	sinkB.Send(ObjectState{Version: Version{2}, Data: []byte("b2")})
	nextStateWhere(t, keepB, func(s ObjectState) bool { return s.Version.Compare(Version{2}) == 0 })
}

// TestRefusalNamesLongDescriptors: the refusal a client reads names the
// whole descriptor it was refused, also when that is longer than a close
// reason (123 bytes).
func TestRefusalNamesLongDescriptors(t *testing.T) {
	router := newTestExchange(t, "router")
	client := newTestExchange(t, "client")
	a, b := chanPair()
	runLinkPairAs(t, a, b, router, client, wire.AllFeatures, NewPermissions("nobody", Grant{}, Grant{}))
	long := MustObjectDescriptor(map[string]any{"room": strings.Repeat("very long name ", 20)})
	obs, _ := client.ObserveObject(long)
	err := nextErr(t, obs.Next)
	wantRefused(t, err)
	if !strings.Contains(err.Error(), long.String()) {
		t.Fatalf("the refusal does not name the whole descriptor (%d bytes): %v", len(long.String()), err)
	}
}
