package core_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/hakuban/hakuban/core"
)

func parseTagT(t testing.TB, text string) core.TagDescriptor {
	t.Helper()
	td, err := core.ParseTagDescriptor([]byte(text))
	if err != nil {
		t.Fatalf("ParseTagDescriptor(%s): %v", text, err)
	}
	return td
}

func parseObjectT(t testing.TB, text string, tags ...core.TagDescriptor) core.ObjectDescriptor {
	t.Helper()
	d, err := core.ParseObjectDescriptor([]byte(text), tags...)
	if err != nil {
		t.Fatalf("ParseObjectDescriptor(%s): %v", text, err)
	}
	return d
}

func TestObjectDescriptorIdentity(t *testing.T) {
	a, b, c := core.MustTagDescriptor("a"), core.MustTagDescriptor("b"), core.MustTagDescriptor(map[string]int{"room": 12})
	tests := []struct {
		name   string
		x, y   core.ObjectDescriptor
		wantEq bool
	}{
		{"key order", parseObjectT(t, `{"a":1,"b":2}`), parseObjectT(t, `{"b":2, "a":1}`), true},
		{"white space", parseObjectT(t, `{"a":[1,2]}`), parseObjectT(t, " {\n\t\"a\" : [ 1 , 2 ] } "), true},
		{"escapes", parseObjectT(t, `"\u0041"`), parseObjectT(t, `"A"`), true},
		{"escaped names", parseObjectT(t, `{"\u0061":1}`), parseObjectT(t, `{"a":1}`), true},
		{"tag order", parseObjectT(t, `1`, a, b), parseObjectT(t, `1`, b, a), true},
		{"duplicate tags", parseObjectT(t, `1`, a, b, a), parseObjectT(t, `1`, b, a), true},
		{"tag by value", parseObjectT(t, `1`, parseTagT(t, `{ "room" : 12 }`)), parseObjectT(t, `1`, c), true},
		{"different tags", parseObjectT(t, `1`, a), parseObjectT(t, `1`, b), false},
		{"tags vs none", parseObjectT(t, `1`, a), parseObjectT(t, `1`), false},
		{"subset of tags", parseObjectT(t, `1`, a), parseObjectT(t, `1`, a, b), false},
		{"one vs one point zero", parseObjectT(t, `1`), parseObjectT(t, `1.0`), true},
		{"exponent", parseObjectT(t, `{"n":100}`), parseObjectT(t, `{"n":1e2}`), true},
		{"minus zero", parseObjectT(t, `0`), parseObjectT(t, `-0`), true},
		{"big ints differ", parseObjectT(t, `12345678901234567890`), parseObjectT(t, `12345678901234567891`), false},
		{"big int exact", parseObjectT(t, `12345678901234567890`), parseObjectT(t, `12345678901234567890.0`), true},
		{"doubles", parseObjectT(t, `0.1`), parseObjectT(t, `0.10000000000000000001`), true},
		{"string vs number", parseObjectT(t, `"1"`), parseObjectT(t, `1`), false},
		{"array order matters", parseObjectT(t, `[1,2]`), parseObjectT(t, `[2,1]`), false},
		{"value vs tag", parseObjectT(t, `"a"`), parseObjectT(t, `null`, a), false},
		{"new vs parse", core.MustObjectDescriptor(map[string]any{"type": "sensor", "id": 123}, a), parseObjectT(t, `{"id":123,"type":"sensor"}`, a), true},
		{"new string", core.MustObjectDescriptor("x"), parseObjectT(t, `"x"`), true},
		{"new float", core.MustObjectDescriptor(1.0), parseObjectT(t, `1`), true},
		{"new raw message", core.MustObjectDescriptor(json.RawMessage(`{"b":1, "a":2}`)), parseObjectT(t, `{"a":2,"b":1}`), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.x.Equal(tt.y); got != tt.wantEq {
				t.Fatalf("%v.Equal(%v) = %v, want %v", tt.x, tt.y, got, tt.wantEq)
			}
			if got := tt.x.Key() == tt.y.Key(); got != tt.wantEq {
				t.Fatalf("keys %q, %q: equal = %v, want %v", tt.x.Key(), tt.y.Key(), got, tt.wantEq)
			}
		})
	}
}

func TestTagDescriptorIdentity(t *testing.T) {
	tests := []struct {
		name   string
		x, y   core.TagDescriptor
		wantEq bool
	}{
		{"string", core.MustTagDescriptor("sensors"), parseTagT(t, `"sensors"`), true},
		{"escape", parseTagT(t, `"\u0073ensors"`), parseTagT(t, `"sensors"`), true},
		{"object order", parseTagT(t, `{"b":1,"a":2}`), parseTagT(t, `{"a":2,"b":1}`), true},
		{"number", parseTagT(t, `1.0`), core.MustTagDescriptor(1), true},
		{"different", parseTagT(t, `"a"`), parseTagT(t, `"b"`), false},
		{"big ints", parseTagT(t, `12345678901234567890`), parseTagT(t, `12345678901234567891`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.x == tt.y; got != tt.wantEq {
				t.Fatalf("%v == %v: %v, want %v", tt.x, tt.y, got, tt.wantEq)
			}
			if got := tt.x.Compare(tt.y) == 0; got != tt.wantEq {
				t.Fatalf("Compare(%v, %v) == 0: %v, want %v", tt.x, tt.y, got, tt.wantEq)
			}
		})
	}
	// usable as a map key
	m := map[core.TagDescriptor]int{parseTagT(t, `{"a":1,"b":2}`): 1}
	if m[parseTagT(t, `{ "b": 2, "a": 1 }`)] != 1 {
		t.Fatal("equal tags are different map keys")
	}
}

func TestObjectDescriptorAccessors(t *testing.T) {
	b, a, c := parseTagT(t, `"b"`), parseTagT(t, `"a"`), parseTagT(t, `{"c":3}`)
	d := parseObjectT(t, ` { "type" : "sensor", "id": 123 } `, c, b, a, b)
	if got, want := d.JSON(), `{"id":123,"type":"sensor"}`; got != want {
		t.Errorf("JSON() = %s, want %s", got, want)
	}
	if got, want := d.Key(), `{"json":{"id":123,"type":"sensor"},"tags":["a","b",{"c":3}]}`; got != want {
		t.Errorf("Key() = %s, want %s", got, want)
	}
	if d.String() != d.Key() {
		t.Errorf("String() = %s, want Key", d.String())
	}
	if d.NumTags() != 3 || d.Tag(0) != a || d.Tag(1) != b || d.Tag(2) != c {
		t.Errorf("tags = %v", d.Tags())
	}
	if got, want := d.Size(), len(`{"id":123,"type":"sensor"}`)+len(`"a"`)+len(`"b"`)+len(`{"c":3}`); got != want {
		t.Errorf("Size() = %d, want %d", got, want)
	}
	for _, x := range []core.TagDescriptor{a, b, c} {
		if !d.HasTag(x) {
			t.Errorf("HasTag(%v) = false", x)
		}
	}
	for _, x := range []core.TagDescriptor{parseTagT(t, `"c"`), parseTagT(t, `"0"`), parseTagT(t, `{"d":1}`), {}} {
		if d.HasTag(x) {
			t.Errorf("HasTag(%v) = true", x)
		}
	}
	// Tags returns a copy.
	tags := d.Tags()
	tags[0] = c
	if d.Tag(0) != a {
		t.Error("modifying Tags() changed the descriptor")
	}

	none := parseObjectT(t, `"x"`)
	if none.NumTags() != 0 || none.Tags() != nil || none.HasTag(a) || none.Size() != 3 {
		t.Errorf("no tags: %d %v %d", none.NumTags(), none.Tags(), none.Size())
	}
	one := parseObjectT(t, `"x"`, a)
	if one.Size() != 6 || one.Key() != `{"json":"x","tags":["a"]}` {
		t.Errorf("one tag: size %d key %s", one.Size(), one.Key())
	}
}

func TestZeroDescriptors(t *testing.T) {
	var d core.ObjectDescriptor
	if !d.IsZero() || d.JSON() != "" || d.Key() != "" || d.Size() != 0 || d.NumTags() != 0 || d.Tags() != nil {
		t.Error("zero ObjectDescriptor accessors")
	}
	if d.String() == "" {
		t.Error("zero ObjectDescriptor prints as nothing")
	}
	if _, err := d.MarshalJSON(); !errors.Is(err, core.ErrInvalidDescriptor) {
		t.Errorf("zero MarshalJSON: %v", err)
	}
	if err := core.DefaultDescriptorLimits().Check(d); !errors.Is(err, core.ErrInvalidDescriptor) {
		t.Errorf("Check(zero): %v", err)
	}
	if parseObjectT(t, `null`).IsZero() {
		t.Error("null descriptor is zero")
	}
	var td core.TagDescriptor
	if !td.IsZero() || td.JSON() != "" || td.String() == "" {
		t.Error("zero TagDescriptor accessors")
	}
	if _, err := json.Marshal(td); !errors.Is(err, core.ErrInvalidDescriptor) {
		t.Errorf("zero tag marshal: %v", err)
	}
	if _, err := core.ParseObjectDescriptor([]byte(`1`), parseTagT(t, `1`), td); !errors.Is(err, core.ErrInvalidDescriptor) {
		t.Errorf("zero tag accepted: %v", err)
	}
	if parseTagT(t, `null`).IsZero() {
		t.Error("null tag is zero")
	}
}

func TestDescriptorErrors(t *testing.T) {
	limits := core.DefaultDescriptorLimits()
	manyTags := make([]core.TagDescriptor, limits.MaxTags+1)
	for i := range manyTags {
		manyTags[i] = core.MustTagDescriptor(i)
	}
	bigTag := core.MustTagDescriptor(strings.Repeat("t", 40000))
	big := `"` + strings.Repeat("x", limits.MaxSize) + `"`
	tests := []struct {
		name string
		text string
		tags []core.TagDescriptor
		want error
	}{
		{"empty", ``, nil, core.ErrInvalidDescriptor},
		{"bad syntax", `{"a":}`, nil, core.ErrInvalidDescriptor},
		{"trailing garbage", `{"a":1} x`, nil, core.ErrInvalidDescriptor},
		{"two values", `1 2`, nil, core.ErrInvalidDescriptor},
		{"invalid utf8", "\"\xc3\x28\"", nil, core.ErrInvalidDescriptor},
		{"lone surrogate", `"\udc00"`, nil, core.ErrInvalidDescriptor},
		{"duplicate names", `{"a":1,"a":1}`, nil, core.ErrInvalidDescriptor},
		{"duplicate names by escape", `{"a":1,"\u0061":2}`, nil, core.ErrInvalidDescriptor},
		{"number out of range", `1e400`, nil, core.ErrInvalidDescriptor},
		{"too deep", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), nil, core.ErrInvalidDescriptor},
		{"oversize value", big, nil, core.ErrDescriptorTooLarge},
		{"oversize with tags", `"` + strings.Repeat("x", 30000) + `"`, []core.TagDescriptor{bigTag}, core.ErrDescriptorTooLarge},
		{"huge text", strings.Repeat(" ", 4*limits.MaxSize+1) + "1", nil, core.ErrDescriptorTooLarge},
		{"huge garbage", strings.Repeat("\xff", 1<<20), nil, core.ErrDescriptorTooLarge},
		{"exponent expands past limit", "[" + strings.Repeat("1e300,", 300) + "1]", nil, core.ErrDescriptorTooLarge},
		{"too many tags", `1`, manyTags, core.ErrTooManyTags},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := core.ParseObjectDescriptor([]byte(tt.text), tt.tags...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseObjectDescriptor(%.40q) = %v, %v; want %v", tt.text, d, err, tt.want)
			}
			if !d.IsZero() {
				t.Fatalf("got a descriptor with an error")
			}
			if !strings.HasPrefix(err.Error(), "core: ") || strings.Contains(err.Error(), "canon:") || strings.Contains(err.Error(), "jsontext") {
				t.Fatalf("error %q does not read as a core error", err)
			}
			if tt.tags == nil {
				if _, err := core.ParseTagDescriptor([]byte(tt.text)); !errors.Is(err, tt.want) {
					t.Fatalf("ParseTagDescriptor(%.40q) = %v, want %v", tt.text, err, tt.want)
				}
			}
		})
	}
}

func TestDescriptorErrorMessages(t *testing.T) {
	big := `"` + strings.Repeat("x", 69998) + `"`
	_, err := core.ParseObjectDescriptor([]byte(big))
	if got, want := err.Error(), "core: object descriptor is 70000 bytes, limit 65536: descriptor too large"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	_, err = core.ParseObjectDescriptor([]byte(`{"a":1,"a":2}`))
	if got, want := err.Error(), `core: object descriptor: duplicate object member name "a": invalid descriptor`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestDescriptorLimitBoundaries(t *testing.T) {
	limits := core.DefaultDescriptorLimits()
	exact := `"` + strings.Repeat("x", limits.MaxSize-2) + `"`
	if _, err := core.ParseObjectDescriptor([]byte(exact)); err != nil {
		t.Errorf("descriptor of exactly MaxSize: %v", err)
	}
	if _, err := core.ParseTagDescriptor([]byte(exact)); err != nil {
		t.Errorf("tag of exactly MaxSize: %v", err)
	}
	// White space does not count: only canonical bytes do.
	padded := "\n" + strings.Repeat(" ", limits.MaxSize) + exact
	if _, err := core.ParseObjectDescriptor([]byte(padded)); err != nil {
		t.Errorf("padded descriptor of MaxSize: %v", err)
	}
	tags := make([]core.TagDescriptor, 0, 2*limits.MaxTags)
	for i := range limits.MaxTags {
		tags = append(tags, core.MustTagDescriptor(i), core.MustTagDescriptor(i)) // duplicates count once
	}
	d, err := core.ParseObjectDescriptor([]byte(`1`), tags...)
	if err != nil || d.NumTags() != limits.MaxTags {
		t.Errorf("MaxTags distinct tags: %d, %v", d.NumTags(), err)
	}
	// A value and its tags share the budget.
	half := core.MustTagDescriptor(strings.Repeat("t", limits.MaxSize/2-2))
	if _, err := core.NewObjectDescriptor(strings.Repeat("v", limits.MaxSize/2-2), half); err != nil {
		t.Errorf("value + tag = MaxSize: %v", err)
	}
	if _, err := core.NewObjectDescriptor(strings.Repeat("v", limits.MaxSize/2-1), half); !errors.Is(err, core.ErrDescriptorTooLarge) {
		t.Errorf("value + tag = MaxSize+1: %v", err)
	}
}

func TestNewDescriptorErrors(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want error
	}{
		{"invalid utf8 string", "\xff", core.ErrInvalidDescriptor},
		{"invalid utf8 key", map[string]int{"\xff": 1}, core.ErrInvalidDescriptor},
		{"channel", make(chan int), core.ErrInvalidDescriptor},
		{"invalid raw", json.RawMessage(`{"a":1,"a":2}`), core.ErrInvalidDescriptor},
		{"too large", strings.Repeat("x", 1<<16), core.ErrDescriptorTooLarge},
		{"too large map", map[string]string{"x": strings.Repeat("x", 1<<16)}, core.ErrDescriptorTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := core.NewObjectDescriptor(tt.v); !errors.Is(err, tt.want) {
				t.Errorf("NewObjectDescriptor: %v, want %v", err, tt.want)
			}
			if _, err := core.NewTagDescriptor(tt.v); !errors.Is(err, tt.want) {
				t.Errorf("NewTagDescriptor: %v, want %v", err, tt.want)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("MustObjectDescriptor did not panic")
		}
	}()
	core.MustObjectDescriptor(make(chan int))
}

func TestDescriptorLimits(t *testing.T) {
	def := core.DefaultDescriptorLimits()
	if def.MaxSize != 64<<10 || def.MaxTags != 64 {
		t.Fatalf("defaults = %+v", def)
	}
	for _, l := range []core.DescriptorLimits{{MaxSize: 0, MaxTags: 1}, {MaxSize: -1, MaxTags: 1}, {MaxSize: 1 << 31, MaxTags: 1}, {MaxSize: 10, MaxTags: -1}} {
		if err := l.Validate(); !errors.Is(err, core.ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v", l, err)
		}
		if _, err := l.ParseObjectDescriptor([]byte(`1`)); !errors.Is(err, core.ErrInvalidConfig) {
			t.Errorf("ParseObjectDescriptor under %+v = %v", l, err)
		}
	}
	if err := (core.DescriptorLimits{MaxSize: 1, MaxTags: 0}).Validate(); err != nil {
		t.Errorf("smallest limits: %v", err)
	}

	a, b := parseTagT(t, `"a"`), parseTagT(t, `"b"`)
	d := parseObjectT(t, `"0123456789"`, a, b) // size 12 + 3 + 3 = 18
	tests := []struct {
		l    core.DescriptorLimits
		want error
	}{
		{core.DescriptorLimits{MaxSize: 18, MaxTags: 2}, nil},
		{core.DescriptorLimits{MaxSize: 17, MaxTags: 2}, core.ErrDescriptorTooLarge},
		{core.DescriptorLimits{MaxSize: 18, MaxTags: 1}, core.ErrTooManyTags},
	}
	for _, tt := range tests {
		if err := tt.l.Check(d); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%+v.Check = %v, want %v", tt.l, err, tt.want)
		}
	}

	// Larger limits accept what the defaults refuse.
	large := core.DescriptorLimits{MaxSize: 1 << 20, MaxTags: 1000}
	text := []byte(`"` + strings.Repeat("x", 100000) + `"`)
	if _, err := core.ParseObjectDescriptor(text); !errors.Is(err, core.ErrDescriptorTooLarge) {
		t.Errorf("default limits: %v", err)
	}
	ld, err := large.ParseObjectDescriptor(text)
	if err != nil || large.Check(ld) != nil {
		t.Errorf("large limits: %v", err)
	}
	lt, err := large.ParseTagDescriptor(text)
	if err != nil || lt.JSON() != string(text) {
		t.Errorf("large tag: %v", err)
	}
	small := core.DescriptorLimits{MaxSize: 5, MaxTags: 0}
	if _, err := small.ParseObjectDescriptor([]byte(`"abcd"`)); !errors.Is(err, core.ErrDescriptorTooLarge) {
		t.Errorf("small limits: %v", err)
	}
	if _, err := small.ParseObjectDescriptor([]byte(`1`), a); !errors.Is(err, core.ErrTooManyTags) {
		t.Errorf("MaxTags 0: %v", err)
	}
}

type descWrapper struct {
	Object core.ObjectDescriptor `json:"object"`
	Tag    core.TagDescriptor    `json:"tag"`
}

func TestDescriptorJSONRoundTrip(t *testing.T) {
	for _, d := range []core.ObjectDescriptor{
		parseObjectT(t, `{"b":[1,2.5,"x"],"a":null}`, parseTagT(t, `"t2"`), parseTagT(t, `{"t":1}`)),
		parseObjectT(t, `12345678901234567890`),
		parseObjectT(t, `null`, parseTagT(t, `null`)),
		parseObjectT(t, `"\u0000\n\"é😀"`, parseTagT(t, `"\u2028"`)),
	} {
		if b, err := d.MarshalJSON(); err != nil || string(b) != d.Key() {
			t.Errorf("MarshalJSON = %s, %v; want Key %s", b, err, d.Key())
		}
		// encoding/json re-escapes U+2028, so compare by value.
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", d, err)
		}
		var back core.ObjectDescriptor
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(d) {
			t.Errorf("round trip %s: %v, %v", b, back, err)
		}

		w := descWrapper{Object: d, Tag: parseTagT(t, `"x"`)}
		if d.NumTags() > 0 {
			w.Tag = d.Tag(0)
		}
		b, err = json.Marshal(w)
		if err != nil {
			t.Fatalf("Marshal(descWrapper): %v", err)
		}
		var wb descWrapper
		if err := json.Unmarshal(b, &wb); err != nil || !wb.Object.Equal(d) || wb.Tag != w.Tag {
			t.Errorf("descWrapper round trip %s: %+v, %v", b, wb, err)
		}
	}

	// Non-canonical input forms are accepted.
	var d core.ObjectDescriptor
	in := `{ "tags" : [ "b", "a", "b" ], "json" : { "y": 1.0, "x": 2 } }`
	if err := json.Unmarshal([]byte(in), &d); err != nil || d.Key() != `{"json":{"x":2,"y":1},"tags":["a","b"]}` {
		t.Errorf("Unmarshal(%s) = %v, %v", in, d, err)
	}
	if err := json.Unmarshal([]byte(`{"json":"no tags"}`), &d); err != nil || d.JSON() != `"no tags"` || d.NumTags() != 0 {
		t.Errorf("Unmarshal without tags = %v, %v", d, err)
	}
	// null leaves the value alone.
	before := d
	if err := json.Unmarshal([]byte(`null`), &d); err != nil || !d.Equal(before) {
		t.Errorf("Unmarshal(null) = %v, %v", d, err)
	}
	var td core.TagDescriptor
	if err := json.Unmarshal([]byte(` { "b":1, "a":2 } `), &td); err != nil || td.JSON() != `{"a":2,"b":1}` {
		t.Errorf("tag Unmarshal = %v, %v", td, err)
	}
}

func TestObjectDescriptorUnmarshalErrors(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `1`, `"x"`,
		`{"tags":[]}`,
		`{"json":1,"tags":{}}`,
		`{"json":1,"tags":null}`,
		`{"json":1,"tags":[1,]}`,
		`{"json":1,"extra":2}`,
		`{"json":1,"json":2}`,
		`{"JSON":1}`,
		`{"json":{"a":1,"a":2}}`,
		`{"json":1,"tags":[{"a":1,"a":2}]}`,
	} {
		var d core.ObjectDescriptor
		if err := d.UnmarshalJSON([]byte(in)); !errors.Is(err, core.ErrInvalidDescriptor) {
			t.Errorf("UnmarshalJSON(%s) = %v, want ErrInvalidDescriptor", in, err)
		}
	}
	var tags []string
	for i := range 65 {
		tags = append(tags, strconv.Itoa(i))
	}
	var d core.ObjectDescriptor
	in := `{"json":1,"tags":[` + strings.Join(tags, ",") + `]}`
	if err := d.UnmarshalJSON([]byte(in)); !errors.Is(err, core.ErrTooManyTags) {
		t.Errorf("UnmarshalJSON with 65 tags = %v", err)
	}
	in = `{"json":"` + strings.Repeat("x", 70000) + `"}`
	if err := d.UnmarshalJSON([]byte(in)); !errors.Is(err, core.ErrDescriptorTooLarge) {
		t.Errorf("UnmarshalJSON oversize = %v", err)
	}
}

// TestDescriptorMemory checks the promises about memory: the struct stays
// small, a tagless descriptor has no tags slice, and the accessors that
// return parts of the key do not allocate. (Allocations of parsing are in
// BenchmarkParseObjectDescriptor; under -race sync.Pool drops items at
// random, so they are not asserted here.)
func TestDescriptorMemory(t *testing.T) {
	if size := unsafe.Sizeof(core.ObjectDescriptor{}); size > 6*unsafe.Sizeof(uintptr(0)) {
		t.Errorf("ObjectDescriptor is %d bytes", size)
	}
	d := parseObjectT(t, `"x"`)
	if d.Tags() != nil {
		t.Error("Tags() of a tagless descriptor is not nil")
	}
	dt := parseObjectT(t, `{"a":[1,2,3]}`, parseTagT(t, `"b"`), parseTagT(t, `"a"`))
	allocs := testing.AllocsPerRun(100, func() {
		_ = dt.JSON()
		_ = dt.Key()
		_ = dt.Size()
		_ = dt.Tag(1)
		_ = dt.HasTag(dt.Tag(0))
		_ = dt.Equal(d)
	})
	if allocs != 0 {
		t.Errorf("accessors allocate: %v", allocs)
	}
}

func ExampleObjectDescriptor() {
	sensors := core.MustTagDescriptor("sensors")
	room := core.MustTagDescriptor(map[string]int{"room": 12})
	a := core.MustObjectDescriptor(map[string]any{"type": "thermometer", "id": 7}, sensors, room)
	b, _ := core.ParseObjectDescriptor([]byte(`{ "id": 7.0, "type": "thermometer" }`), room, sensors, room)
	fmt.Println(a.JSON())
	fmt.Println(a.Tags())
	fmt.Println(a.Equal(b))
	// Output:
	// {"id":7,"type":"thermometer"}
	// ["sensors" {"room":12}]
	// true
}

func BenchmarkParseObjectDescriptor(b *testing.B) {
	tags := []core.TagDescriptor{core.MustTagDescriptor("sensors"), core.MustTagDescriptor(map[string]int{"room": 12})}
	for _, bc := range []struct {
		name string
		text string
		tags []core.TagDescriptor
	}{
		{"small/2tags", `{"type":"sensor","id":123}`, tags},
		{"small/notags", `{"type":"sensor","id":123}`, nil},
		{"canonical/2tags", `{"id":123,"type":"sensor"}`, tags},
		{"1KiB/2tags", `{"list":[` + strings.Repeat(`{"name":"item","value":12345},`, 33) + `1]}`, tags},
	} {
		text := []byte(bc.text)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := core.ParseObjectDescriptor(text, bc.tags...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewObjectDescriptor(b *testing.B) {
	tags := []core.TagDescriptor{core.MustTagDescriptor("sensors"), core.MustTagDescriptor(map[string]int{"room": 12})}
	v := map[string]any{"type": "sensor", "id": 123}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := core.NewObjectDescriptor(v, tags...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHasTag(b *testing.B) {
	tags := make([]core.TagDescriptor, 64)
	for i := range tags {
		tags[i] = core.MustTagDescriptor(i)
	}
	d := core.MustObjectDescriptor("x", tags...)
	probe := core.MustTagDescriptor(40)
	b.ReportAllocs()
	for b.Loop() {
		if !d.HasTag(probe) {
			b.Fatal("missing")
		}
	}
}

// FuzzParseObjectDescriptor: parsing never panics, and an accepted descriptor
// survives a round trip through its JSON and its Key unchanged.
func FuzzParseObjectDescriptor(f *testing.F) {
	for _, s := range []struct{ value, tag string }{
		{`{"type":"sensor","id":123}`, `"sensors"`},
		{` { "b" : 1.0, "a" : [1e2, -0, "\u0041"] } `, `{"room":12}`},
		{`12345678901234567890`, `null`},
		{`{"a":1,"a":2}`, `1`},
		{"\"\xff\"", `"x"`},
		{`1e400`, `[]`},
		{`[[[[]]]]`, `{"a":{"b":[]}}`},
	} {
		f.Add([]byte(s.value), []byte(s.tag))
	}
	f.Fuzz(func(t *testing.T, value, tagText []byte) {
		var tags []core.TagDescriptor
		if td, err := core.ParseTagDescriptor(tagText); err == nil {
			if td.IsZero() {
				t.Fatal("ParseTagDescriptor returned the zero tag without an error")
			}
			again, err := core.ParseTagDescriptor([]byte(td.JSON()))
			if err != nil || again != td {
				t.Fatalf("tag %q -> %q -> %q, %v", tagText, td.JSON(), again.JSON(), err)
			}
			tags = append(tags, td, td)
		} else if !errors.Is(err, core.ErrInvalidDescriptor) && !errors.Is(err, core.ErrDescriptorTooLarge) {
			t.Fatalf("tag error %v wraps no descriptor sentinel", err)
		}
		d, err := core.ParseObjectDescriptor(value, tags...)
		if err != nil {
			if !errors.Is(err, core.ErrInvalidDescriptor) && !errors.Is(err, core.ErrDescriptorTooLarge) {
				t.Fatalf("error %v wraps no descriptor sentinel", err)
			}
			return
		}
		if d.IsZero() || d.NumTags() != len(tags)/2 {
			t.Fatalf("accepted %q as %v", value, d)
		}
		again, err := core.ParseObjectDescriptor([]byte(d.JSON()), d.Tags()...)
		if err != nil || !again.Equal(d) || again.Key() != d.Key() || again.JSON() != d.JSON() {
			t.Fatalf("JSON round trip: %q -> %q -> %q, %v", value, d.Key(), again.Key(), err)
		}
		var fromKey core.ObjectDescriptor
		if err := fromKey.UnmarshalJSON([]byte(d.Key())); err != nil || !fromKey.Equal(d) {
			t.Fatalf("Key round trip: %q -> %q, %v", d.Key(), fromKey.Key(), err)
		}
		if core.DefaultDescriptorLimits().Check(d) != nil {
			t.Fatalf("accepted descriptor fails Check: %v", core.DefaultDescriptorLimits().Check(d))
		}
	})
}
