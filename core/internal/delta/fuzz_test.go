package delta

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzLimit is the output limit in the fuzz targets: small enough to keep
// runs fast, large enough for multi-block frames.
const fuzzLimit = 256 << 10

func FuzzDecompress(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		[]byte("hello"),
		jsonDoc(600, 1),
		jsonDoc(140<<10, 2), // more than one zstd block
		bytes.Repeat([]byte{0}, 200<<10),
	} {
		f.Add(Compress(nil, seed), uint32(len(seed)))
	}
	f.Add(streamCompress(f, jsonDoc(200<<10, 3)), uint32(fuzzLimit)) // no content size
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 0x01, 0x00, 0x00}, uint32(100))
	f.Fuzz(func(t *testing.T, src []byte, limit uint32) {
		maxSize := int(limit % (fuzzLimit + 1))
		out, err := Decompress([]byte("p"), src, maxSize)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrTooLarge", err)
			}
			if len(out) != 1 || out[0] != 'p' {
				t.Fatal("failed Decompress changed dst")
			}
			return
		}
		if len(out)-1 > maxSize {
			t.Fatalf("decoded %d bytes with limit %d", len(out)-1, maxSize)
		}
		// Whatever decoded must survive our own round trip.
		got, err := Decompress(nil, Compress(nil, out[1:]), len(out)-1)
		if err != nil || !bytes.Equal(got, out[1:]) {
			t.Fatalf("round trip of decoded data failed: %v", err)
		}
	})
}

func FuzzDeltaApply(f *testing.F) {
	doc := jsonDoc(4<<10, 1)
	changed := mutateDigits(doc, 0.02, 2)
	f.Add(doc, changed, Encode(nil, doc, changed))
	f.Add([]byte{}, []byte("abc"), Encode(nil, nil, []byte("abc")))
	f.Add([]byte("base"), []byte{}, Encode(nil, []byte("base"), nil))
	f.Add(doc, doc, []byte("not a delta"))
	f.Fuzz(func(t *testing.T, from, to, delta []byte) {
		// Large inputs only slow the fuzzer down (the unit tests cover
		// multi-block data); keep it exploring.
		if len(from)+len(to)+len(delta) > 64<<10 {
			t.Skip()
		}
		// Our deltas always apply.
		d := Encode(nil, from, to)
		got, err := Apply(nil, from, d, len(to))
		if err != nil || !bytes.Equal(got, to) {
			t.Fatalf("Apply(Encode(from, to)) failed: %v", err)
		}
		// Arbitrary deltas fail cleanly or stay in bounds.
		out, err := Apply(nil, from, delta, fuzzLimit)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v is neither ErrCorrupt nor ErrTooLarge", err)
			}
			return
		}
		if len(out) > fuzzLimit {
			t.Fatalf("applied to %d bytes with limit %d", len(out), fuzzLimit)
		}
	})
}

// TestWriteFuzzCorpus regenerates the small seeds under testdata/fuzz when
// HAKUBAN_WRITE_CORPUS is set; it is skipped otherwise. (The large seeds
// are added with f.Add only, to keep the repository small.)
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("HAKUBAN_WRITE_CORPUS") == "" {
		t.Skip("set HAKUBAN_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	q := func(b []byte) string { return "[]byte(" + strconv.Quote(string(b)) + ")" }
	write := func(target, name string, lines ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n" + strings.Join(lines, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc := jsonDoc(2<<10, 1)
	changed := mutateDigits(doc, 0.02, 2)
	write("FuzzDecompress", "json", q(Compress(nil, doc)), fmt.Sprintf("uint32(%d)", len(doc)))
	write("FuzzDecompress", "empty", q(Compress(nil, nil)), "uint32(0)")
	write("FuzzDecompress", "zeros", q(Compress(nil, make([]byte, 100<<10))), "uint32(1000)")
	write("FuzzDecompress", "huge-window", q([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 0x01, 0x00, 0x00}), "uint32(100)")
	write("FuzzDeltaApply", "json", q(doc), q(changed), q(Encode(nil, doc, changed)))
	write("FuzzDeltaApply", "empty-base", q(nil), q([]byte("abc")), q(Encode(nil, nil, []byte("abc"))))
	write("FuzzDeltaApply", "garbage", q([]byte("base")), q([]byte("base")), q([]byte("not a delta")))
}
