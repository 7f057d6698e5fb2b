// Package canon turns JSON text and Go values into the one canonical JSON
// form that hakuban uses for descriptor identity, hashing and the wire.
//
// It is the only package of hakuban that imports github.com/goccy/go-json, so
// that the JSON library can be replaced in one place and so that every caller
// gets the same strict validation.
//
// # The canonical form
//
// The form is RFC 8785 (JSON Canonicalization Scheme) except for numbers,
// which RFC 8785 reads as IEEE 754 doubles and so would lose the precision of
// integers beyond 2^53. Here:
//
//   - The input is exactly one JSON value, with optional white space around
//     it. It must be valid UTF-8 (RFC 8259 section 8.1), escapes must name
//     valid code points (no lone surrogates), objects must not repeat a
//     member name (RFC 7493 section 2.3; "a" and "\u0061" are the same name),
//     and nesting is limited to 10000 levels.
//   - Object members are sorted by their names compared as UTF-16 code units
//     (RFC 8785 section 3.2.3); there is no white space.
//   - Strings use the shortest escaping of RFC 8785 section 3.2.2.2: only
//     '"', '\\' and control characters are escaped, as \b \f \n \r \t or
//     \u00xx (lower-case hex); everything else, including '/', U+2028 and
//     non-ASCII, is written as UTF-8.
//   - Every number is read as its exact decimal value. If that value is an
//     integer it is written as plain decimal digits, exactly, however large:
//     1, 1.0, 1e0, 10e-1 and 1.00E+0 are all written 1; 1e2 is 100;
//     12345678901234567890 stays 12345678901234567890; every zero (0, -0,
//     -0.0, 0e5) is 0. Identity is therefore by value for integers, which
//     is what users expect of ids, and large ids stay exact.
//   - A number that is not an integer is rounded to the nearest IEEE 754
//     double and written as RFC 8785 section 3.2.2.3 (ECMAScript) does: 0.1,
//     1.5, 1e-7. Two such numbers are the same iff they round to the same
//     double, as every JSON implementation that uses doubles would see them.
//     If the rounding makes an integer (0.99999999999999999999 is 1), it is
//     written as that integer's shortest digits, so the output is stable.
//   - A number written with a fraction or an exponent must be within the
//     range of a double (|x| <= 1.7976931348623157e308, rounding as
//     strconv.ParseFloat does); 1e400 is rejected rather than silently
//     saturated. This also bounds how much an exponent can expand a number
//     (1e308 becomes 309 digits). Integers written as plain digits have no
//     such limit but the size limit.
//
// The output is idempotent: canonicalizing canonical text returns it
// unchanged.
package canon

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
	"github.com/goccy/go-json/jsontext"
)

// Sentinel errors. Every error of this package wraps one of them (through an
// *Error), so callers test with errors.Is.
var (
	// ErrInvalid: the input is not one valid JSON value under the rules of
	// the package doc, or a Go value could not be marshaled.
	ErrInvalid = errors.New("invalid JSON")
	// ErrTooLarge: the input, or its canonical form, is longer than the limit.
	ErrTooLarge = errors.New("JSON too large")
)

// Error is the error type of the package. Detail says what was wrong without
// a package prefix, so that callers (package core) can rewrap it under their
// own sentinel without repeating themselves.
type Error struct {
	Detail string // e.g. `duplicate object member name "a"`
	Err    error  // ErrInvalid or ErrTooLarge
}

func (e *Error) Error() string { return "canon: " + e.Detail + ": " + e.Err.Error() }

// Unwrap returns the sentinel, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return &Error{Detail: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

func tooLarge(format string, args ...any) error {
	return &Error{Detail: fmt.Sprintf(format, args...), Err: ErrTooLarge}
}

// libError turns an error of the JSON library into an *Error, dropping the
// library's own prefix so that its types never leak out of this package.
func libError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "jsontext: ")
	msg = strings.TrimPrefix(msg, "json: ")
	return &Error{Detail: msg, Err: ErrInvalid}
}

// recovered turns a panic of the JSON library into an error: hakuban may be
// loaded into a host process as a C library, where a panic would kill the
// host. The error wraps ErrInvalid because the input is what the library
// choked on.
func recovered(r any, err *error) {
	*err = &Error{Detail: fmt.Sprintf("JSON library panicked: %v", r), Err: ErrInvalid}
}

// formatOptions make the library validate strictly (its defaults, spelled
// out: reject duplicate names and invalid UTF-8), sort members, drop white
// space and minimize string escapes, while leaving every number exactly as
// written for appendNumber. The library's own number canonicalization
// (Value.Canonicalize with CanonicalizeRawInts(false)) reads every number
// with a fraction or an exponent as a double, so 1e21 would become 1e+21,
// unlike the integer 1000000000000000000000, 12345678901234567890.0 would
// lose its last digits, and 1e400 would saturate to the largest double.
var formatOptions = []jsontext.Options{
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
	jsontext.EscapeForHTML(false),
	jsontext.EscapeForJS(false),
	jsontext.PreserveRawStrings(false),
	jsontext.CanonicalizeRawInts(false),
	jsontext.CanonicalizeRawFloats(false),
	jsontext.ReorderRawObjects(true),
	jsontext.Multiline(false),
	jsontext.SpaceAfterColon(false),
	jsontext.SpaceAfterComma(false),
}

// Canonicalize returns the canonical form of src (see the package doc) in a
// new slice; src is not modified.
//
// maxSize bounds both len(src), checked before any parsing so that a huge
// input costs nothing, and the length of the result, which an exponent can
// make longer than src; maxSize <= 0 means no limit.
func Canonicalize(src []byte, maxSize int) ([]byte, error) {
	return Append(nil, src, maxSize)
}

// Append appends the canonical form of src to dst and returns the extended
// slice, so that a caller can build a larger string around it without a
// copy. On error it returns dst[:len(dst)]. dst may be src[:0], which
// canonicalizes src in place; any other overlap is an error of the caller.
// maxSize is as for Canonicalize and limits only the appended part.
func Append(dst, src []byte, maxSize int) (out []byte, err error) {
	start := len(dst)
	defer func() {
		if r := recover(); r != nil {
			out = dst[:start]
			recovered(r, &err)
		}
	}()
	if maxSize > 0 && len(src) > maxSize {
		return dst, tooLarge("input is %d bytes, limit %d", len(src), maxSize)
	}
	out, err = jsontext.AppendFormat(dst, src, formatOptions...)
	if err != nil {
		return dst[:start], libError(err)
	}
	out, err = fixNumbers(out, start)
	if err != nil {
		return dst[:start], err
	}
	if maxSize > 0 && len(out)-start > maxSize {
		return dst[:start], tooLarge("canonical form is %d bytes, limit %d", len(out)-start, maxSize)
	}
	return out, nil
}

// AppendQuote appends s as a canonical JSON string. It is the fast path for
// the most common descriptor, a plain string, and fails with ErrInvalid if s
// is not valid UTF-8 (rather than silently replacing bytes, which would make
// two different Go strings the same descriptor).
func AppendQuote(dst []byte, s string) (out []byte, err error) {
	start := len(dst)
	defer func() {
		if r := recover(); r != nil {
			out = dst[:start]
			recovered(r, &err)
		}
	}()
	out, err = jsontext.AppendQuote(dst, s)
	if err != nil {
		return dst[:start], invalid("string is not valid UTF-8")
	}
	return out, nil
}

// Marshal returns the canonical JSON of a Go value. It marshals as
// encoding/json does (struct tags, MarshalJSON, json.RawMessage, []byte as
// base64), except that invalid UTF-8 in strings is an error instead of being
// replaced by U+FFFD. Floats are marshaled by their shortest representation,
// so float64(1) and int(1) give the same JSON.
func Marshal(v any) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out = nil
			recovered(r, &err)
		}
	}()
	b, err := json.MarshalWithOption(v, json.DisableNormalizeUTF8())
	if err != nil {
		return nil, libError(err)
	}
	// b is ours: canonicalize it in place, saving a copy.
	out, err = Append(b[:0], b, 0)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Unmarshal parses data into v as encoding/json does, after checking data
// under the same rules as Canonicalize (so duplicate names and invalid UTF-8
// are errors, not silently resolved).
func Unmarshal(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			recovered(r, &err)
		}
	}()
	if !jsontext.Value(data).IsValid() {
		// The slow path only to say why.
		if _, err := jsontext.AppendFormat(nil, data, formatOptions...); err != nil {
			return libError(err)
		}
		return invalid("invalid JSON value")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return libError(err)
	}
	return nil
}

// fixNumbers rewrites, in b[start:], every number that the library left as
// written into its canonical form. b[start:] is compact JSON in which strings
// are minimally escaped, so the scan only has to skip strings. Most
// descriptors have only plain integers, and then nothing is copied.
func fixNumbers(b []byte, start int) ([]byte, error) {
	i, n := start, len(b)
	first := -1 // offset of the first number that needs rewriting
	for i < n && first < 0 {
		switch c := b[i]; {
		case c == '"':
			i = skipString(b, i)
		case c == '-' || (c >= '0' && c <= '9'):
			j := numberEnd(b, i)
			if !plainInteger(b[i:j]) {
				first = i
			}
			i = j
		default:
			i++
		}
	}
	if first < 0 {
		return b, nil
	}
	// Copy the tail, then rewrite it after the prefix that is already right.
	tail := append([]byte(nil), b[first:]...)
	out := b[:first]
	var err error
	for i := 0; i < len(tail); {
		switch c := tail[i]; {
		case c == '"':
			j := skipString(tail, i)
			out = append(out, tail[i:j]...)
			i = j
		case c == '-' || (c >= '0' && c <= '9'):
			j := numberEnd(tail, i)
			out, err = appendNumber(out, tail[i:j])
			if err != nil {
				return b, err
			}
			i = j
		default:
			out = append(out, c)
			i++
		}
	}
	return out, nil
}

// skipString returns the offset after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // the escaped character; \uXXXX's hex digits are never quotes
		case '"':
			return i + 1
		}
	}
	return i
}

// numberEnd returns the offset after the number starting at b[i].
func numberEnd(b []byte, i int) int {
	for i < len(b) {
		switch c := b[i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// plainInteger reports whether the valid JSON number tok is already
// canonical: an integer without fraction or exponent other than -0. (JSON
// forbids leading zeros, so the digits of such a token are unique.)
func plainInteger(tok []byte) bool {
	for _, c := range tok {
		if c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return !(len(tok) == 2 && tok[0] == '-' && tok[1] == '0')
}

// maxDoubleDigits is the number of integer digits of the largest finite
// double (1.7976931348623157e308); an integer with more is out of range.
const maxDoubleDigits = 309

// appendNumber appends the canonical form of the valid JSON number tok.
func appendNumber(dst, tok []byte) ([]byte, error) {
	if plainInteger(tok) {
		return append(dst, tok...), nil
	}
	// Split tok = [-] int [. frac] [(e|E) [+|-] exp].
	neg := tok[0] == '-'
	i := 0
	if neg {
		i++
	}
	intStart := i
	for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
		i++
	}
	intPart := tok[intStart:i]
	var frac []byte
	if i < len(tok) && tok[i] == '.' {
		i++
		fs := i
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
		frac = tok[fs:i]
	}
	var exp int64
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		expNeg := false
		if tok[i] == '+' || tok[i] == '-' {
			expNeg = tok[i] == '-'
			i++
		}
		for ; i < len(tok); i++ {
			// Saturate: an exponent beyond 1e15 is out of range either way
			// (or makes a non-zero value round to 0), and input length keeps
			// the fraction far shorter than that.
			if exp < 1e15 {
				exp = exp*10 + int64(tok[i]-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	// The value is digits × 10^e, digits without leading or trailing zeros.
	digits := make([]byte, 0, len(intPart)+len(frac))
	digits = append(append(digits, intPart...), frac...)
	lead := 0
	for lead < len(digits) && digits[lead] == '0' {
		lead++
	}
	digits = digits[lead:]
	if len(digits) == 0 {
		return append(dst, '0'), nil // every zero, -0 and 0e99 included
	}
	trail := 0
	for trail < len(digits) && digits[len(digits)-1-trail] == '0' {
		trail++
	}
	digits = digits[:len(digits)-trail]
	e := exp - int64(len(frac)) + int64(trail)

	if e >= 0 {
		// An integer: exact digits, if a double could hold it.
		if total := int64(len(digits)) + e; total >= maxDoubleDigits {
			if total > maxDoubleDigits {
				return dst, invalid("number %.40s is out of the range of a double", tok)
			}
			if _, err := strconv.ParseFloat(string(tok), 64); err != nil {
				return dst, invalid("number %.40s is out of the range of a double", tok)
			}
		}
		if neg {
			dst = append(dst, '-')
		}
		dst = append(dst, digits...)
		for ; e > 0; e-- {
			dst = append(dst, '0')
		}
		return dst, nil
	}

	// Not an integer: the nearest double.
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && (math.IsInf(f, 0) || math.IsNaN(f)) {
		return dst, invalid("number %.40s is out of the range of a double", tok)
	}
	switch {
	case f == 0:
		return append(dst, '0'), nil // underflow: 1e-400 and -1e-400 are 0
	case f == math.Trunc(f):
		// Rounding made an integer: write it as an integer token, which is
		// what canonicalizing the result again gives (idempotence).
		return strconv.AppendFloat(dst, f, 'f', -1, 64), nil
	default:
		return jsontext.AppendFloat(dst, f, 64), nil
	}
}
