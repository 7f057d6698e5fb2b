package delta

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Level is the zstd level used for full states and for deltas against a
// base smaller than BigBase.
//
// SpeedFastest (about zstd level 1) is used because states are on the hot
// path and higher levels gain little on them. Measured with this package's
// benchmarks on JSON documents: a 100 KB document with 1 % of its bytes
// changed gives a 1557 B delta at SpeedFastest and 1522 B at SpeedDefault,
// and SpeedFastest computes it about 2.5 times faster; compressing 1 MB gives
// 18.7 % vs 19.0 % of the input at about the same speed.
const Level = zstd.SpeedFastest

// BigBase is the base size from which deltas use BigBaseLevel. The fastest
// level finds matches through a 32 Ki-entry hash table that a large base
// overflows: for a 3 MiB document with 0.1 % changed its delta is 95 KB,
// against 11 KB at SpeedDefault (1 MiB: 3.9 KB vs 2.8 KB). SpeedDefault costs
// about twice the time, paid once per delta and shared by every link.
const BigBase = 512 << 10

// BigBaseLevel is the zstd level of deltas against a base of BigBase bytes
// or more.
const BigBaseLevel = zstd.SpeedDefault

// MinCompressSize is the size below which a full state is sent raw: a zstd
// frame costs at least 9 bytes of overhead (13 with its checksum) and small
// states rarely shrink enough to pay for it and for the CPU time.
const MinCompressSize = 512

// MaxWindowLog is the base-2 logarithm of the largest zstd window a frame may
// declare (128 MiB, the default limit of the reference decoder). The encoders
// here never declare more than the data needs.
const MaxWindowLog = 27

// MaxSize caps the maxSize argument of Decompress and Apply: larger values
// are treated as MaxSize. It is far above any state size the protocol
// allows and keeps a careless caller from asking for an impossible buffer.
const MaxSize = 1 << 30

// minWindowLog is the smallest encoder window class (128 KiB, one zstd block).
const minWindowLog = 17

// numClasses is the number of encoder window classes, minWindowLog through
// MaxWindowLog.
const numClasses = MaxWindowLog - minWindowLog + 1

// maxPlainWindowLog caps the window of plain compression at 8 MiB, the zstd
// default: larger windows only help data with repeats further apart.
const maxPlainWindowLog = 23

// Encoders are pooled by window class because a zstd encoder keeps a history
// buffer of about its window size: one 8 MiB-window encoder for a 64-byte
// state would waste 8 MiB per pooled encoder. The pools are the package's
// only global state; sync.Pool lets the garbage collector reclaim idle
// encoders.
var (
	plainEncoders [numClasses]sync.Pool    // of *zstd.Encoder, no dictionary
	dictEncoders  [2][numClasses]sync.Pool // of *dictEncoder; [0] at Level, [1] at BigBaseLevel
	decoders      sync.Pool                // of *zstd.Decoder
)

// dictEncoder is a pooled raw-dictionary encoder with its output writer, so
// that encoding allocates nothing once warm.
type dictEncoder struct {
	z *zstd.Encoder
	w appendWriter
}

// appendWriter is an io.Writer appending to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// windowClass returns the pool index of the smallest window holding n bytes,
// capped at maxLog.
func windowClass(n, maxLog int) int {
	l := bits.Len(uint(n))
	if n > 0 && n&(n-1) == 0 {
		l-- // exact power of two
	}
	l = max(l, minWindowLog)
	l = min(l, maxLog)
	return l - minWindowLog
}

func encoderOptions(level zstd.EncoderLevel, class int) []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1 << (class + minWindowLog)),
		// Keep the history buffer at window + one block instead of two
		// windows.
		zstd.WithLowerEncoderMem(true),
		// Checksums catch a delta applied to the wrong base, and bugs
		// in other implementations, for 4 bytes.
		zstd.WithEncoderCRC(true),
		// Single-segment frames always carry the content size, which
		// the protocol requires (zstd omits it from other frames under
		// 256 bytes). Larger frames written by the streaming path of
		// Encode get it from ResetContentSize.
		zstd.WithSingleSegment(true),
	}
}

// Compress appends one zstd frame holding src to dst and returns the
// extended slice. It does not allocate when dst has room for the result
// (at most len(src) plus a small overhead) and a warm encoder is pooled.
func Compress(dst, src []byte) []byte {
	class := windowClass(len(src), maxPlainWindowLog)
	z, _ := plainEncoders[class].Get().(*zstd.Encoder)
	if z == nil {
		var err error
		z, err = zstd.NewWriter(nil, encoderOptions(Level, class)...)
		if err != nil {
			panic("delta: zstd options: " + err.Error()) // constant options
		}
	}
	dst = z.EncodeAll(src, dst)
	plainEncoders[class].Put(z)
	return dst
}

// Encode appends to dst a delta that turns from into to, and returns the
// extended slice. The delta is one zstd frame compressed with from as a raw
// dictionary; Apply reverses it. The cost is dominated by indexing from, so
// callers should compute a delta once and share it (see Cache).
//
// from must stay unchanged during the call. A pooled encoder keeps a
// reference to from until it is reused or collected.
func Encode(dst, from, to []byte) []byte {
	if len(to) == 0 {
		// The streaming path would omit the content size of an empty
		// frame; an empty frame needs no dictionary anyway.
		return Compress(dst, nil)
	}
	class := windowClass(len(from)+len(to), MaxWindowLog)
	big, level := 0, Level
	if len(from) >= BigBase {
		big, level = 1, BigBaseLevel
	}
	pool := &dictEncoders[big][class]
	e, _ := pool.Get().(*dictEncoder)
	if e == nil {
		opts := append(encoderOptions(level, class), zstd.WithEncoderDictRaw(0, nil))
		z, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			panic("delta: zstd options: " + err.Error()) // constant options
		}
		e = &dictEncoder{z: z}
	}
	// The streaming API indexes the dictionary once; EncodeAll after a
	// reset would index it twice (once per internal encoder). Measured:
	// 227 µs instead of 378 µs for a 100 KB document.
	e.w.b = dst
	if err := e.z.ResetWithOptions(&e.w, zstd.WithEncoderDictRaw(0, from)); err != nil {
		// Only a dictionary over 2 GiB fails; states are far smaller.
		panic("delta: " + err.Error())
	}
	// Same dictionary pointer: the second reset does not index it again.
	e.z.ResetContentSize(&e.w, int64(len(to)))
	_, werr := e.z.Write(to)
	cerr := e.z.Close()
	dst = e.w.b
	e.w.b = nil
	if werr != nil || cerr != nil {
		// appendWriter never fails; the encoder only reports writer errors.
		panic(fmt.Sprintf("delta: encode: %v %v", werr, cerr))
	}
	pool.Put(e)
	return dst
}

// Decompress appends the content of the zstd frame src to dst and returns
// the extended slice. It fails with ErrTooLarge when the frame declares more
// than maxSize bytes, and with ErrCorrupt when src is not a valid zstd frame
// that declares its content size (Frame_Content_Size, which PROTOCOL.md
// requires) and names no dictionary. On error dst is returned unchanged in
// length.
//
// Memory: when dst lacks room, Decompress allocates exactly the declared
// size, after checking it against maxSize, and decoding fails as soon as the
// output would pass it. Pass the size announced by the peer as maxSize;
// values above MaxSize count as MaxSize.
func Decompress(dst, src []byte, maxSize int) ([]byte, error) {
	return decode(dst, nil, src, maxSize, false)
}

// Apply appends to dst the data obtained by applying delta (made by Encode)
// to from, and returns the extended slice. Errors and memory use are as for
// Decompress; a delta applied to another base than it was made from fails
// with ErrCorrupt (its checksum does not match) unless it carries no
// checksum.
func Apply(dst, from, delta []byte, maxSize int) ([]byte, error) {
	return decode(dst, from, delta, maxSize, true)
}

func decode(dst, dict, src []byte, maxSize int, useDict bool) ([]byte, error) {
	maxSize = min(max(maxSize, 0), MaxSize)
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return dst, fmt.Errorf("%w: reading frame header: %v", ErrCorrupt, err)
	}
	if h.Skippable {
		return dst, fmt.Errorf("%w: skippable frame instead of data", ErrCorrupt)
	}
	if h.DictionaryID != 0 {
		return dst, fmt.Errorf("%w: frame refers to dictionary %d", ErrCorrupt, h.DictionaryID)
	}
	if h.WindowSize > 1<<MaxWindowLog {
		return dst, fmt.Errorf("%w: window of %d bytes", ErrTooLarge, h.WindowSize)
	}
	// The protocol requires the content size in the frame header, so the
	// output buffer can be exactly that size, checked against maxSize
	// before anything is allocated. The decoder never writes past
	// cap(dst) (WithDecodeAllCapLimit), so a frame that lies about its
	// size fails instead of growing memory.
	if !h.HasFCS {
		return dst, fmt.Errorf("%w: frame does not declare its content size", ErrCorrupt)
	}
	if h.FrameContentSize > uint64(maxSize) {
		return dst, fmt.Errorf("%w: frame declares %d bytes, limit %d", ErrTooLarge, h.FrameContentSize, maxSize)
	}
	room := int(h.FrameContentSize)
	n := len(dst)
	if cap(dst)-n < room {
		grown := make([]byte, n, n+room)
		copy(grown, dst)
		dst = grown
	}
	out, err := decodeAll(dst, dict, src, useDict)
	if err == nil && len(out)-n > maxSize {
		err = zstd.ErrDecoderSizeExceeded // only with a caller's roomy dst
	}
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst[:n], fmt.Errorf("%w: over %d bytes", ErrTooLarge, maxSize)
	default:
		return dst[:n], fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
}

// decodeAll decodes src into dst with a pooled decoder, using dict as raw
// dictionary when useDict is set.
func decodeAll(dst, dict, src []byte, useDict bool) ([]byte, error) {
	d := getDecoder()
	if useDict {
		if err := d.ResetWithOptions(nil, zstd.WithDecoderDictRaw(0, dict)); err != nil {
			putDecoder(d, false)
			return dst, err
		}
	}
	out, err := d.DecodeAll(src, dst)
	putDecoder(d, useDict)
	return out, err
}

func getDecoder() *zstd.Decoder {
	if d, ok := decoders.Get().(*zstd.Decoder); ok {
		return d
	}
	d, err := zstd.NewReader(nil,
		// One block decoder, no goroutines: DecodeAll runs on the
		// caller's goroutine and the pool provides parallelism.
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		// Never decode past cap(dst); decode sizes dst from the limit.
		zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxWindow(1<<MaxWindowLog),
	)
	if err != nil {
		panic("delta: zstd options: " + err.Error()) // constant options
	}
	return d
}

func putDecoder(d *zstd.Decoder, hadDict bool) {
	if hadDict {
		// Drop the reference to the caller's base data.
		if err := d.ResetWithOptions(nil, zstd.WithDecoderDictDelete()); err != nil {
			return // do not pool a decoder in an unknown state
		}
	}
	decoders.Put(d)
}
