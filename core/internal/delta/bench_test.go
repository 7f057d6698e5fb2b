package delta

import (
	"testing"
)

// BenchmarkDelta100KB measures a delta of a 100 KB JSON document with 1 % of
// its bytes changed, and reports its size as a percentage of the document
// (%raw, target at most 3) and of the compressed document (%zstd).
func BenchmarkDelta100KB(b *testing.B) {
	from := jsonDoc(100<<10, 1)
	to := mutateDigits(from, 0.01, 2)
	d := Encode(nil, from, to)
	full := Compress(nil, to)
	report := func(b *testing.B) {
		b.ReportMetric(100*float64(len(d))/float64(len(to)), "%raw")
		b.ReportMetric(100*float64(len(d))/float64(len(full)), "%zstd")
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(to)))
		dst := make([]byte, 0, 2*len(d))
		for b.Loop() {
			dst = Encode(dst[:0], from, to)
		}
		report(b)
	})
	b.Run("apply", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(to)))
		dst := make([]byte, 0, len(to))
		for b.Loop() {
			var err error
			if dst, err = Apply(dst[:0], from, d, len(to)); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

// BenchmarkCompress1MB compresses 1 MB of JSON and reports the result as a
// percentage of the input (%size).
func BenchmarkCompress1MB(b *testing.B) {
	src := jsonDoc(1<<20, 3)[:1<<20]
	comp := Compress(nil, src)
	b.Run("compress", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		dst := make([]byte, 0, len(src))
		for b.Loop() {
			dst = Compress(dst[:0], src)
		}
		b.ReportMetric(100*float64(len(dst))/float64(len(src)), "%size")
	})
	b.Run("decompress", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		dst := make([]byte, 0, len(src))
		for b.Loop() {
			var err error
			if dst, err = Decompress(dst[:0], comp, len(src)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
