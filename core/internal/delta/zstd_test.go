package delta

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestCompressRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 63, 64, 511, 512, 4 << 10, 128<<10 - 1, 128 << 10, 128<<10 + 1, 1 << 20, 3<<20 + 7}
	for _, size := range sizes {
		for _, kind := range []string{"random", "json"} {
			t.Run(fmt.Sprintf("%s/%d", kind, size), func(t *testing.T) {
				src := randomBytes(size, int64(size))
				if kind == "json" {
					src = jsonDoc(size, int64(size))[:size]
				}
				prefix := []byte("prefix")
				comp := Compress(bytes.Clone(prefix), src)
				if !bytes.Equal(comp[:len(prefix)], prefix) {
					t.Fatal("Compress changed dst's existing bytes")
				}
				requireContentSize(t, comp[len(prefix):], size)
				got, err := Decompress([]byte("x"), comp[len(prefix):], size)
				if err != nil {
					t.Fatalf("Decompress: %v", err)
				}
				if !bytes.Equal(got[1:], src) || got[0] != 'x' {
					t.Fatal("round trip changed the data")
				}
				if size > 0 {
					if _, err := Decompress(nil, comp[len(prefix):], size-1); !errors.Is(err, ErrTooLarge) {
						t.Fatalf("Decompress with limit size-1: err = %v, want ErrTooLarge", err)
					}
				}
			})
		}
	}
}

// requireContentSize fails unless frame declares its content size as size,
// as PROTOCOL.md requires.
func requireContentSize(t *testing.T, frame []byte, size int) {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(frame); err != nil || !h.HasFCS || h.FrameContentSize != uint64(size) {
		t.Fatalf("frame header %+v (err %v) does not declare the content size %d", h, err, size)
	}
}

func TestCompressShrinksJSON(t *testing.T) {
	src := jsonDoc(100<<10, 1)
	if c := Compress(nil, src); len(c) > len(src)/3 {
		t.Fatalf("100 KB of JSON compressed to %d bytes, want under a third", len(c))
	}
}

func TestEncodeApplyRoundTrip(t *testing.T) {
	doc := jsonDoc(100<<10, 1)
	big := jsonDoc(3<<20, 2)
	cases := []struct {
		name     string
		from, to []byte
		maxRatio float64 // delta size / len(to) must stay under this; 0: no check
	}{
		{"json 1%", doc, mutateDigits(doc, 0.01, 3), 0.03},
		{"json 10%", doc, mutateDigits(doc, 0.10, 4), 0},
		{"json identical", doc, doc, 0.01},
		{"json appended", doc, append(bytes.Clone(doc), `,{"id":-1}`...), 0.01},
		{"json truncated", doc, doc[:len(doc)/2], 0.01},
		{"random 1 byte changed", randomBytes(50<<10, 5), func() []byte {
			b := randomBytes(50<<10, 5)
			b[25<<10] ^= 0xff
			return b
		}(), 0.01},
		{"random unrelated", randomBytes(10<<10, 6), randomBytes(10<<10, 7), 0},
		{"empty from", nil, doc, 0},
		{"empty to", doc, nil, 0},
		{"both empty", nil, nil, 0},
		{"tiny", []byte("{}"), []byte(`{"a":1}`), 0},
		{"large base, small result far back", big, append(bytes.Clone(big[:10<<10]), big[2<<20:2<<20+5000]...), 0.2},
		{"large multi-block", big, mutateDigits(big, 0.001, 8), 0.01},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Encode([]byte("pre"), c.from, c.to)
			if string(d[:3]) != "pre" {
				t.Fatal("Encode changed dst's existing bytes")
			}
			d = d[3:]
			requireContentSize(t, d, len(c.to))
			if c.maxRatio > 0 && float64(len(d)) > c.maxRatio*float64(len(c.to)) {
				t.Errorf("delta is %d bytes for %d bytes of data, want under %.0f%%", len(d), len(c.to), 100*c.maxRatio)
			}
			got, err := Apply(nil, c.from, d, len(c.to))
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !bytes.Equal(got, c.to) {
				t.Fatal("Apply did not reproduce the data")
			}
			if len(c.to) > 0 {
				if _, err := Apply(nil, c.from, d, len(c.to)-1); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("Apply with limit len-1: err = %v, want ErrTooLarge", err)
				}
			}
		})
	}
}

func TestApplyWrongBase(t *testing.T) {
	from := jsonDoc(20<<10, 1)
	to := mutateDigits(from, 0.01, 2)
	d := Encode(nil, from, to)
	other := mutateDigits(from, 0.01, 3)
	if _, err := Apply(nil, other, d, len(to)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Apply to another base: err = %v, want ErrCorrupt", err)
	}
	if _, err := Decompress(nil, d, len(to)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decompress of a delta without its base: err = %v, want ErrCorrupt", err)
	}
}

func TestDecompressRejectsGarbage(t *testing.T) {
	valid := Compress(nil, jsonDoc(4<<10, 1))
	withDictID := func() []byte {
		z, _ := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(7, []byte("some dictionary content")))
		return z.EncodeAll([]byte("hello hello hello"), nil)
	}()
	cases := map[string][]byte{
		"empty":         nil,
		"magic only":    valid[:4],
		"not zstd":      []byte("definitely not a zstd frame at all"),
		"truncated":     valid[:len(valid)/2],
		"bad checksum":  append(bytes.Clone(valid[:len(valid)-1]), valid[len(valid)-1]^1),
		"skippable":     {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4},
		"dictionary id": withDictID,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Decompress(nil, src, 1<<20); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decompress: err = %v, want ErrCorrupt", err)
			}
			if _, err := Apply(nil, []byte("base"), src, 1<<20); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Apply: err = %v, want ErrCorrupt", err)
			}
		})
	}
}

// streamCompress compresses src with the streaming API, which does not
// declare the content size in the frame header for multi-block data.
func streamCompress(t testing.TB, src []byte, opts ...zstd.EOption) []byte {
	var buf bytes.Buffer
	z, err := zstd.NewWriter(&buf, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := z.Write(src); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// allocated returns the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecompressBomb(t *testing.T) {
	const bombSize = 256 << 20 // 256 MiB of zeros
	const limit = 1 << 20
	zeros := make([]byte, bombSize)
	withSize := Compress(nil, zeros)
	noSize := streamCompress(t, zeros)
	zeros = nil
	var h zstd.Header
	if err := h.Decode(noSize); err != nil || h.HasFCS {
		t.Fatalf("test setup: stream frame should not declare its size (err %v)", err)
	}
	t.Logf("bomb: %d bytes with size, %d without", len(withSize), len(noSize))

	// Warm the pools so that only decoding allocates.
	if _, err := Decompress(nil, Compress(nil, []byte("warm")), 10); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string][]byte{"declared size": withSize, "no declared size": noSize} {
		t.Run(name, func(t *testing.T) {
			want := ErrTooLarge
			if name == "no declared size" {
				want = ErrCorrupt // the protocol requires the size
			}
			var err error
			n := allocated(func() { _, err = Decompress(nil, src, limit) })
			if !errors.Is(err, want) {
				t.Fatalf("err = %v, want %v", err, want)
			}
			if n > 3*limit {
				t.Fatalf("allocated %d bytes to reject a bomb with limit %d", n, limit)
			}
			n = allocated(func() { _, err = Apply(nil, []byte("base"), src, limit) })
			if !errors.Is(err, want) {
				t.Fatalf("Apply: err = %v, want %v", err, want)
			}
			if n > 3*limit {
				t.Fatalf("Apply allocated %d bytes to reject a bomb with limit %d", n, limit)
			}
		})
	}
}

func TestDecompressHugeWindow(t *testing.T) {
	// A hand-made frame header: no single segment, window descriptor
	// exponent 31 (2 GiB), no content size, then an empty last raw block.
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, (31 - 10) << 3, 0x01, 0x00, 0x00}
	if _, err := Decompress(nil, frame, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestConcurrentCoders(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := jsonDoc(8<<10+g*1000, int64(g))
			for i := range 20 {
				to := mutateDigits(from, 0.02, int64(i))
				got, err := Apply(nil, from, Encode(nil, from, to), len(to))
				if err != nil || !bytes.Equal(got, to) {
					t.Errorf("goroutine %d round %d: delta round trip failed: %v", g, i, err)
					return
				}
				got, err = Decompress(nil, Compress(nil, to), len(to))
				if err != nil || !bytes.Equal(got, to) {
					t.Errorf("goroutine %d round %d: compression round trip failed: %v", g, i, err)
					return
				}
				from = to
			}
		}()
	}
	wg.Wait()
}

func TestCompressAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	src := jsonDoc(4<<10, 1)
	dst := make([]byte, 0, 2*len(src))
	out := make([]byte, 0, len(src))
	Decompress(nil, Compress(nil, src), len(src)) // warm the pools
	if n := testing.AllocsPerRun(100, func() { Compress(dst, src) }); n > 0 {
		t.Errorf("Compress into a large enough dst: %.1f allocations, want 0", n)
	}
	comp := Compress(nil, src)
	if n := testing.AllocsPerRun(100, func() { Decompress(out, comp, len(src)) }); n > 0 {
		t.Errorf("Decompress into a large enough dst: %.1f allocations, want 0", n)
	}
}

// TestInteropReferenceZstd checks that deltas and frames are what the
// reference implementation produces and accepts ("zstd --patch-from"), so a
// peer in another language can use libzstd.
func TestInteropReferenceZstd(t *testing.T) {
	bin, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("zstd command not installed")
	}
	dir := t.TempDir()
	from := jsonDoc(200<<10, 1)
	to := mutateDigits(from, 0.01, 2)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(args ...string) {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("zstd %v: %v\n%s", args, err, out)
		}
	}
	fromPath, toPath := write("from", from), write("to", to)

	// Our delta, reference decoder.
	run("-q", "-d", "--patch-from="+fromPath, write("ours.zst", Encode(nil, from, to)), "-o", filepath.Join(dir, "ours.out"))
	if got, _ := os.ReadFile(filepath.Join(dir, "ours.out")); !bytes.Equal(got, to) {
		t.Fatal("reference zstd decoded our delta to different data")
	}
	// Reference delta, our decoder.
	run("-q", "--patch-from="+fromPath, toPath, "-o", filepath.Join(dir, "ref.zst"))
	ref, _ := os.ReadFile(filepath.Join(dir, "ref.zst"))
	if got, err := Apply(nil, from, ref, len(to)); err != nil || !bytes.Equal(got, to) {
		t.Fatalf("Apply of the reference delta: %v", err)
	}
	// Reference plain frame, our decoder, and the reverse.
	run("-q", toPath, "-o", filepath.Join(dir, "plain.zst"))
	plain, _ := os.ReadFile(filepath.Join(dir, "plain.zst"))
	if got, err := Decompress(nil, plain, len(to)); err != nil || !bytes.Equal(got, to) {
		t.Fatalf("Decompress of the reference frame: %v", err)
	}
	run("-q", "-d", write("ours-plain.zst", Compress(nil, to)), "-o", filepath.Join(dir, "ours-plain.out"))
	if got, _ := os.ReadFile(filepath.Join(dir, "ours-plain.out")); !bytes.Equal(got, to) {
		t.Fatal("reference zstd decoded our frame to different data")
	}
}

func TestFrameWithoutSizeRejected(t *testing.T) {
	src := jsonDoc(600<<10, 1)
	frame := streamCompress(t, src)
	var h zstd.Header
	if h.Decode(frame); h.HasFCS {
		t.Fatal("test setup: the stream frame declares its size")
	}
	if _, err := Decompress(nil, frame, 1<<62); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestHugeMaxSizeIsCapped(t *testing.T) {
	src := []byte("small")
	if got, err := Decompress(nil, Compress(nil, src), 1<<62); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("Decompress with a huge limit: %v", err)
	}
	// A frame declaring more than MaxSize is refused even when the
	// caller allows more.
	hdr := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0x40, 0, 0, 0, 0} // single segment, 8-byte FCS 2^30
	if _, err := Decompress(nil, append(hdr, 1, 0, 0), 1<<62); err == nil {
		t.Fatal("accepted a frame of MaxSize+ bytes")
	}
}
