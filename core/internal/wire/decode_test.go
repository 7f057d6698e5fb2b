package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// decodeAny decodes a frame with the decoder its first message calls for.
func decodeAny(frame []byte, l Limits) ([]Message, error) {
	if len(frame) > 0 {
		switch Type(frame[0]) {
		case TypeHello:
			m, err := DecodeHello(frame)
			return []Message{m}, err
		case TypeWelcome:
			m, err := DecodeWelcome(frame)
			return []Message{m}, err
		}
	}
	return Decode(frame, l)
}

func isDecodeError(err error) bool {
	for _, s := range []error{ErrMalformed, ErrTooLarge, ErrUnknownMessage, ErrUnexpectedMessage, ErrInvalidLimits} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// TestTruncatedFrames cuts every one-message frame at every byte: each
// prefix must fail cleanly.
func TestTruncatedFrames(t *testing.T) {
	for _, s := range samples() {
		frame := Append(nil, s.msg)
		for n := 0; n < len(frame); n++ {
			_, err := decodeAny(frame[:n], Limits{})
			if err == nil || !isDecodeError(err) {
				t.Fatalf("%s cut to %d of %d bytes: err = %v, want a decode error", s.name, n, len(frame), err)
			}
		}
	}
}

// TestTruncatedBodies cuts every body at every byte and fixes the length
// prefix, so that the body itself is short: each must fail.
func TestTruncatedBodies(t *testing.T) {
	for _, s := range samples() {
		body := s.msg.appendBody(nil)
		for n := 0; n < len(body); n++ {
			frame := append([]byte{byte(s.msg.Type())}, binary.AppendUvarint(nil, uint64(n))...)
			frame = append(frame, body[:n]...)
			_, err := decodeAny(frame, Limits{})
			if err == nil || !isDecodeError(err) {
				t.Fatalf("%s with body cut to %d of %d bytes: err = %v, want a decode error", s.name, n, len(body), err)
			}
		}
	}
}

// TestHugeLengthsFailBeforeAllocating claims 4 GiB and more in every length
// or count field; decoding must fail without allocating for the claim.
func TestHugeLengthsFailBeforeAllocating(t *testing.T) {
	huge := []uint64{1 << 32, 1<<63 - 1, 1<<64 - 1, 100000}
	type build func(n uint64) []byte
	msg := func(t Type, parts ...[]byte) []byte {
		body := bytes.Join(parts, nil)
		return append(append([]byte{byte(t)}, binary.AppendUvarint(nil, uint64(len(body)))...), body...)
	}
	uv := func(x uint64) []byte { return binary.AppendUvarint(nil, x) }
	cases := map[string]build{
		"frame body length": func(n uint64) []byte { return append([]byte{byte(TypeState)}, uv(n)...) },
		"descriptor":        func(n uint64) []byte { return msg(TypeDeclareTag, uv(1), uv(n), []byte("x")) },
		"tag count":         func(n uint64) []byte { return msg(TypeDeclareObject, uv(1), uv(1), []byte("1"), uv(n), uv(0)) },
		"version count":     func(n uint64) []byte { return msg(TypeHave, uv(1), uv(n), uv(0)) },
		"format count":      func(n uint64) []byte { return msg(TypeState, uv(1), []byte{0}, uv(0), uv(n), uv(1), []byte("J")) },
		"format entry":      func(n uint64) []byte { return msg(TypeState, uv(1), []byte{0}, uv(0), uv(1), uv(n), []byte("J")) },
		"state data":        func(n uint64) []byte { return msg(TypeState, uv(1), []byte{0}, uv(0), uv(0), uv(n), []byte("d")) },
		"state size": func(n uint64) []byte {
			return msg(TypeState, uv(1), []byte{4}, uv(0), uv(0), uv(n), uv(1), []byte("d"))
		},
		"error text":   func(n uint64) []byte { return msg(TypeError, []byte{0}, uv(0), uv(0), uv(n), []byte("e")) },
		"hello token":  func(n uint64) []byte { return msg(TypeHello, uv(1), uv(0), uv(0), uv(n), []byte("t")) },
		"hello limits": func(n uint64) []byte { return msg(TypeHello, uv(1), uv(0), uv(0), uv(0), uv(0), uv(n), uv(1)) },
	}
	for name, b := range cases {
		for _, n := range huge {
			if name == "state size" && n < 1<<32 {
				continue // a valid size: it allocates nothing anyway
			}
			frame := b(n)
			var err error
			allocs := testing.AllocsPerRun(5, func() { _, err = decodeAny(frame, Limits{}) })
			if err == nil || !isDecodeError(err) {
				t.Fatalf("%s = %d: err = %v, want a decode error", name, n, err)
			}
			var ms1, ms2 runtime.MemStats
			runtime.ReadMemStats(&ms1)
			decodeAny(frame, Limits{})
			runtime.ReadMemStats(&ms2)
			if grew := ms2.TotalAlloc - ms1.TotalAlloc; grew > 4096 {
				t.Fatalf("%s = %d: allocated %d bytes (%.0f allocations) to reject a %d-byte frame", name, n, grew, allocs, len(frame))
			}
		}
	}
}

// TestAllocationBound decodes worst-case frames (the smallest messages, the
// longest lists of one-byte items) and checks that memory stays within the
// documented multiple of the frame size.
func TestAllocationBound(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	l := DefaultLimits()
	frames := map[string][]byte{}
	var b []byte
	for len(b) < 60000 {
		b = Append(b, &ForgetTag{ID: 0})
	}
	frames["tiny messages"] = b
	b = nil
	for len(b) < 60000 {
		b = Append(b, &State{Synchronized: true})
	}
	frames["empty states"] = b
	b = nil
	for len(b) < 60000 {
		b = Append(b, &Have{Version: make([]int64, l.MaxVersionLen)})
	}
	frames["one-byte versions"] = b
	b = nil
	formats := make([]string, l.MaxFormatEntries)
	for i := range formats {
		formats[i] = "q"
	}
	for len(b) < 60000 {
		b = Append(b, &State{Synchronized: true, Format: formats})
	}
	frames["one-byte formats"] = b
	b = nil
	for len(b) < 60000 {
		b = Append(b, &DeclareObject{JSON: []byte("1"), Tags: make([]uint32, l.MaxTagsPerObject)})
	}
	frames["one-byte tags"] = b

	for name, frame := range frames {
		var ms1, ms2 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		msgs, err := Decode(frame, l)
		runtime.ReadMemStats(&ms2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ratio := float64(ms2.TotalAlloc-ms1.TotalAlloc) / float64(len(frame))
		t.Logf("%s: %d messages, %.1f bytes allocated per frame byte", name, len(msgs), ratio)
		if ratio > 32 {
			t.Errorf("%s: %.1f bytes allocated per frame byte, documented bound 32", name, ratio)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	l := DefaultLimits()
	frame := func(typ Type, body ...byte) []byte {
		return append([]byte{byte(typ), byte(len(body))}, body...)
	}
	overMaxID := binary.AppendUvarint(nil, 1<<32)
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty frame", nil, ErrMalformed},
		{"unknown type 0x00", frame(0x00), ErrUnknownMessage},
		{"unknown type 0x7f", frame(0x7f, 1, 2), ErrUnknownMessage},
		{"unknown type 0x03", frame(0x03), ErrUnknownMessage},
		{"length varint overflow", []byte{byte(TypeObjectLive), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ErrMalformed},
		{"length past frame end", []byte{byte(TypeObjectLive), 5, 1}, ErrMalformed},
		{"id over 2^32-1", append([]byte{byte(TypeObjectLive), byte(len(overMaxID))}, overMaxID...), ErrMalformed},
		{"id varint overflow", frame(TypeObjectLive, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), ErrMalformed},
		{"capacity 0", frame(TypeObjectExpose, 1, 0), ErrMalformed},
		{"tag capacity 0", frame(TypeTagExpose, 1, 0), ErrMalformed},
		{"assign token 0", frame(TypeAssign, 1, 0), ErrMalformed},
		{"revoke token 0", frame(TypeRevoke, 1, 0), ErrMalformed},
		{"state token flag with token 0", frame(TypeState, 1, flagToken, 0, 0, 0, 0), ErrMalformed},
		{"state reserved flag", frame(TypeState, 1, 0x10, 0, 0, 0), ErrMalformed},
		{"state encoding 3", frame(TypeState, 1, 0x0c, 0, 0, 0), ErrMalformed},
		{"state zstd without data", frame(TypeState, 1, 0x04, 0, 0, 5, 0), ErrMalformed},
		{"sync reserved flag", frame(TypeSync, 1, 0x04, 0), ErrMalformed},
		{"format not UTF-8", frame(TypeState, 1, 0, 0, 1, 1, 0xff, 0), ErrMalformed},
		{"error text not UTF-8", frame(TypeError, 0, 0, 0, 1, 0xc3), ErrMalformed},
		{"error unknown contract", frame(TypeError, 9, 0, 0, 0), ErrMalformed},
		{"empty descriptor", frame(TypeDeclareTag, 1, 0), ErrMalformed},
		{"frame over MaxFrame", make([]byte, l.MaxFrame+1), ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.frame, l)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.want == ErrTooLarge && CloseCodeFor(err) != CloseLimitExceeded ||
				c.want != ErrTooLarge && CloseCodeFor(err) != CloseProtocolViolation {
				t.Fatalf("close code %v for %v", CloseCodeFor(err), err)
			}
		})
	}
}

// TestLimitsEnforced checks every decoder-enforced limit at the limit (ok)
// and one past it (ErrTooLarge), with both Decode and Check.
func TestLimitsEnforced(t *testing.T) {
	l := Limits{MaxFrame: 300 << 10, MaxStateData: 200 << 10, MaxDescriptor: 2 << 10, MaxTagsPerObject: 10,
		MaxVersionLen: 5, MaxFormatEntries: 4, MaxFormatLen: 20}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	l = l.WithDefaults()
	formats := func(n, size int) []string {
		f := make([]string, n)
		for i := range f {
			f[i] = strings.Repeat("f", size)
		}
		return f
	}
	cases := []struct {
		name     string
		at, over Message
	}{
		{"descriptor", &DeclareTag{JSON: make([]byte, l.MaxDescriptor)}, &DeclareTag{JSON: make([]byte, l.MaxDescriptor+1)}},
		{"object descriptor", &DeclareObject{JSON: make([]byte, l.MaxDescriptor)}, &DeclareObject{JSON: make([]byte, l.MaxDescriptor+1)}},
		{"tags", &DeclareObject{JSON: []byte("1"), Tags: make([]uint32, l.MaxTagsPerObject)},
			&DeclareObject{JSON: []byte("1"), Tags: make([]uint32, l.MaxTagsPerObject+1)}},
		{"version", &Have{Version: make([]int64, l.MaxVersionLen)}, &Have{Version: make([]int64, l.MaxVersionLen+1)}},
		{"sync version", &Sync{Version: make([]int64, l.MaxVersionLen)}, &Sync{Version: make([]int64, l.MaxVersionLen+1)}},
		{"state version", &State{Version: make([]int64, l.MaxVersionLen)}, &State{Version: make([]int64, l.MaxVersionLen+1)}},
		{"base version", &State{Encoding: EncodingDelta, Data: []byte{1}, Base: make([]int64, l.MaxVersionLen)},
			&State{Encoding: EncodingDelta, Data: []byte{1}, Base: make([]int64, l.MaxVersionLen+1)}},
		{"format entries", &State{Format: formats(l.MaxFormatEntries, 1)}, &State{Format: formats(l.MaxFormatEntries+1, 1)}},
		{"format length", &State{Format: formats(1, l.MaxFormatLen)}, &State{Format: formats(1, l.MaxFormatLen+1)}},
		{"raw data", &State{Data: make([]byte, l.MaxStateData)}, &State{Data: make([]byte, l.MaxStateData+1)}},
		{"zstd size", &State{Encoding: EncodingZstd, Size: l.MaxStateData, Data: []byte{1}},
			&State{Encoding: EncodingZstd, Size: l.MaxStateData + 1, Data: []byte{1}}},
		{"zstd data", &State{Encoding: EncodingZstd, Size: 1, Data: make([]byte, l.MaxStateData)},
			&State{Encoding: EncodingZstd, Size: 1, Data: make([]byte, l.MaxStateData+1)}},
		{"error text", &Error{Text: strings.Repeat("e", MaxErrorText)}, &Error{Text: strings.Repeat("e", MaxErrorText+1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Decode(Append(nil, c.at), l); err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			if err := Check(c.at, l); err != nil {
				t.Fatalf("Check at the limit: %v", err)
			}
			if _, err := Decode(Append(nil, c.over), l); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("over the limit: err = %v, want ErrTooLarge", err)
			}
			if err := Check(c.over, l); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Check over the limit: err = %v, want ErrTooLarge", err)
			}
		})
	}
	// The frame limit.
	big := &State{Data: make([]byte, l.MaxStateData)}
	var frame []byte
	for len(frame) <= l.MaxFrame {
		frame = AppendState(frame, big)
	}
	if _, err := Decode(frame, l); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("frame over MaxFrame: err = %v", err)
	}
}

// TestCheckAgreesWithDecode: Check accepts exactly what Decode accepts, for
// every sample under tight limits.
func TestCheckAgreesWithDecode(t *testing.T) {
	tight := Limits{MaxFrame: 128 << 10, MaxStateData: 4 << 10, MaxDescriptor: 1 << 10, MaxTagsPerObject: 8,
		MaxVersionLen: 4, MaxFormatEntries: 4, MaxFormatLen: 16}
	for _, l := range []Limits{{}, tight} {
		for _, s := range samples() {
			_, derr := decodeAny(Append(nil, s.msg), l)
			cerr := Check(s.msg, l)
			if (derr == nil) != (cerr == nil) {
				t.Errorf("%s: Decode error %v, Check error %v", s.name, derr, cerr)
			}
		}
	}
}

func TestDecoderStickyError(t *testing.T) {
	d, err := NewDecoder(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	frame := Append(nil, &ObjectLive{Object: 1})
	frame = append(frame, 0x03, 0) // unknown mandatory type
	frame = Append(frame, &ObjectLive{Object: 2})
	if err := d.Reset(frame); err != nil {
		t.Fatal(err)
	}
	if m, err := d.Next(); err != nil || m.(*ObjectLive).Object != 1 {
		t.Fatalf("first message: %v, %v", m, err)
	}
	_, err1 := d.Next()
	_, err2 := d.Next()
	if !errors.Is(err1, ErrUnknownMessage) || err2 != err1 {
		t.Fatalf("errors %v then %v, want the same ErrUnknownMessage", err1, err2)
	}
	if !strings.Contains(err1.Error(), "at byte 3") {
		t.Errorf("error %q does not say where", err1)
	}
	// Decode returns all or nothing.
	if msgs, err := Decode(frame, Limits{}); err == nil || msgs != nil {
		t.Fatalf("Decode = %v, %v; want only the error", msgs, err)
	}
	// Reset clears the error.
	if err := d.Reset(Append(nil, &ObjectLive{Object: 5})); err != nil {
		t.Fatal(err)
	}
	if m, err := d.Next(); err != nil || m.(*ObjectLive).Object != 5 {
		t.Fatalf("after Reset: %v, %v", m, err)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}
}

func TestDecodedBytesDoNotOverwriteFrame(t *testing.T) {
	frame := Append(nil, &DeclareTag{ID: 1, JSON: []byte(`"a"`)})
	frame = Append(frame, &ObjectLive{Object: 9})
	msgs, err := Decode(frame, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_ = append(msgs[0].(*DeclareTag).JSON, "garbage"...)
	if msgs2, err := Decode(frame, Limits{}); err != nil || msgs2[1].(*ObjectLive).Object != 9 {
		t.Fatal("appending to a decoded slice overwrote the frame")
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := (Limits{}).Validate(); err != nil {
		t.Fatalf("zero Limits (defaults): %v", err)
	}
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatalf("DefaultLimits: %v", err)
	}
	bad := []Limits{
		{MaxFrame: 64 << 10},
		{MaxStateData: 512},
		{MaxStateData: 65 << 20},
		{MaxFrame: 1 << 20, MaxStateData: 1 << 20},      // no room for the header
		{MaxFrame: 128 << 10, MaxDescriptor: 100 << 10}, // descriptor does not fit
		{MaxVersionLen: 2000},
		{MaxFormatLen: 256},
		{MaxTagsPerObject: -1},
		{MaxDepth: 2},
	}
	for _, l := range bad {
		if err := l.Validate(); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("%+v: err = %v, want ErrInvalidLimits", l, err)
		}
	}
	if _, err := NewDecoder(bad[0]); !errors.Is(err, ErrInvalidLimits) {
		t.Errorf("NewDecoder accepted invalid limits: %v", err)
	}
	if _, err := Decode([]byte{1}, bad[0]); !errors.Is(err, ErrInvalidLimits) {
		t.Errorf("Decode accepted invalid limits: %v", err)
	}
}

func TestCloseCodes(t *testing.T) {
	codes := map[CloseCode]bool{}
	for c := range closeCodeNames {
		if c < 4000 || c > 4999 {
			t.Errorf("close code %d outside 4000-4999", c)
		}
		codes[c] = true
	}
	if len(codes) != 8 {
		t.Errorf("%d close codes, PROTOCOL.md lists 8", len(codes))
	}
	if CloseCodeFor(fmt.Errorf("boom")) != CloseInternalError {
		t.Error("unrelated error should map to CloseInternalError")
	}
	if CloseAuthRefused.Retry() || CloseUnsupportedVersion.Retry() || !CloseGoingAway.Retry() {
		t.Error("Retry")
	}
	long := strings.Repeat("é", 100) // 200 bytes
	r := TruncateReason(long)
	if len(r) > MaxCloseReason || !strings.HasPrefix(long, r) || len(r) < MaxCloseReason-1 {
		t.Errorf("TruncateReason gave %d bytes", len(r))
	}
	long = strings.Repeat("é", MaxErrorText) // twice the limit
	if r := TruncateErrorText(long); len(r) != MaxErrorText || !strings.HasPrefix(long, r) {
		t.Errorf("TruncateErrorText gave %d bytes", len(r))
	}
	if r := TruncateErrorText("x" + long); len(r) != MaxErrorText-1 {
		t.Errorf("TruncateErrorText split a character: %d bytes", len(r))
	}
	if r := CloseReason(errors.New("short")); r != "short" {
		t.Errorf("CloseReason = %q", r)
	}
}

func TestZeroDecoderUsesDefaults(t *testing.T) {
	var d Decoder
	if err := d.Reset(Append(nil, &State{Synchronized: true, Data: make([]byte, DefaultMaxStateData)})); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(); err != nil {
		t.Fatalf("zero Decoder refused a state at the default limit: %v", err)
	}
	if err := d.Reset(make([]byte, DefaultMaxFrame+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("zero Decoder accepted a frame over the default limit: %v", err)
	}
}

func TestDecoderMore(t *testing.T) {
	frame := Append(Append(nil, &ObjectObserve{Object: 1}), &ObjectObserve{Object: 2})
	var d Decoder
	if err := d.Reset(frame); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		if got := d.More(); got != want {
			t.Errorf("after message %d: More() = %v, want %v", i+1, got, want)
		}
	}
	if err := d.Reset(frame[:len(frame)-1]); err != nil {
		t.Fatal(err)
	}
	d.Next()
	if !d.More() {
		t.Error("More() = false with a truncated message left: Next still has an error to report")
	}
}
