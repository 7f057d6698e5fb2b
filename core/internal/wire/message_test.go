package wire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

type sample struct {
	name string
	msg  Message
}

// samples returns at least one message of every type, with edge values.
func samples() []sample {
	lim := DefaultLimits()
	small := Limits{MaxFrame: 200 << 10, MaxStateData: 100 << 10, MaxDescriptor: 4 << 10, MaxTagsPerObject: 8,
		MaxVersionLen: 4, MaxFormatEntries: 4, MaxFormatLen: 16, MaxObjects: 16, MaxTags: 16, MaxDepth: 8}
	return []sample{
		{"Hello", &Hello{Major: 1, Minor: 0, Name: "sensor-gw", Token: []byte("s3cret"), Features: AllFeatures, Limits: lim}},
		{"Hello/minimal", &Hello{Major: 1, Limits: small}},
		{"Hello/future", &Hello{Major: 1, Minor: 7, Name: "ünïcødé 名前", Features: 1<<40 | FeatureZstd, Limits: lim}},
		{"Welcome", &Welcome{Major: 1, Minor: 0, Name: "router", Features: AllFeatures, Limits: lim}},
		{"DeclareTag", &DeclareTag{ID: 0, JSON: []byte(`"sensors"`)}},
		{"DeclareTag/maxid", &DeclareTag{ID: math.MaxUint32, JSON: []byte(`{"room":12}`)}},
		{"ForgetTag", &ForgetTag{ID: 300}},
		{"DeclareObject", &DeclareObject{ID: 7, JSON: []byte(`{"id":12,"kind":"temperature"}`), Tags: []uint32{0, 1, 70000}}},
		{"DeclareObject/notags", &DeclareObject{ID: 8, JSON: []byte(`[1,2]`)}},
		{"ForgetObject", &ForgetObject{ID: 7}},
		{"ObjectObserve", &ObjectObserve{Object: 7}},
		{"ObjectUnobserve", &ObjectUnobserve{Object: 7}},
		{"ObjectExpose", &ObjectExpose{Object: 7, Capacity: 1}},
		{"ObjectExpose/big", &ObjectExpose{Object: 7, Capacity: math.MaxUint32}},
		{"ObjectUnexpose", &ObjectUnexpose{Object: 7}},
		{"TagObserve", &TagObserve{Tag: 1}},
		{"TagUnobserve", &TagUnobserve{Tag: 1}},
		{"TagExpose", &TagExpose{Tag: 1, Capacity: 10}},
		{"TagUnexpose", &TagUnexpose{Tag: 1}},
		{"Have", &Have{Object: 7, Version: []int64{1718000000000000, 3}}},
		{"Have/nothing", &Have{Object: 7}},
		{"ObjectLive", &ObjectLive{Object: 9}},
		{"ObjectGone", &ObjectGone{Object: 9}},
		{"ObjectUnexposed", &ObjectUnexposed{Object: 9}},
		{"ObjectExposed", &ObjectExposed{Object: math.MaxUint32}},
		{"Assign", &Assign{Object: 9, Token: 1}},
		{"Revoke", &Revoke{Object: 9, Token: math.MaxUint64}},
		{"State/raw", &State{Object: 5, Version: []int64{1, 42}, Format: []string{"JSON"}, Synchronized: true, Data: []byte(`{"t":21.5}`), Size: 10}},
		{"State/empty", &State{Object: 0, Synchronized: true}},
		{"State/stale", &State{Object: 5, Version: []int64{-1, math.MinInt64, math.MaxInt64}, Format: []string{"JSON", "custom/x-ü"},
			Age: 1500 * time.Millisecond, Data: []byte{0, 1, 2}, Size: 3}},
		{"State/token", &State{Object: 5, Version: []int64{2}, Synchronized: true, Token: 12345, Data: []byte("x"), Size: 1}},
		{"State/zstd", &State{Object: 5, Version: []int64{3}, Format: []string{"JSON"}, Synchronized: true, Encoding: EncodingZstd,
			Size: 100000, Data: []byte{0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3}}},
		{"State/delta", &State{Object: 5, Version: []int64{4}, Synchronized: false, Age: time.Hour, Token: 9, Encoding: EncodingDelta,
			Size: 1 << 20, Base: []int64{3}, Data: []byte{0x28, 0xb5, 0x2f, 0xfd, 9}}},
		{"Sync/stale", &Sync{Object: 5, Version: []int64{1, 42}, Age: 250 * time.Microsecond}},
		{"Sync/fresh", &Sync{Object: 5, Version: []int64{1, 42}, Synchronized: true}},
		{"Sync/token", &Sync{Object: 5, Synchronized: true, Token: 3}},
		{"Error", &Error{Contract: ContractTagObserve, Ref: 1, Code: ErrorPermissionDenied, Text: `not allowed to observe tag "secret"`}},
		{"Error/link", &Error{Contract: ContractNone, Code: 999, Text: strings.Repeat("é", MaxErrorText/2)}},
	}
}

// normalize makes decoded and original messages comparable: empty slices
// become nil, raw states get Size = len(Data), limits take their defaults.
func normalize(m Message) Message {
	nilIfEmpty := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	switch m := m.(type) {
	case *Hello:
		c := *m
		c.Token = nilIfEmpty(c.Token)
		c.Limits = c.Limits.WithDefaults()
		return &c
	case *Welcome:
		c := *m
		c.Limits = c.Limits.WithDefaults()
		return &c
	case *DeclareTag:
		c := *m
		c.JSON = nilIfEmpty(c.JSON)
		return &c
	case *DeclareObject:
		c := *m
		c.JSON = nilIfEmpty(c.JSON)
		if len(c.Tags) == 0 {
			c.Tags = nil
		}
		return &c
	case *Have:
		c := *m
		if len(c.Version) == 0 {
			c.Version = nil
		}
		return &c
	case *State:
		c := *m
		if len(c.Version) == 0 {
			c.Version = nil
		}
		if len(c.Format) == 0 {
			c.Format = nil
		}
		if len(c.Base) == 0 {
			c.Base = nil
		}
		c.Data = nilIfEmpty(c.Data)
		if c.Encoding == EncodingRaw {
			c.Size = len(c.Data)
			c.Base = nil
		}
		if c.Synchronized {
			c.Age = 0
		}
		c.Age = c.Age.Truncate(time.Microsecond)
		return &c
	case *Sync:
		c := *m
		if len(c.Version) == 0 {
			c.Version = nil
		}
		if c.Synchronized {
			c.Age = 0
		}
		c.Age = c.Age.Truncate(time.Microsecond)
		return &c
	}
	return m
}

func decodeOne(t *testing.T, frame []byte) Message {
	t.Helper()
	switch Type(frame[0]) {
	case TypeHello:
		m, err := DecodeHello(frame)
		if err != nil {
			t.Fatalf("DecodeHello: %v", err)
		}
		return m
	case TypeWelcome:
		m, err := DecodeWelcome(frame)
		if err != nil {
			t.Fatalf("DecodeWelcome: %v", err)
		}
		return m
	}
	msgs, err := Decode(frame, Limits{})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("Decode returned %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

func TestRoundTrip(t *testing.T) {
	seen := map[Type]bool{}
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			seen[s.msg.Type()] = true
			if err := Check(s.msg, Limits{}); err != nil {
				t.Fatalf("Check: %v", err)
			}
			frame := Append([]byte{}, s.msg)
			if len(frame) != Size(s.msg) {
				t.Fatalf("Append wrote %d bytes, Size says %d", len(frame), Size(s.msg))
			}
			if Type(frame[0]) != s.msg.Type() {
				t.Fatalf("type byte 0x%02x, want %v", frame[0], s.msg.Type())
			}
			got := decodeOne(t, frame)
			if !reflect.DeepEqual(normalize(got), normalize(s.msg)) {
				t.Fatalf("round trip changed the message:\n got  %#v\n want %#v", got, s.msg)
			}
			if again := Append(nil, got); !bytes.Equal(again, frame) {
				t.Fatalf("re-encoding gives different bytes:\n%x\n%x", again, frame)
			}
		})
	}
	for typ := range typeNames {
		if !seen[typ] {
			t.Errorf("no sample for %v", typ)
		}
	}
}

func TestSpecializedAppendMatchesAppend(t *testing.T) {
	for _, s := range samples() {
		var a, b []byte
		switch m := s.msg.(type) {
		case *State:
			a, b = AppendState(nil, m), Append(nil, m)
		case *Sync:
			a, b = AppendSync(nil, m), Append(nil, m)
		default:
			continue
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: specialized append differs", s.name)
		}
	}
}

func TestBatchedFrame(t *testing.T) {
	var frame []byte
	var want []Message
	for _, s := range samples() {
		if typ := s.msg.Type(); typ == TypeHello || typ == TypeWelcome {
			continue
		}
		frame = Append(frame, s.msg)
		want = append(want, s.msg)
	}
	msgs, err := Decode(frame, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(want))
	}
	for i := range msgs {
		if !reflect.DeepEqual(normalize(msgs[i]), normalize(want[i])) {
			t.Fatalf("message %d: got %#v, want %#v", i, msgs[i], want[i])
		}
	}

	// The streaming decoder sees the same messages.
	d, err := NewDecoder(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Reset(frame); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		m, err := d.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("Next stopped after %d messages, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalize(m), normalize(want[i])) {
			t.Fatalf("Next message %d differs", i)
		}
	}
}

func TestOptionalTypesSkipped(t *testing.T) {
	frame := Append(nil, &ObjectObserve{Object: 1})
	frame = append(frame, 0x80, 3, 'a', 'b', 'c') // unknown optional message
	frame = append(frame, 0xff, 0)                // empty unknown optional message
	frame = Append(frame, &ObjectObserve{Object: 2})
	msgs, err := Decode(frame, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[1].(*ObjectObserve).Object != 2 {
		t.Fatalf("got %#v, want the two ObjectObserve messages", msgs)
	}
}

func TestTrailingBodyBytesIgnored(t *testing.T) {
	// A later minor version may append fields to a message.
	frame := Append(nil, &Assign{Object: 3, Token: 4})
	frame[1] += 2
	frame = append(frame, 0x01, 0x02)
	frame = Append(frame, &ObjectLive{Object: 3})
	msgs, err := Decode(frame, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if a := msgs[0].(*Assign); a.Object != 3 || a.Token != 4 || len(msgs) != 2 {
		t.Fatalf("got %#v", msgs)
	}
}

func TestHandshakeRules(t *testing.T) {
	hello := Append(nil, &Hello{Major: 1, Name: "x"})
	welcome := Append(nil, &Welcome{Major: 1, Name: "y"})
	state := Append(nil, &State{Object: 1, Synchronized: true})
	cases := []struct {
		name  string
		err   error
		check func() error
	}{
		{"Hello ok", nil, func() error { _, err := DecodeHello(hello); return err }},
		{"Welcome ok", nil, func() error { _, err := DecodeWelcome(welcome); return err }},
		{"Welcome as Hello", ErrUnexpectedMessage, func() error { _, err := DecodeHello(welcome); return err }},
		{"State as Hello", ErrUnexpectedMessage, func() error { _, err := DecodeHello(state); return err }},
		{"Hello not alone", ErrUnexpectedMessage, func() error { _, err := DecodeHello(append(bytes.Clone(hello), state...)); return err }},
		{"empty", ErrMalformed, func() error { _, err := DecodeHello(nil); return err }},
		{"too large", ErrTooLarge, func() error {
			_, err := DecodeHello(Append(nil, &Hello{Major: 1, Token: make([]byte, MaxHandshakeFrame)}))
			return err
		}},
		{"token too long", ErrTooLarge, func() error {
			_, err := DecodeHello(Append(nil, &Hello{Major: 1, Token: make([]byte, MaxTokenLen+1)}))
			return err
		}},
		{"name too long", ErrTooLarge, func() error {
			_, err := DecodeHello(Append(nil, &Hello{Major: 1, Name: strings.Repeat("n", MaxNameLen+1)}))
			return err
		}},
		{"name not UTF-8", ErrMalformed, func() error {
			_, err := DecodeHello(Append(nil, &Hello{Major: 1, Name: "\xff"}))
			return err
		}},
		{"limits out of range", ErrInvalidLimits, func() error {
			_, err := DecodeWelcome(Append(nil, &Welcome{Major: 1, Limits: Limits{MaxFrame: 1000}}))
			return err
		}},
		{"Hello after handshake", ErrUnexpectedMessage, func() error { _, err := Decode(hello, Limits{}); return err }},
		{"Welcome after handshake", ErrUnexpectedMessage, func() error { _, err := Decode(welcome, Limits{}); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.check()
			if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
		})
	}
}

func TestHandshakeLimitsFewerAndMore(t *testing.T) {
	// An announcement with fewer limits than we know takes defaults for
	// the rest; one with more (a later minor) has the extras ignored.
	body := []byte{1, 0, 0, 0, 3}                                             // major 1, minor 0, name "", token "", features 3
	fewer := append(bytes.Clone(body), 2, 0x80, 0x80, 0x10, 0x80, 0x80, 0x08) // MaxFrame 256 KiB, MaxStateData 128 KiB
	h, err := DecodeHello(append([]byte{byte(TypeHello), byte(len(fewer))}, fewer...))
	if err != nil {
		t.Fatal(err)
	}
	if h.Limits.MaxFrame != 256<<10 || h.Limits.MaxStateData != 128<<10 || h.Limits.MaxDescriptor != DefaultMaxDescriptor {
		t.Fatalf("limits %+v", h.Limits)
	}
	more := append(bytes.Clone(body), appendLimits(nil, &Limits{})...)
	more[len(body)] = byte(len(limitFields) + 2)
	more = append(more, 5, 6)
	h, err = DecodeHello(append([]byte{byte(TypeHello), byte(len(more))}, more...))
	if err != nil {
		t.Fatal(err)
	}
	if h.Limits != DefaultLimits() {
		t.Fatalf("limits %+v, want the defaults", h.Limits)
	}
}

func TestNegotiate(t *testing.T) {
	if m, err := Negotiate(1, 0); err != nil || m != 0 {
		t.Fatalf("Negotiate(1, 0) = %d, %v", m, err)
	}
	if m, err := Negotiate(1, 9); err != nil || m != ProtocolMinor {
		t.Fatalf("Negotiate(1, 9) = %d, %v; want our minor", m, err)
	}
	for _, major := range []uint32{0, 2} {
		_, err := Negotiate(major, 0)
		if !errors.Is(err, ErrUnsupportedVersion) || CloseCodeFor(err) != CloseUnsupportedVersion {
			t.Fatalf("Negotiate(%d, 0): err = %v", major, err)
		}
	}
}

func TestTypeDirections(t *testing.T) {
	for typ := range typeNames {
		if typ == TypeHello || typ == TypeWelcome {
			if typ.FromDownstream() || typ.FromUpstream() {
				t.Errorf("%v allowed after the handshake", typ)
			}
			continue
		}
		if !typ.FromDownstream() && !typ.FromUpstream() {
			t.Errorf("%v allowed in no direction", typ)
		}
	}
	if TypeAssign.FromDownstream() || TypeObjectObserve.FromUpstream() || !TypeState.FromUpstream() || !TypeState.FromDownstream() {
		t.Error("wrong directions")
	}
}
