package canon_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hakuban/hakuban/core/internal/canon"
)

func TestCanonicalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// structure and white space
		{"sorted keys", `{"b":2,"a":1}`, `{"a":1,"b":2}`},
		{"white space", " \t\n{ \"a\" : [ 1 , 2 ] }\r\n ", `{"a":[1,2]}`},
		{"nested sort", `{"z":{"y":1,"x":2},"a":[{"d":1,"c":2}]}`, `{"a":[{"c":2,"d":1}],"z":{"x":2,"y":1}}`},
		{"empty containers", `{ "a" : { } , "b" : [ ] }`, `{"a":{},"b":[]}`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
		{"top-level string", `"x"`, `"x"`},
		// RFC 8785 3.2.3: UTF-16 code unit order, not code point order:
		// U+00E9 < U+1F600 (D83D DE00) < U+FFFF.
		{"utf16 order", `{"\uffff":1,"\ud83d\ude00":2,"\u00e9":3,"a":4}`, "{\"a\":4,\"é\":3,\"😀\":2,\"\uffff\":1}"},
		// strings: minimal escaping
		{"escaped letter", `"\u0041"`, `"A"`},
		{"escaped slash", `"\/"`, `"/"`},
		{"control chars", `"\u0001\u001F\b\f\n\r\t"`, `"\u0001\u001f\b\f\n\r\t"`},
		{"quote backslash", `"\"\\"`, `"\"\\"`},
		{"del and u2028 raw", `"\u007f\u2028\u2029"`, "\"\x7f\u2028\u2029\""},
		{"html not escaped", `"\u003c\u0026\u003e"`, `"<&>"`},
		{"surrogate pair", `"\ud83d\ude00"`, `"😀"`},
		{"number-like in string", `["1.0","-0",{"1e2":1.0}]`, `["1.0","-0",{"1e2":1}]`},
		{"escaped quote then number", `["a\"1.0",2.0]`, `["a\"1.0",2]`},
		// numbers: integers exact
		{"int", `1`, `1`},
		{"one point zero", `1.0`, `1`},
		{"exp", `1e2`, `100`},
		{"exp upper plus", `1E+2`, `100`},
		{"exp frac", `1.5e1`, `15`},
		{"exp neg to int", `1500e-2`, `15`},
		{"trailing zeros", `100.000`, `100`},
		{"minus zero", `-0`, `0`},
		{"minus zero float", `-0.0`, `0`},
		{"zero exp", `0e99999999999999999999`, `0`},
		{"neg int", `-12`, `-12`},
		{"neg float int", `-12.0e0`, `-12`},
		{"big int", `12345678901234567890`, `12345678901234567890`},
		{"bigger int", `123456789012345678901234567890123456789`, `123456789012345678901234567890123456789`},
		{"big int float notation", `12345678901234567890.0`, `12345678901234567890`},
		{"1e21 is an integer", `1e21`, `1000000000000000000000`},
		{"2^53+1 exact", `9007199254740993`, `9007199254740993`},
		{"2^53+1 exp exact", `9007199254740993e0`, `9007199254740993`},
		// numbers: non-integers are doubles
		{"fraction", `0.1`, `0.1`},
		{"fraction exp", `1e-7`, `1e-7`},
		{"fraction small", `0.000001`, `0.000001`},
		{"fraction E", `1.5E-7`, `1.5e-7`},
		{"fraction long", `0.10000000000000000001`, `0.1`},
		{"rounds to int", `0.99999999999999999999`, `1`},
		{"rounds to big int", `12345678901234567890.5`, `12345678901234567000`},
		{"rounds to huge int", `123456789012345678901234567890.5`, `123456789012345680000000000000`},
		{"underflow", `1e-400`, `0`},
		{"neg underflow", `-1e-400`, `0`},
		{"max double", `1.7976931348623157e308`, `17976931348623157` + strings.Repeat("0", 292)},
		{"neg fraction", `-2.5`, `-2.5`},
		{"pi", `3.141592653589793238462643383279`, `3.141592653589793`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canon.Canonicalize([]byte(tt.in), 0)
			if err != nil {
				t.Fatalf("Canonicalize(%s): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Fatalf("Canonicalize(%s) = %s, want %s", tt.in, got, tt.want)
			}
			again, err := canon.Canonicalize(got, 0)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("not idempotent: %s -> %s, %v", got, again, err)
			}
		})
	}
}

func TestCanonicalizeErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxSize int
		want    error
	}{
		{"empty", ``, 0, canon.ErrInvalid},
		{"space only", `  `, 0, canon.ErrInvalid},
		{"two values", `1 2`, 0, canon.ErrInvalid},
		{"trailing garbage", `{"a":1}x`, 0, canon.ErrInvalid},
		{"trailing comma", `[1,]`, 0, canon.ErrInvalid},
		{"leading zero", `01`, 0, canon.ErrInvalid},
		{"bare word", `nul`, 0, canon.ErrInvalid},
		{"single quotes", `'a'`, 0, canon.ErrInvalid},
		{"NaN", `NaN`, 0, canon.ErrInvalid},
		{"unterminated", `{"a":`, 0, canon.ErrInvalid},
		{"invalid utf8", "\"\xff\"", 0, canon.ErrInvalid},
		{"invalid utf8 name", "{\"\xc3\":1}", 0, canon.ErrInvalid},
		{"lone surrogate", `"\ud800"`, 0, canon.ErrInvalid},
		{"raw control", "\"\x01\"", 0, canon.ErrInvalid},
		{"duplicate name", `{"a":1,"a":2}`, 0, canon.ErrInvalid},
		{"duplicate name nested", `[{"b":{"c":1,"c":1}}]`, 0, canon.ErrInvalid},
		{"duplicate name by escape", `{"\u0061":1,"a":2}`, 0, canon.ErrInvalid},
		{"out of range", `1e400`, 0, canon.ErrInvalid},
		{"out of range neg", `-1e309`, 0, canon.ErrInvalid},
		{"just out of range", `1.7976931348623159e308`, 0, canon.ErrInvalid},
		{"out of range fraction", strings.Repeat("9", 400) + ".5", 0, canon.ErrInvalid},
		{"too large input", `"abcdef"`, 7, canon.ErrTooLarge},
		{"too large output", `1e300`, 100, canon.ErrTooLarge},
		{"too deep", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), 0, canon.ErrInvalid},
		{"too deep objects", strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000), 0, canon.ErrInvalid},
		{"too deep unterminated", strings.Repeat("[", 100000), 0, canon.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canon.Canonicalize([]byte(tt.in), tt.maxSize)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Canonicalize(%.40q) = %.40q, %v; want %v", tt.in, got, err, tt.want)
			}
			var ce *canon.Error
			if !errors.As(err, &ce) || ce.Detail == "" || !strings.HasPrefix(err.Error(), "canon: ") {
				t.Fatalf("error %q is not a detailed *canon.Error", err)
			}
			if got != nil {
				t.Fatalf("got output %q with an error", got)
			}
		})
	}
}

// TestCanonicalizeLimitBoundary checks that maxSize is inclusive and that the
// input is checked before parsing (an oversize input is ErrTooLarge even when
// it is not JSON at all).
func TestCanonicalizeLimitBoundary(t *testing.T) {
	if _, err := canon.Canonicalize([]byte(`"abcde"`), 7); err != nil {
		t.Fatalf("7 bytes with limit 7: %v", err)
	}
	if _, err := canon.Canonicalize(bytes.Repeat([]byte{0xff}, 1000), 999); !errors.Is(err, canon.ErrTooLarge) {
		t.Fatalf("oversize garbage: %v, want ErrTooLarge", err)
	}
	// white space counts against the input limit
	if _, err := canon.Canonicalize([]byte(`  1  `), 4); !errors.Is(err, canon.ErrTooLarge) {
		t.Fatalf("padded input: %v, want ErrTooLarge", err)
	}
}

func TestNesting(t *testing.T) {
	// Within the library's depth limit nesting is fine.
	in := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	got, err := canon.Canonicalize([]byte(in), 0)
	if err != nil || string(got) != in {
		t.Fatalf("5000 levels: %v", err)
	}
}

func TestAppend(t *testing.T) {
	dst := []byte("prefix:")
	out, err := canon.Append(dst, []byte(`{"b":1.0,"a":2}`), 0)
	if err != nil || string(out) != `prefix:{"a":2,"b":1}` {
		t.Fatalf("Append = %q, %v", out, err)
	}
	out, err = canon.Append(dst, []byte(`{"a":1,"a":1}`), 0)
	if err == nil || string(out) != "prefix:" {
		t.Fatalf("Append error = %q, %v; want dst unchanged", out, err)
	}
	// in place
	src := []byte(` { "b" : 1e2 , "a" : 2.50 } `)
	out, err = canon.Append(src[:0], src, 0)
	if err != nil || string(out) != `{"a":2.5,"b":100}` {
		t.Fatalf("in place = %q, %v", out, err)
	}
}

func TestCanonicalizeDoesNotModifyInput(t *testing.T) {
	in := []byte(`{ "b" : 1.0 , "a" : 2 }`)
	orig := string(in)
	if _, err := canon.Canonicalize(in, 0); err != nil {
		t.Fatal(err)
	}
	if string(in) != orig {
		t.Fatalf("input modified: %q", in)
	}
}

func TestAppendQuote(t *testing.T) {
	got, err := canon.AppendQuote(nil, "a\"b\\c\n\x01é/<")
	if err != nil || string(got) != `"a\"b\\c\n\u0001é/<"` {
		t.Fatalf("AppendQuote = %s, %v", got, err)
	}
	if _, err := canon.AppendQuote(nil, "\xff"); !errors.Is(err, canon.ErrInvalid) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
}

type point struct {
	Y int     `json:"y"`
	X float64 `json:"x"`
	S string  `json:"s,omitempty"`
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"string", "sensors", `"sensors"`},
		{"html chars", "<&>\u2028", "\"<&>\u2028\""},
		{"map sorted", map[string]any{"b": 1, "a": []int{1, 2}}, `{"a":[1,2],"b":1}`},
		{"struct", point{Y: 1, X: 2}, `{"x":2,"y":1}`},
		{"float one", 1.0, `1`},
		{"float", 0.1, `0.1`},
		{"float32", float32(0.1), `0.1`},
		{"big uint", uint64(18446744073709551615), `18446744073709551615`},
		{"big float", 1e21, `1000000000000000000000`},
		{"raw message", json.RawMessage(`{"z": 1.0, "y": "\u0041"}`), `{"y":"A","z":1}`},
		{"number", json.Number("1.50"), `1.5`},
		{"nil", nil, `null`},
		{"bytes", []byte{1, 2}, `"AQI="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canon.Marshal(tt.in)
			if err != nil || string(got) != tt.want {
				t.Fatalf("Marshal(%v) = %s, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

type panicker struct{}

func (panicker) MarshalJSON() ([]byte, error) { panic("boom") }

func TestMarshalErrors(t *testing.T) {
	deep := any(1)
	for range 100000 {
		deep = []any{deep}
	}
	tests := []struct {
		name string
		in   any
	}{
		{"invalid utf8", "\xff"},
		{"invalid utf8 key", map[string]int{"\xff": 1}},
		{"channel", make(chan int)},
		{"func", func() {}},
		{"nan", []float64{0, nanValue()}},
		{"duplicate in raw", json.RawMessage(`{"a":1,"a":2}`)},
		{"invalid raw", json.RawMessage(`{`)},
		{"deep", deep},
		{"panic", panicker{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canon.Marshal(tt.in)
			if !errors.Is(err, canon.ErrInvalid) {
				t.Fatalf("Marshal = %.40q, %v; want ErrInvalid", got, err)
			}
		})
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func TestUnmarshal(t *testing.T) {
	var p point
	if err := canon.Unmarshal([]byte(`{"y":1,"x":2.5}`), &p); err != nil || p != (point{Y: 1, X: 2.5}) {
		t.Fatalf("Unmarshal = %+v, %v", p, err)
	}
	for _, in := range []string{`{"y":1,"y":2}`, "{\"s\":\"\xff\"}", `{"y":1}x`, ``, strings.Repeat("[", 100000)} {
		var v any
		if err := canon.Unmarshal([]byte(in), &v); !errors.Is(err, canon.ErrInvalid) {
			t.Errorf("Unmarshal(%.40q) = %v, want ErrInvalid", in, err)
		}
	}
	var n int
	if err := canon.Unmarshal([]byte(`"x"`), &n); !errors.Is(err, canon.ErrInvalid) {
		t.Errorf("type mismatch: %v, want ErrInvalid", err)
	}
}

// TestBigIntegersDistinct is the property users rely on for ids: integers that
// a double cannot tell apart stay different.
func TestBigIntegersDistinct(t *testing.T) {
	a, _ := canon.Canonicalize([]byte(`12345678901234567890`), 0)
	b, _ := canon.Canonicalize([]byte(`12345678901234567891`), 0)
	if bytes.Equal(a, b) {
		t.Fatalf("%s == %s", a, b)
	}
}

// TestNumberValueIdentity checks that every spelling of one integer value,
// whatever the notation, canonicalizes to the same bytes.
func TestNumberValueIdentity(t *testing.T) {
	groups := [][]string{
		{`100`, `100.0`, `1e2`, `1E2`, `1e+2`, `10e1`, `1000e-1`, `0.1e3`, `100.000e0`},
		{`0`, `-0`, `0.0`, `-0.0`, `0e10`, `-0e-10`, `0.000`},
		{`-7`, `-7.0`, `-0.7e1`, `-70e-1`},
		{`0.5`, `5e-1`, `0.50`, `50e-2`, `0.5000000000000000000001`},
	}
	for _, g := range groups {
		first, err := canon.Canonicalize([]byte(g[0]), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range g[1:] {
			got, err := canon.Canonicalize([]byte(s), 0)
			if err != nil || !bytes.Equal(got, first) {
				t.Errorf("%s -> %s, %v; want %s (as %s)", s, got, err, first, g[0])
			}
		}
	}
}

func BenchmarkCanonicalize(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"canonical", `{"id":123,"type":"sensor"}`},
		{"unsorted", `{"type": "sensor", "id": 123}`},
		{"floats", `{"type": "sensor", "pos": [1.0, 2.5, 1e2]}`},
		{"4KiB", `{"list":[` + strings.Repeat(`{"name":"item","value":12345,"tags":["a","b"]},`, 80) + `1]}`},
	} {
		in := []byte(bc.in)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			dst := make([]byte, 0, 2*len(in))
			for b.Loop() {
				var err error
				if dst, err = canon.Append(dst[:0], in, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzCanonicalize compares Canonicalize with encoding/json: both accept the
// same inputs, except that we also reject duplicate names, invalid UTF-8,
// lone surrogate escapes (encoding/json replaces them with U+FFFD), numbers
// out of the range of a double and nesting beyond 10000; accepted inputs
// canonicalize idempotently to JSON that means the same as the input.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[1.0,-0,1e2,"x"]}`, `"\u0041\ud83d\ude00"`, `12345678901234567890`,
		`0.1`, `1e-7`, `1e400`, `{"a":1,"a":2}`, "\"\xff\"", `[1,]`, ` null `,
		`{"\uffff":1,"\ud83d\ude00":2}`, `-0.0`, `0.99999999999999999999`, `[[[[]]]]`,
		`{"a":{"b":{"c":[true,false,null]}}}`, `1.7976931348623157e308`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := canon.Canonicalize(in, 0)
		stdValid := json.Valid(in)
		if err != nil {
			if !errors.Is(err, canon.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			if stdValid && !excusedRejection(in) {
				t.Fatalf("rejected %q (%v), encoding/json accepts it", in, err)
			}
			return
		}
		if !stdValid {
			t.Fatalf("accepted %q as %q, encoding/json rejects it", in, got)
		}
		if !utf8.Valid(in) || hasDuplicateOrHugeNumber(in) {
			t.Fatalf("accepted %q as %q despite invalid UTF-8, a duplicate name or a huge number", in, got)
		}
		if !json.Valid(got) || !utf8.Valid(got) {
			t.Fatalf("output %q is not valid JSON", got)
		}
		again, err := canon.Canonicalize(got, 0)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
		a, b := decode(t, in), decode(t, got)
		if !sameValue(a, b) {
			t.Fatalf("meaning changed: %q -> %q", in, got)
		}
	})
}

// excusedRejection reports whether in, valid for encoding/json, breaks one of
// our stricter rules.
func excusedRejection(in []byte) bool {
	if !utf8.Valid(in) || surrogateEscape.Match(in) {
		return true // invalid UTF-8, or possibly a lone surrogate escape
	}
	if bytes.Count(in, []byte("["))+bytes.Count(in, []byte("{")) > 10000 {
		return true
	}
	d := json.NewDecoder(bytes.NewReader(in))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return true
	}
	return hasDuplicateOrHugeNumber(in)
}

// surrogateEscape matches escapes of UTF-16 surrogates, which are lone (and
// rejected by us) unless paired.
var surrogateEscape = regexp.MustCompile(`\\u[dD][89a-fA-F]`)

// hasDuplicateOrHugeNumber walks in with encoding/json's tokenizer and reports
// a repeated name in one object or a number with a fraction or an exponent
// that a double cannot hold.
func hasDuplicateOrHugeNumber(in []byte) bool {
	d := json.NewDecoder(bytes.NewReader(in))
	d.UseNumber()
	type frame struct {
		names  map[string]bool
		object bool
		key    bool // the next token of an object is a name
	}
	var stack []frame
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if s, ok := tok.(string); ok {
				if top.names[s] {
					return true
				}
				top.names[s] = true
				top.key = false
				continue
			}
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				stack = append(stack, frame{names: map[string]bool{}, object: true, key: true})
				continue
			case '[':
				stack = append(stack, frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		case json.Number:
			// Plain integers may be any size; other numbers must fit a double.
			if _, err := tok.Float64(); err != nil && strings.ContainsAny(string(tok), ".eE") {
				return true
			}
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}

func decode(t *testing.T, in []byte) any {
	d := json.NewDecoder(bytes.NewReader(in))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("encoding/json cannot decode %q: %v", in, err)
	}
	return v
}

// sameValue compares decoded JSON with numbers compared by value: integers
// exactly, other numbers as the doubles they round to.
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		return ok && sameNumber(string(a), string(b))
	default:
		return a == b
	}
}

func sameNumber(a, b string) bool {
	if hugeExponent(a) || hugeExponent(b) {
		// big.Rat would build 10^exp; such numbers are 0 or out of range as
		// doubles, so compare them as doubles.
		fa, _ := strconv.ParseFloat(a, 64)
		fb, _ := strconv.ParseFloat(b, 64)
		return fa == fb
	}
	ra, ok1 := new(big.Rat).SetString(a)
	rb, ok2 := new(big.Rat).SetString(b)
	if !ok1 || !ok2 {
		return false
	}
	if ra.IsInt() {
		if ra.Cmp(rb) == 0 {
			return true
		}
	}
	// Not an integer (or rounded to one): compare the nearest doubles.
	fa, _ := ra.Float64()
	fb, _ := rb.Float64()
	return fa == fb
}

// hugeExponent reports whether the number s has an exponent beyond ±1000.
func hugeExponent(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return false
	}
	e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
	return err != nil || e > 1000 || e < -1000
}
