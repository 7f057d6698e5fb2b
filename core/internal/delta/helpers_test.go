package delta

import (
	"github.com/hakuban/hakuban/internal/leakcheck"

	"bytes"
	"fmt"
	"math/rand"
	"testing"
)

// jsonDoc returns a JSON array of about n bytes of sensor-like records.
func jsonDoc(n int, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"sensor-%d","room":%d,"temp":%.2f,"ok":%v,"tags":["a%d","b%d"]}`,
			i, r.Intn(100000), r.Intn(500), r.Float64()*40, r.Intn(2) == 0, r.Intn(50), r.Intn(50))
	}
	b.WriteString("]")
	return b.Bytes()
}

// mutateDigits returns a copy of doc with frac of its bytes changed: random
// digits replaced by other random digits, scattered over the document, so
// the result is still valid JSON of the same shape.
func mutateDigits(doc []byte, frac float64, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	out := bytes.Clone(doc)
	want := int(float64(len(doc)) * frac)
	for changed := 0; changed < want; {
		p := r.Intn(len(out))
		if c := out[p]; c >= '0' && c <= '9' {
			nc := byte('0' + r.Intn(10))
			if nc != c {
				out[p] = nc
				changed++
			}
		}
	}
	return out
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// TestMain fails the package when a test leaves goroutines behind.
func TestMain(m *testing.M) { leakcheck.Main(m, nil) }
