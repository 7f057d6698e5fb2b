package wire

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// seedFrames returns valid frames for the fuzz corpora: every sample alone,
// all non-handshake samples batched, and a few edge cases.
func seedFrames() (frames, handshakes [][]byte) {
	var batch []byte
	for _, s := range samples() {
		f := Append(nil, s.msg)
		switch s.msg.Type() {
		case TypeHello, TypeWelcome:
			handshakes = append(handshakes, f)
			continue
		}
		frames = append(frames, f)
		batch = append(batch, f...)
	}
	frames = append(frames, batch,
		[]byte{0x80, 2, 'h', 'i'},                      // optional type
		[]byte{byte(TypeObjectLive), 3, 1, 0xaa, 0xbb}, // trailing body bytes
	)
	return frames, handshakes
}

func FuzzDecode(f *testing.F) {
	frames, _ := seedFrames()
	for _, fr := range frames {
		f.Add(fr)
	}
	limits := DefaultLimits()
	f.Fuzz(func(t *testing.T, frame []byte) {
		msgs, err := Decode(frame, limits)

		// The streaming decoder agrees with Decode, message by message:
		// the State it reuses holds nothing of the one before.
		d, _ := NewDecoder(limits)
		var n int
		var nerr error
		if nerr = d.Reset(frame); nerr == nil {
			for {
				m, e := d.Next()
				if e == io.EOF {
					break
				}
				if e != nil {
					nerr = e
					break
				}
				if err == nil && n < len(msgs) && !reflect.DeepEqual(normalize(m), normalize(msgs[n])) {
					t.Fatalf("Decoder message %d differs from Decode's:\n%#v\n%#v", n, m, msgs[n])
				}
				n++
			}
		}
		if (err == nil) != (nerr == nil) || err == nil && n != len(msgs) {
			t.Fatalf("Decode: %d messages, %v; Decoder: %d messages, %v", len(msgs), err, n, nerr)
		}
		if err != nil {
			if !isDecodeError(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if len(msgs) == 0 {
			return // only optional messages
		}
		// Whatever decodes passes Check, and survives a round trip.
		var again []byte
		for _, m := range msgs {
			if cerr := Check(m, limits); cerr != nil {
				t.Fatalf("decoded %T fails Check: %v", m, cerr)
			}
			again = Append(again, m)
		}
		msgs2, err := Decode(again, limits)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		for i := range msgs {
			if !reflect.DeepEqual(normalize(msgs[i]), normalize(msgs2[i])) {
				t.Fatalf("message %d changed in a round trip:\n%#v\n%#v", i, msgs[i], msgs2[i])
			}
		}
	})
}

func FuzzHandshake(f *testing.F) {
	_, handshakes := seedFrames()
	for _, fr := range handshakes {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if h, err := DecodeHello(frame); err != nil {
			if !isDecodeError(err) {
				t.Fatalf("DecodeHello: error without a sentinel: %v", err)
			}
		} else {
			Negotiate(h.Major, h.Minor)
			if err := Check(h, Limits{}); err != nil {
				t.Fatalf("decoded Hello fails Check: %v", err)
			}
			h2, err := DecodeHello(Append(nil, h))
			if err != nil || !reflect.DeepEqual(normalize(h), normalize(h2)) {
				t.Fatalf("Hello round trip: %v\n%#v\n%#v", err, h, h2)
			}
		}
		if w, err := DecodeWelcome(frame); err != nil {
			if !isDecodeError(err) {
				t.Fatalf("DecodeWelcome: error without a sentinel: %v", err)
			}
		} else {
			if err := Check(w, Limits{}); err != nil {
				t.Fatalf("decoded Welcome fails Check: %v", err)
			}
			w2, err := DecodeWelcome(Append(nil, w))
			if err != nil || !reflect.DeepEqual(normalize(w), normalize(w2)) {
				t.Fatalf("Welcome round trip: %v\n%#v\n%#v", err, w, w2)
			}
		}
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz from seedFrames when
// HAKUBAN_WRITE_CORPUS is set; it is skipped otherwise.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("HAKUBAN_WRITE_CORPUS") == "" {
		t.Skip("set HAKUBAN_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	frames, handshakes := seedFrames()
	write := func(target string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s)))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzDecode", frames)
	write("FuzzHandshake", handshakes)
}
