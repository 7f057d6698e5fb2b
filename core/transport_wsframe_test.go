package core

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// Tests of the WebSocket framing (transport_wsframe.go): its primitives
// against hand-computed references, interop with coder/websocket as an
// independent implementation in both directions, raw-socket tests for
// what a well-behaved library cannot send, and a fuzz target checking the
// reader against a reference decoder.

// ---- frame building and parsing, independent of the code under test ----

// rawFrame builds a frame by hand: first is the first header byte (FIN,
// RSV and opcode), the length is encoded in the shortest form, and the
// payload is masked with key when key is not nil (4 bytes, wire order).
func rawFrame(first byte, payload []byte, key []byte) []byte {
	b := []byte{first}
	mbit := byte(0)
	if key != nil {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, mbit|byte(n))
	case n <= 0xFFFF:
		b = append(b, mbit|126, byte(n>>8), byte(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if key == nil {
		return append(b, payload...)
	}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// testMaskKey is the masking key raw test clients use.
var testMaskKey = []byte{0x37, 0xfa, 0x21, 0x3d}

// closePayload is a close frame's payload: the code, then the reason.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// readRawFrame reads one frame from r with parseWSHeader and returns its
// header and its payload, unmasked byte by byte with the key as on the
// wire (not with maskWS).
func readRawFrame(r *bufio.Reader) (wsHeader, []byte, error) {
	need := 2
	for {
		b, err := r.Peek(need)
		if err != nil {
			return wsHeader{}, nil, err
		}
		h, n, ok, err := parseWSHeader(b)
		if err != nil {
			return h, nil, err
		}
		if !ok {
			need = n
			continue
		}
		var key []byte
		if h.masked {
			key = bytes.Clone(b[n-4 : n])
		}
		_, _ = r.Discard(n)
		payload := make([]byte, h.length)
		if _, err := io.ReadFull(r, payload); err != nil {
			return h, nil, err
		}
		if h.masked {
			for i := range payload {
				payload[i] ^= key[i%4]
			}
		}
		return h, payload, nil
	}
}

// expectCloseFrame reads the next frame from r and checks that it is a
// close frame with code, masked when masked is true.
func expectCloseFrame(t *testing.T, r *bufio.Reader, code wire.CloseCode, masked bool) {
	t.Helper()
	h, p, err := readRawFrame(r)
	if err != nil {
		t.Fatalf("reading the close frame: %v", err)
	}
	if h.opcode != wsOpClose || len(p) < 2 {
		t.Fatalf("got opcode %#x with %d bytes (%q), want a close frame with a code", h.opcode, len(p), p)
	}
	if h.masked != masked {
		t.Errorf("close frame masked %v, want %v", h.masked, masked)
	}
	if got := wire.CloseCode(binary.BigEndian.Uint16(p)); got != code {
		t.Fatalf("close code %d (reason %q), want %d", got, p[2:], code)
	}
	if !utf8.Valid(p[2:]) {
		t.Errorf("close reason %q is not UTF-8", p[2:])
	}
}

// ---- primitives ----

// TestWSFrameHeaderRoundTrip: appendWSHeader and parseWSHeader agree on
// every length encoding, masked and not, and parseWSHeader asks for the
// right number of bytes for every truncated prefix of a header.
func TestWSFrameHeaderRoundTrip(t *testing.T) {
	for _, length := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		for _, masked := range []bool{false, true} {
			for _, op := range []byte{wsOpBinary, wsOpText, wsOpContinuation} {
				key := uint32(0x9abcdef0) + uint32(length)
				hdr := appendWSHeader(nil, op, length, masked, key)
				wantSize := 2
				switch {
				case length > 0xFFFF:
					wantSize += 8
				case length > 125:
					wantSize += 2
				}
				if masked {
					wantSize += 4
				}
				if len(hdr) != wantSize {
					t.Fatalf("length %d masked %v: header of %d bytes, want %d", length, masked, len(hdr), wantSize)
				}
				// The payload's first bytes after the header change nothing.
				h, n, ok, err := parseWSHeader(append(hdr[:len(hdr):len(hdr)], 0xFF, 0xFF, 0xFF))
				if err != nil || !ok || n != len(hdr) {
					t.Fatalf("length %d masked %v: parse = %d, %v, %v", length, masked, n, ok, err)
				}
				want := wsHeader{fin: true, opcode: op, masked: masked, length: int64(length), hdrSize: len(hdr)}
				if masked {
					want.key = key
				}
				if h != want {
					t.Fatalf("length %d masked %v: parsed %+v, want %+v", length, masked, h, want)
				}
				for i := range len(hdr) {
					_, need, ok, err := parseWSHeader(hdr[:i])
					wantNeed := len(hdr)
					if i < 2 {
						wantNeed = 2
					}
					if ok || err != nil || need != wantNeed {
						t.Fatalf("length %d masked %v, prefix of %d bytes: need %d, ok %v, err %v; want need %d", length, masked, i, need, ok, err, wantNeed)
					}
				}
			}
		}
	}
}

// TestWSFrameKnownAnswers: the examples of RFC 6455 §5.7 decode as the RFC
// says, and appendWSHeader encodes their headers byte for byte.
func TestWSFrameKnownAnswers(t *testing.T) {
	hello := []byte("Hello")
	for _, c := range []struct {
		name    string
		wire    []byte
		fin     bool
		op      byte
		masked  bool
		payload []byte
	}{
		{"unmasked text", []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}, true, wsOpText, false, hello},
		{"masked text", []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, true, wsOpText, true, hello},
		{"first fragment", []byte{0x01, 0x03, 0x48, 0x65, 0x6c}, false, wsOpText, false, []byte("Hel")},
		{"last fragment", []byte{0x80, 0x02, 0x6c, 0x6f}, true, wsOpContinuation, false, []byte("lo")},
		{"ping", []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}, true, wsOpPing, false, hello},
		{"masked pong", []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, true, wsOpPong, true, hello},
		{"256 bytes", append([]byte{0x82, 0x7E, 0x01, 0x00}, make([]byte, 256)...), true, wsOpBinary, false, make([]byte, 256)},
		{"64 KiB", append([]byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}, make([]byte, 65536)...), true, wsOpBinary, false, make([]byte, 65536)},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, n, ok, err := parseWSHeader(c.wire)
			if err != nil || !ok {
				t.Fatalf("parse: ok %v, err %v", ok, err)
			}
			if h.fin != c.fin || h.opcode != c.op || h.masked != c.masked || h.length != int64(len(c.payload)) || n+len(c.payload) != len(c.wire) {
				t.Fatalf("parsed %+v (header %d bytes)", h, n)
			}
			payload := bytes.Clone(c.wire[n:])
			if h.masked {
				maskWS(payload, h.key, 0)
			}
			if !bytes.Equal(payload, c.payload) {
				t.Fatalf("payload %q, want %q", payload, c.payload)
			}
			if c.fin {
				if hdr := appendWSHeader(nil, c.op, len(c.payload), h.masked, h.key); !bytes.Equal(hdr, c.wire[:n]) {
					t.Fatalf("appendWSHeader = % x, want % x", hdr, c.wire[:n])
				}
			}
		})
	}
}

// TestWSFrameHeaderViolations: parseWSHeader refuses every header RFC 6455
// forbids without an extension.
func TestWSFrameHeaderViolations(t *testing.T) {
	for _, c := range []struct {
		name string
		hdr  []byte
		want string
	}{
		{"RSV1", []byte{0xC2, 0x00}, "reserved bits"},
		{"RSV2", []byte{0xA2, 0x00}, "reserved bits"},
		{"RSV3", []byte{0x92, 0x80, 1, 2, 3, 4}, "reserved bits"},
		{"RSV before the rest of the header", []byte{0xC2, 0xFF}, "reserved bits"},
		{"opcode 3", []byte{0x83, 0x00}, "unknown opcode"},
		{"opcode 7", []byte{0x87, 0x00}, "unknown opcode"},
		{"opcode 0xB", []byte{0x8B, 0x00}, "unknown opcode"},
		{"opcode 0xF", []byte{0x8F, 0x80, 1, 2, 3, 4}, "unknown opcode"},
		{"fragmented ping", []byte{0x09, 0x00}, "fragmented control"},
		{"fragmented close", []byte{0x08, 0x02}, "fragmented control"},
		{"fragmented pong", []byte{0x0A, 0x80, 1, 2, 3, 4}, "fragmented control"},
		{"ping of 126 bytes", []byte{0x89, 0x7E, 0x00, 0x7E}, "control frame of 126"},
		{"close of 65535 bytes", []byte{0x88, 0xFE, 0xFF, 0xFF, 1, 2, 3, 4}, "control frame of 65535"},
		{"pong of 2^32 bytes", []byte{0x8A, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0}, "control frame of"},
		{"64-bit length with the MSB set", []byte{0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}, "most significant bit"},
		{"64-bit length all ones", []byte{0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4}, "most significant bit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, ok, err := parseWSHeader(c.hdr)
			if err == nil || ok || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ok %v, err %v; want an error containing %q", ok, err, c.want)
			}
		})
	}
}

// TestWSFrameMaskMatchesReference: maskWS equals a byte-by-byte XOR with
// the key (wire order) for any length and starting position, also when a
// payload is masked in chunks that carry the position on. Only the
// returned position modulo 4 is checked: it is all maskWS uses of a
// position, and maskWS returns pos+len(b)%8 rather than pos+len(b).
func TestWSFrameMaskMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(6455, 1))
	for i := range 2000 {
		n := r.IntN(40)
		if i%4 == 0 {
			n = r.IntN(5000)
		}
		key := r.Uint32()
		kb := binary.LittleEndian.AppendUint32(nil, key) // as on the wire
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		for pos := range 4 {
			want := bytes.Clone(data)
			for j := range want {
				want[j] ^= kb[(pos+j)%4]
			}
			got := bytes.Clone(data)
			if end := maskWS(got, key, pos); end%4 != (pos+n)%4 || !bytes.Equal(got, want) {
				t.Fatalf("%d bytes from position %d: returned %d (want %d modulo 4), content equal %v", n, pos, end, pos+n, bytes.Equal(got, want))
			}
			got = bytes.Clone(data)
			p := pos
			for off := 0; off < n; {
				c := min(n-off, 1+r.IntN(19))
				p = maskWS(got[off:off+c], key, p)
				off += c
			}
			if p%4 != (pos+n)%4 || !bytes.Equal(got, want) {
				t.Fatalf("%d bytes in chunks from position %d: ended at %d (want %d modulo 4), content equal %v", n, pos, p, pos+n, bytes.Equal(got, want))
			}
		}
	}
}

// ---- interop with coder/websocket ----

// wsInteropLimit is the read limit on both sides of the interop tests.
const wsInteropLimit = 2 << 20

// wsInteropOurServer connects a coder/websocket client to our accepting
// side; both are closed when the test ends.
func wsInteropOurServer(t *testing.T) (*wsTransport, *websocket.Conn) {
	t.Helper()
	return wsInteropOurServerOn(t, nil)
}

// wsInteropOurServerOn is wsInteropOurServer with the server's listener
// wrapped by wrap (unless nil).
func wsInteropOurServerOn(t *testing.T, wrap func(net.Listener) net.Listener) (*wsTransport, *websocket.Conn) {
	t.Helper()
	srv, accepted := upgradeServer(t, wrap, acceptWith(linkTiming{}, wsInteropLimit))
	c, _, err := websocket.Dial(testCtx(t), srv.URL, &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(wsInteropLimit)
	return accepted(), c
}

// wsInteropOurClient connects our dialing side to a coder/websocket
// server; both are closed when the test ends.
func wsInteropOurClient(t *testing.T) (*wsTransport, *websocket.Conn) {
	t.Helper()
	srv, accepted := upgradeServer(t, nil, func(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wire.Subprotocol}})
		if err == nil {
			c.SetReadLimit(wsInteropLimit)
		}
		return c, err
	})
	st, err := dialWS(testCtx(t), wsURL(srv), nil, 5*time.Second, linkTiming{}, wsInteropLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.CloseNow() })
	c := accepted()
	if c.Subprotocol() != wire.Subprotocol {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	return st, c
}

// wsInteropSides lists both ways our framing meets coder/websocket.
var wsInteropSides = []struct {
	name string
	pair func(t *testing.T) (*wsTransport, *websocket.Conn)
}{
	{"our server", wsInteropOurServer},
	{"our client", wsInteropOurClient},
}

// readResult is what a Read returned, for reads in another goroutine.
type readResult struct {
	data []byte
	err  error
}

// readAsync reads one message from st in a goroutine; the result's data
// is a copy.
func readAsync(ctx context.Context, st *wsTransport) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		data, err := st.Read(ctx)
		ch <- readResult{bytes.Clone(data), err}
	}()
	return ch
}

// coderReadAsync reads one message from c in a goroutine (which also
// handles the pongs of c's pings and the close handshake).
func coderReadAsync(ctx context.Context, c *websocket.Conn) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		_, data, err := c.Read(ctx)
		ch <- readResult{data, err}
	}()
	return ch
}

// TestWSInteropMessageSizes: messages of every length encoding and up to
// 1 MiB cross intact in both directions, coder/websocket on the other end.
func TestWSInteropMessageSizes(t *testing.T) {
	for _, side := range wsInteropSides {
		t.Run(side.name, func(t *testing.T) {
			st, c := side.pair(t)
			ctx := testCtx(t)
			for _, n := range []int{0, 1, 125, 126, 65535, 65536, 70000, 1 << 20} {
				msg := frameOf(n, n)
				errc := make(chan error, 1)
				go func() { errc <- c.Write(ctx, websocket.MessageBinary, msg) }()
				got, err := st.Read(ctx)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("%d bytes from coder: got %d bytes, %v", n, len(got), err)
				}
				if err := <-errc; err != nil {
					t.Fatalf("coder's Write of %d bytes: %v", n, err)
				}
				go func() { errc <- st.Write(ctx, msg) }()
				typ, got, err := c.Read(ctx)
				if err != nil || typ != websocket.MessageBinary || !bytes.Equal(got, msg) {
					t.Fatalf("%d bytes to coder: got %v of %d bytes, %v", n, typ, len(got), err)
				}
				if err := <-errc; err != nil {
					t.Fatalf("our Write of %d bytes: %v", n, err)
				}
			}
			if s := st.stats(); s.FramesIn != 8 || s.FramesOut != 8 {
				t.Errorf("stats %+v, want 8 frames each way", s)
			}
		})
	}
}

// TestWSInteropFragmentedMessage: a message coder/websocket writes in
// several frames, with pings between them, arrives as one message, and
// the message after it arrives on its own.
func TestWSInteropFragmentedMessage(t *testing.T) {
	for _, side := range wsInteropSides {
		t.Run(side.name, func(t *testing.T) {
			st, c := side.pair(t)
			ctx := testCtx(t)
			coderRead := coderReadAsync(ctx, c) // answers our pongs to c's pings
			parts := [][]byte{frameOf(1, 3), nil, frameOf(2, 70000), frameOf(3, 125), frameOf(4, 1)}
			var whole []byte
			for _, p := range parts {
				whole = append(whole, p...)
			}
			read := readAsync(ctx, st)
			w, err := c.Writer(ctx, websocket.MessageBinary)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range parts {
				if _, err := w.Write(p); err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				if i%2 == 0 {
					// A ping between fragments: our reader answers it in
					// the middle of the message.
					pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					err := c.Ping(pctx)
					cancel()
					if err != nil {
						t.Fatalf("ping after part %d: %v", i, err)
					}
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r := <-read
			if r.err != nil || !bytes.Equal(r.data, whole) {
				t.Fatalf("got %d bytes, %v; want %d bytes", len(r.data), r.err, len(whole))
			}
			if err := c.Write(ctx, websocket.MessageBinary, []byte("after")); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Read(ctx); err != nil || string(got) != "after" {
				t.Fatalf("next message: %q, %v", got, err)
			}
			c.CloseNow()
			<-coderRead
		})
	}
}

// TestWSInteropPing: while our side reads, coder/websocket's pings are
// answered, and our pings get coder/websocket's pongs; messages still
// flow afterwards.
func TestWSInteropPing(t *testing.T) {
	for _, side := range wsInteropSides {
		t.Run(side.name, func(t *testing.T) {
			st, c := side.pair(t)
			ctx := testCtx(t)
			read := readAsync(ctx, st)
			coderRead := coderReadAsync(ctx, c)
			for i := range 3 {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := c.Ping(pctx); err != nil {
					t.Fatalf("coder's ping %d: %v", i, err)
				}
				if err := st.ping(pctx); err != nil {
					t.Fatalf("our ping %d: %v", i, err)
				}
				cancel()
			}
			if err := c.Write(ctx, websocket.MessageBinary, []byte("to us")); err != nil {
				t.Fatal(err)
			}
			if r := <-read; r.err != nil || string(r.data) != "to us" {
				t.Fatalf("our Read: %q, %v", r.data, r.err)
			}
			if err := st.Write(ctx, []byte("to coder")); err != nil {
				t.Fatal(err)
			}
			if r := <-coderRead; r.err != nil || string(r.data) != "to coder" {
				t.Fatalf("coder's Read: %q, %v", r.data, r.err)
			}
		})
	}
}

// TestWSInteropPeerCloseCode: coder/websocket's close code and reason
// reach our Read as the peer's close, and our answer echoes the code (so
// coder/websocket's Close reports a clean handshake).
func TestWSInteropPeerCloseCode(t *testing.T) {
	for _, side := range wsInteropSides {
		t.Run(side.name, func(t *testing.T) {
			st, c := side.pair(t)
			ctx := testCtx(t)
			closed := make(chan error, 1)
			go func() { closed <- c.Close(websocket.StatusCode(4002), "why") }()
			_, err := st.Read(ctx)
			var lc *linkClosedError
			if !errors.As(err, &lc) || lc.Code != 4002 || lc.Reason != "why" || !lc.Remote {
				t.Fatalf("got %v, want the peer's close 4002 \"why\"", err)
			}
			if err := within(t, 5*time.Second, "coder's Close", func() error { return <-closed }); err != nil {
				t.Fatalf("coder's Close: %v", err)
			}
			if _, again := st.Read(ctx); again != err {
				t.Errorf("next Read: %v, want the same error", again)
			}
		})
	}
}

// TestWSInteropOurCloseCode: our Close's code and reason reach
// coder/websocket, and Close returns once it answered.
func TestWSInteropOurCloseCode(t *testing.T) {
	for _, side := range wsInteropSides {
		t.Run(side.name, func(t *testing.T) {
			st, c := side.pair(t)
			ctx := testCtx(t)
			coderRead := coderReadAsync(ctx, c)
			start := time.Now()
			within(t, 5*time.Second, "Close", func() error { return st.Close(4004, "bye") })
			if d := time.Since(start); d >= defaultCloseTimeout {
				t.Errorf("Close took %v: it waited out its timeout instead of the peer's answer", d)
			}
			r := <-coderRead
			var ce websocket.CloseError
			if websocket.CloseStatus(r.err) != 4004 || !errors.As(r.err, &ce) || ce.Reason != "bye" {
				t.Fatalf("coder saw %v, want close 4004 \"bye\"", r.err)
			}
			_, err := st.Read(ctx)
			var lc *linkClosedError
			if !errors.As(err, &lc) || lc.Code != 4004 || lc.Remote {
				t.Fatalf("our Read after Close: %v, want our own close", err)
			}
		})
	}
}

// TestWSInteropTextMessage: a text message from coder/websocket makes our
// Read fail with errTextMessage.
func TestWSInteropTextMessage(t *testing.T) {
	for _, side := range wsInteropSides {
		t.Run(side.name, func(t *testing.T) {
			st, c := side.pair(t)
			ctx := testCtx(t)
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"hello":1}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Read(ctx); !errors.Is(err, errTextMessage) {
				t.Fatalf("got %v, want errTextMessage", err)
			}
		})
	}
}

// ---- raw sockets ----

// wsAcceptKey is the Sec-WebSocket-Accept answer to key (RFC 6455 §4.2.2).
func wsAcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// rawDialOurServer upgrades a plain TCP connection to our accepting side,
// writing first (raw frames) in the same write as the upgrade request. It
// returns the server's transport, the connection and a reader positioned
// after the 101 response. Every read of the connection fails after 10 s.
func rawDialOurServer(t *testing.T, readLimit int, first []byte) (*wsTransport, net.Conn, *bufio.Reader) {
	t.Helper()
	srv, accepted := upgradeServer(t, nil, acceptWith(linkTiming{}, readLimit))
	addr := srv.Listener.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var nonce [16]byte
	for i := range nonce {
		nonce[i] = byte(rand.Uint32())
	}
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + wire.Subprotocol + "\r\n\r\n"
	if _, err := c.Write(append([]byte(req), first...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAcceptKey(key) ||
		resp.Header.Get("Sec-WebSocket-Protocol") != wire.Subprotocol {
		t.Fatalf("upgrade answered %s, %v", resp.Status, resp.Header)
	}
	return accepted(), c, br
}

// rawConnRead is a connection a raw server hijacked, with its reader.
type rawConnRead struct {
	c  net.Conn
	br *bufio.Reader
}

// dialRawServer dials with dialWS a server that answers the upgrade by
// hand, with the 101 response and after in one write. It returns the
// client transport and the server's end of the connection. Every read
// of that end fails after 10 s.
func dialRawServer(t *testing.T, readLimit int, after []byte) (*wsTransport, net.Conn, *bufio.Reader) {
	t.Helper()
	conns := make(chan rawConnRead, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Sec-WebSocket-Protocol"), wire.Subprotocol) || r.Header.Get("Sec-WebSocket-Version") != "13" {
			t.Errorf("upgrade request headers %v", r.Header)
		}
		key := r.Header.Get("Sec-WebSocket-Key")
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			close(conns)
			return
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + wsAcceptKey(key) + "\r\nSec-WebSocket-Protocol: " + wire.Subprotocol + "\r\n\r\n"
		if _, err := c.Write(append([]byte(resp), after...)); err != nil {
			t.Errorf("writing the upgrade: %v", err)
		}
		conns <- rawConnRead{c, brw.Reader}
	}))
	t.Cleanup(srv.Close)
	st, err := dialWS(testCtx(t), wsURL(srv), nil, 5*time.Second, linkTiming{}, readLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.CloseNow() })
	rc, ok := <-conns
	if !ok {
		t.FailNow()
	}
	t.Cleanup(func() { rc.c.Close() })
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	return st, rc.c, rc.br
}

// TestWSRawServerLeftover: a frame the client sends in the same write as
// its upgrade request (so the HTTP server reads it with the request) is
// the server transport's first message, and the messages after it follow.
func TestWSRawServerLeftover(t *testing.T) {
	first := rawFrame(0x82, []byte("sent with the request"), testMaskKey)
	second := rawFrame(0x82, frameOf(9, 300), testMaskKey)
	st, c, br := rawDialOurServer(t, 1<<20, append(bytes.Clone(first), second...))
	ctx := testCtx(t)
	if got, err := st.Read(ctx); err != nil || string(got) != "sent with the request" {
		t.Fatalf("first Read: %q, %v", got, err)
	}
	if got, err := st.Read(ctx); err != nil || !bytes.Equal(got, frameOf(9, 300)) {
		t.Fatalf("second Read: %d bytes, %v", len(got), err)
	}
	if _, err := c.Write(rawFrame(0x82, []byte("third"), testMaskKey)); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Read(ctx); err != nil || string(got) != "third" {
		t.Fatalf("third Read: %q, %v", got, err)
	}
	// The server's frames are unmasked and read back as sent.
	if err := st.Write(ctx, []byte("from the server")); err != nil {
		t.Fatal(err)
	}
	h, p, err := readRawFrame(br)
	if err != nil || h.opcode != wsOpBinary || !h.fin || h.masked || string(p) != "from the server" {
		t.Fatalf("got %+v %q, %v; want an unmasked binary frame", h, p, err)
	}
}

// TestWSRawClientLeftover: a frame the server sends in the same write as
// its 101 response is the client transport's first message; the client's
// own frames are masked.
func TestWSRawClientLeftover(t *testing.T) {
	first := rawFrame(0x82, []byte("sent with the 101"), nil)
	st, c, br := dialRawServer(t, 1<<20, append(bytes.Clone(first), rawFrame(0x82, frameOf(5, 70000), nil)...))
	ctx := testCtx(t)
	if got, err := st.Read(ctx); err != nil || string(got) != "sent with the 101" {
		t.Fatalf("first Read: %q, %v", got, err)
	}
	if got, err := st.Read(ctx); err != nil || !bytes.Equal(got, frameOf(5, 70000)) {
		t.Fatalf("second Read: %d bytes, %v", len(got), err)
	}
	if _, err := c.Write(rawFrame(0x82, []byte("third"), nil)); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Read(ctx); err != nil || string(got) != "third" {
		t.Fatalf("third Read: %q, %v", got, err)
	}
	for _, n := range []int{5, 200, 40000, 70000} { // one write and chunked masking
		msg := frameOf(n, n)
		errc := make(chan error, 1)
		go func() { errc <- st.Write(ctx, msg) }()
		h, p, err := readRawFrame(br)
		if err != nil || h.opcode != wsOpBinary || !h.fin || !h.masked || !bytes.Equal(p, msg) {
			t.Fatalf("%d bytes: got %+v with %d bytes, %v; want a masked binary frame", n, h, len(p), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestWSRawServerViolations: a client frame that breaks RFC 6455 fails our
// server's Read, and the client gets a close frame with the code RFC 6455
// asks for (1002 protocol error, 1007 invalid data, 1009 too big) before
// the connection closes.
func TestWSRawServerViolations(t *testing.T) {
	const limit = 1024
	k := testMaskKey
	for _, c := range []struct {
		name   string
		frames []byte
		code   wire.CloseCode
	}{
		{"reserved bit", rawFrame(0xC2, []byte("x"), k), 1002},
		{"opcode 3", rawFrame(0x83, []byte("x"), k), 1002},
		{"unmasked client frame", rawFrame(0x82, []byte("x"), nil), 1002},
		{"ping of 126 bytes", rawFrame(0x89, make([]byte, 126), k), 1002},
		{"fragmented ping", rawFrame(0x09, []byte("p"), k), 1002},
		{"continuation first", rawFrame(0x80, []byte("x"), k), 1002},
		{"new message inside a fragmented one", append(rawFrame(0x02, []byte("a"), k), rawFrame(0x82, []byte("b"), k)...), 1002},
		{"64-bit length with the MSB set", append([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1}, k...), 1002},
		{"1-byte close payload", rawFrame(0x88, []byte{3}, k), 1002},
		{"close code 1005", rawFrame(0x88, closePayload(1005, ""), k), 1002},
		{"close code 1006", rawFrame(0x88, closePayload(1006, ""), k), 1002},
		{"close code 999", rawFrame(0x88, closePayload(999, ""), k), 1002},
		{"close code 5000", rawFrame(0x88, closePayload(5000, ""), k), 1002},
		{"close reason not UTF-8", rawFrame(0x88, closePayload(1000, "ok\xff\xfe"), k), 1007},
		{"message over the limit", rawFrame(0x82, make([]byte, limit+1), k), 1009},
		{"fragments over the limit", append(rawFrame(0x02, make([]byte, 600), k), rawFrame(0x80, make([]byte, 600), k)...), 1009},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, conn, br := rawDialOurServer(t, limit, nil)
			ctx := testCtx(t)
			// A valid message first: the violation comes in the middle of
			// a working connection.
			if _, err := conn.Write(append(rawFrame(0x82, []byte("ok"), k), c.frames...)); err != nil {
				t.Fatal(err)
			}
			if got, err := st.Read(ctx); err != nil || string(got) != "ok" {
				t.Fatalf("first Read: %q, %v", got, err)
			}
			_, err := st.Read(ctx)
			var lc *linkClosedError
			switch {
			case c.code == 1009:
				if !errors.Is(err, wire.ErrTooLarge) {
					t.Fatalf("Read: %v, want wire.ErrTooLarge", err)
				}
			case !errors.As(err, &lc) || lc.Code != c.code || lc.Remote:
				t.Fatalf("Read: %v, want our close with %d", err, c.code)
			}
			expectCloseFrame(t, br, c.code, false)
			if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("after the close frame: %v, want the connection closed", err)
			}
		})
	}
}

// TestWSRawClientViolations: a server frame that breaks RFC 6455 fails our
// client's Read, and the server gets a masked close frame with 1002.
func TestWSRawClientViolations(t *testing.T) {
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"masked server frame", rawFrame(0x82, []byte("x"), testMaskKey)},
		{"reserved bit", rawFrame(0xA2, []byte("x"), nil)},
		{"opcode 0xB", rawFrame(0x8B, nil, nil)},
		{"continuation first", rawFrame(0x80, []byte("x"), nil)},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, _, br := dialRawServer(t, 1<<20, c.frame)
			_, err := st.Read(testCtx(t))
			var lc *linkClosedError
			if !errors.As(err, &lc) || lc.Code != 1002 || lc.Remote {
				t.Fatalf("Read: %v, want our close with 1002", err)
			}
			expectCloseFrame(t, br, 1002, true)
		})
	}
}

// TestWSRawPeerCloseAnswered: a close frame without a status code is
// reported as the peer's close and answered with 1000; one with a code is
// answered with that code.
func TestWSRawPeerCloseAnswered(t *testing.T) {
	for _, c := range []struct {
		name    string
		payload []byte
		echo    wire.CloseCode
	}{
		{"no status", nil, 1000},
		{"4003", closePayload(4003, "limit"), 4003},
		{"1001", closePayload(1001, ""), 1001},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, _, br := rawDialOurServer(t, 1<<20, rawFrame(0x88, c.payload, testMaskKey))
			_, err := st.Read(testCtx(t))
			var lc *linkClosedError
			if !errors.As(err, &lc) || !lc.Remote {
				t.Fatalf("Read: %v, want the peer's close", err)
			}
			if c.payload != nil && (lc.Code != wire.CloseCode(binary.BigEndian.Uint16(c.payload)) || lc.Reason != string(c.payload[2:])) {
				t.Fatalf("Read: %v, want the peer's code and reason", err)
			}
			if c.payload == nil && lc.Code != 1005 {
				t.Fatalf("Read: %v, want 1005 (no status received)", err)
			}
			expectCloseFrame(t, br, c.echo, false)
		})
	}
}

// TestWSRawPingAnswered: a ping from a raw client, also between the
// fragments of a message, gets a pong with its payload, and the message
// still arrives whole.
func TestWSRawPingAnswered(t *testing.T) {
	k := testMaskKey
	var in []byte
	in = append(in, rawFrame(0x02, []byte("frag"), k)...)
	in = append(in, rawFrame(0x89, []byte("ping 1"), k)...)
	in = append(in, rawFrame(0x00, []byte("ment"), k)...)
	in = append(in, rawFrame(0x89, []byte("ping 2"), k)...)
	in = append(in, rawFrame(0x8A, []byte("unsolicited pong"), k)...)
	in = append(in, rawFrame(0x80, []byte("ed"), k)...)
	st, conn, br := rawDialOurServer(t, 1<<20, nil)
	read := readAsync(testCtx(t), st)
	if _, err := conn.Write(in); err != nil {
		t.Fatal(err)
	}
	if r := <-read; r.err != nil || string(r.data) != "fragmented" {
		t.Fatalf("Read: %q, %v", r.data, r.err)
	}
	// Nothing else writes, so each pong goes out at once, in order.
	for _, want := range []string{"ping 1", "ping 2"} {
		h, p, err := readRawFrame(br)
		if err != nil || h.opcode != wsOpPong || h.masked || string(p) != want {
			t.Fatalf("got %+v %q, %v; want an unmasked pong %q", h, p, err, want)
		}
	}
}

// ---- regressions ----

// TestWSRawContinuationLengthOverflow: a continuation frame whose length
// (up to 2^63-1) added to the message's length so far overflows must fail
// the connection with 1009 like any message over the read limit.
func TestWSRawContinuationLengthOverflow(t *testing.T) {
	st, conn, br := rawDialOurServer(t, 4096, nil)
	in := rawFrame(0x02, []byte("a"), testMaskKey)                              // a first fragment of 1 byte
	in = append(in, 0x80, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF) // continuation of 2^63-1 bytes
	in = append(in, testMaskKey...)
	in = append(in, "the first bytes of its payload"...)
	if _, err := conn.Write(in); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Read(testCtx(t)); !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("Read: %v, want wire.ErrTooLarge", err)
	}
	expectCloseFrame(t, br, 1009, false)
}

// hiddenConnListener hides its connections' SyscallConn, as a listener
// that wraps connections (PROXY protocol, metrics) does.
type hiddenConnListener struct{ net.Listener }

func (l hiddenConnListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return struct{ net.Conn }{c}, nil
}

// TestWSInteropPingWithoutSocketQueue: pings are answered also when the
// kernel cannot be asked about the socket's send queue, as on every
// platform but Linux (socketQueued fails there) or under a listener that
// wraps connections.
func TestWSInteropPingWithoutSocketQueue(t *testing.T) {
	st, c := wsInteropOurServerOn(t, func(l net.Listener) net.Listener { return hiddenConnListener{l} })
	ctx := testCtx(t)
	readAsync(ctx, st)
	coderReadAsync(ctx, c)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		t.Fatalf("coder's ping: %v", err)
	}
}

// ---- fuzzing ----

// wsOutcome is how reading a stream of frames ends.
type wsOutcome struct {
	kind string         // "eof", "text", "too big", "violation", "peer close"
	code wire.CloseCode // the close code sent (violation) or received (peer close)
}

// wsReferenceRead decodes stream as the reading side of a connection
// does (client: this side dialed, so frames must be unmasked), written
// from RFC 6455 without the code under test: the binary messages read
// before reading stops, and why it stops. Headers are checked as soon as
// their bytes arrive (reserved bits from the first two bytes, the rest
// once the header is whole), payloads once they are complete.
func wsReferenceRead(stream []byte, client bool, limit int) ([][]byte, wsOutcome) {
	var (
		msgs      [][]byte
		msg       []byte
		inMessage bool
		text      bool
		s         = stream
		eof       = wsOutcome{kind: "eof"}
		violation = wsOutcome{kind: "violation", code: 1002}
		take      = func(n uint64) ([]byte, bool) { // the next n bytes of s
			if uint64(len(s)) < n {
				return nil, false
			}
			b := s[:n]
			s = s[n:]
			return b, true
		}
	)
	for {
		b, ok := take(2)
		if !ok {
			return msgs, eof
		}
		fin, rsv, op, masked := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0F, b[1]&0x80 != 0
		if rsv != 0 {
			return msgs, violation
		}
		n := uint64(b[1] & 0x7F)
		extra := uint64(0)
		switch n {
		case 126:
			extra = 2
		case 127:
			extra = 8
		}
		if masked {
			extra += 4
		}
		rest, ok := take(extra)
		if !ok {
			return msgs, eof
		}
		switch n {
		case 126:
			n = uint64(rest[0])<<8 | uint64(rest[1])
			rest = rest[2:]
		case 127:
			n = 0
			for _, c := range rest[:8] {
				n = n<<8 | uint64(c)
			}
			rest = rest[8:]
			if n >= 1<<63 {
				return msgs, violation
			}
		}
		control := op >= 8
		switch {
		case op > 2 && op < 8 || op > 10:
			return msgs, violation
		case control && (!fin || n > 125):
			return msgs, violation
		case masked == client:
			return msgs, violation
		}
		if control {
			p, ok := take(n)
			if !ok {
				return msgs, eof
			}
			p = bytes.Clone(p)
			if masked {
				for i := range p {
					p[i] ^= rest[i%4]
				}
			}
			if op != 8 {
				continue // ping or pong
			}
			switch {
			case len(p) == 0:
				return msgs, wsOutcome{kind: "peer close", code: 1005} // no status: reported as 1005, as coder/websocket did
			case len(p) == 1:
				return msgs, violation
			}
			code := int(p[0])<<8 | int(p[1])
			if !(code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999) {
				return msgs, violation
			}
			if !utf8.Valid(p[2:]) {
				return msgs, wsOutcome{kind: "violation", code: 1007}
			}
			return msgs, wsOutcome{kind: "peer close", code: wire.CloseCode(code)}
		}
		switch {
		case op == 0 && !inMessage:
			return msgs, violation
		case op != 0 && inMessage:
			return msgs, violation
		case op != 0:
			inMessage, text, msg = true, op == 1, nil
		}
		if uint64(len(msg))+n > uint64(limit) {
			return msgs, wsOutcome{kind: "too big", code: 1009}
		}
		p, ok := take(n)
		if !ok {
			return msgs, eof
		}
		for i, c := range p {
			if masked {
				c ^= rest[i%4]
			}
			msg = append(msg, c)
		}
		if fin {
			if text {
				return msgs, wsOutcome{kind: "text"}
			}
			msgs = append(msgs, msg)
			inMessage, msg = false, nil
		}
	}
}

// outcomeOf classifies the error that ended reading like wsOutcome.
func outcomeOf(err error) wsOutcome {
	var lc *linkClosedError
	switch {
	case errors.Is(err, errTextMessage):
		return wsOutcome{kind: "text"}
	case errors.Is(err, errWSTooBig):
		return wsOutcome{kind: "too big", code: 1009}
	case !errors.As(err, &lc):
		return wsOutcome{kind: "unexpected " + err.Error()}
	case lc.Remote && lc.Code == 0:
		return wsOutcome{kind: "eof"}
	case lc.Remote:
		return wsOutcome{kind: "peer close", code: lc.Code}
	}
	return wsOutcome{kind: "violation", code: lc.Code}
}

// wsFuzzSeeds are the seed streams of FuzzWSFrames, each masked (as from
// a client) and unmasked (as from a server).
func wsFuzzSeeds() [][]byte {
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	var seeds [][]byte
	for _, key := range [][]byte{nil, testMaskKey} {
		f := func(first byte, p []byte) []byte { return rawFrame(first, p, key) }
		// long is f with the length in the 64-bit form, valid if not minimal.
		long := func(first byte, p []byte) []byte {
			fr := f(first, p)
			return slices.Concat(fr[:1], []byte{fr[1] | 127}, binary.BigEndian.AppendUint64(nil, uint64(len(p))), fr[2:])
		}
		seeds = append(seeds,
			f(0x82, []byte("hello")),
			f(0x82, nil),
			cat(f(0x82, frameOf(1, 126)), f(0x82, frameOf(2, 4096))),
			cat(f(0x02, []byte("hel")), f(0x89, []byte("p")), f(0x00, nil), f(0x8A, []byte("q")), f(0x80, []byte("lo")), f(0x82, []byte("next"))),
			cat(f(0x82, []byte("a")), f(0x88, closePayload(1000, "bye"))),
			cat(f(0x89, nil), f(0x88, nil)),
			f(0x88, closePayload(4002, "why")),
			f(0x88, closePayload(1000, "\xff")),
			f(0x88, []byte{1}),
			f(0x81, []byte("text")),
			cat(f(0x02, frameOf(3, 3000)), f(0x80, frameOf(4, 2000))),
			f(0x82, frameOf(5, 5000)),
			f(0xC2, []byte("rsv")),
			f(0x83, nil),
			f(0x80, []byte("cont")),
			f(0x09, nil),
			f(0x89, make([]byte, 126)),
			cat(f(0x02, []byte("ab")), long(0x80, []byte("cd")), long(0x82, []byte("ef"))),
			// A continuation claiming 2^63-1 bytes: the limit check must not
			// overflow (it once did, and the reader panicked).
			slices.Concat(f(0x02, []byte("a")), []byte{0x80, 0x7F | key0(key), 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, key, []byte("payload")),
		)
	}
	seeds = append(seeds,
		nil,
		[]byte{0x82},
		[]byte{0x82, 0x7E, 0x01},
		[]byte{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'},
		[]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},
		[]byte{0x82, 0x85, 1, 2},
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	)
	return seeds
}

// key0 is the mask bit for a frame masked with key (nil: unmasked).
func key0(key []byte) byte {
	if key == nil {
		return 0
	}
	return 0x80
}

// wsFuzzLimit is the read limit of FuzzWSFrames's transports.
const wsFuzzLimit = 4096

// FuzzWSFrames feeds arbitrary bytes to the framing's reader, as a server
// and as a client, through a net.Pipe (in chunks of varying sizes, with
// part of the input as bytes left over from the handshake): reading never
// panics and always ends, it returns the messages a reference decoder
// finds and stops the way the reference says, no message is over the read
// limit, and what the transport writes back is well-formed frames.
func FuzzWSFrames(f *testing.F) {
	for _, s := range wsFuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		for _, client := range []bool{false, true} {
			for _, split := range []int{0, len(stream) / 3} {
				checkWSStream(t, stream, client, split)
			}
		}
	})
}

// checkWSStream reads stream with a transport over a net.Pipe, stream[:split]
// being the handshake's leftover, and checks it as FuzzWSFrames says.
func checkWSStream(t *testing.T, stream []byte, client bool, split int) {
	wantMsgs, wantEnd := wsReferenceRead(stream, client, wsFuzzLimit)

	end, peer := net.Pipe()
	tr := &wsTransport{timing: linkTiming{}.withDefaults(), life: make(chan struct{}), closeDone: make(chan struct{})}
	tr.wsFramer.init(end, client, stream[:split])
	tr.setReadLimit(wsFuzzLimit)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the peer writes the stream, then hangs up
		defer wg.Done()
		defer peer.Close()
		rest := stream[split:]
		for i := 0; len(rest) > 0; i++ {
			n := min(len(rest), []int{1, 7, 2, 64, 3, 1000}[i%6])
			if _, err := peer.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	var written bytes.Buffer
	go func() { // and takes what the transport writes back
		defer wg.Done()
		_, _ = io.Copy(&written, peer)
	}()

	type result struct {
		msgs [][]byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		for {
			m, err := tr.readMessage()
			if err != nil {
				r.err = err
				break
			}
			if len(m) > wsFuzzLimit {
				r.err = errors.New("message over the read limit")
				break
			}
			r.msgs = append(r.msgs, bytes.Clone(m))
			if len(r.msgs) > len(stream) {
				r.err = errors.New("more messages than bytes")
				break
			}
		}
		done <- r
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		end.Close()
		peer.Close()
		t.Fatalf("client %v, split %d: reading did not end", client, split)
	}
	end.Close()
	wg.Wait()

	if len(r.msgs) != len(wantMsgs) {
		t.Fatalf("client %v, split %d: %d messages, want %d (ended with %v)", client, split, len(r.msgs), len(wantMsgs), r.err)
	}
	for i := range wantMsgs {
		if !bytes.Equal(r.msgs[i], wantMsgs[i]) {
			t.Fatalf("client %v, split %d: message %d is %q, want %q", client, split, i, r.msgs[i], wantMsgs[i])
		}
	}
	if got := outcomeOf(r.err); got != wantEnd {
		t.Fatalf("client %v, split %d: reading ended with %v (%+v), want %+v", client, split, r.err, got, wantEnd)
	}
	// What the transport wrote back: whole frames, masked by a client
	// only, pongs and at most one close frame, last.
	out := bufio.NewReader(&written)
	for {
		h, p, err := readRawFrame(out)
		if err != nil {
			break // the end, or a frame cut off when the peer hung up
		}
		if h.masked != client || !h.fin || (h.opcode != wsOpPong && h.opcode != wsOpClose) {
			t.Fatalf("client %v, split %d: transport wrote %+v", client, split, h)
		}
		if h.opcode == wsOpClose {
			if len(p) >= 2 && wantEnd.kind == "violation" && wire.CloseCode(binary.BigEndian.Uint16(p)) != wantEnd.code {
				t.Fatalf("client %v, split %d: closed with %d, want %d", client, split, binary.BigEndian.Uint16(p), wantEnd.code)
			}
			if out.Buffered() > 0 {
				t.Fatalf("client %v, split %d: %d bytes written after the close frame", client, split, out.Buffered())
			}
		}
	}
}

// chunkConn is a net.Conn whose reads return data in chunks of the given
// sizes (cycling), then io.EOF.
type chunkConn struct {
	net.Conn
	data   []byte
	chunks []int
	i      int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), max(1, c.chunks[c.i%len(c.chunks)]))
	c.i++
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzHandshakeConn: whatever the server sends and however the reads cut
// it, the HTTP client reading through a handshakeConn gets exactly the
// bytes up to the first blank line (the end of the response head), and
// the rest, then what follows on the connection, is left in order for the
// framing.
func FuzzHandshakeConn(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x82\x02hi"), []byte{7, 1, 200})
	f.Add([]byte("HTTP/1.1 101 OK\r\n\r\n"), []byte{1})
	f.Add([]byte("\r\n\r\r\n\r\n\r\nrest"), []byte{2, 3})
	f.Add([]byte("no end of head\r\n\r"), []byte{4})
	f.Fuzz(func(t *testing.T, data, chunks []byte) {
		sizes := make([]int, 0, len(chunks)+1)
		for _, c := range chunks {
			sizes = append(sizes, int(c))
		}
		if len(sizes) == 0 {
			sizes = append(sizes, 16)
		}
		hc := &handshakeConn{Conn: &chunkConn{data: bytes.Clone(data), chunks: sizes}}
		var head []byte
		buf := make([]byte, 64)
		for !hc.done {
			n, err := hc.Read(buf)
			head = append(head, buf[:n]...)
			if err != nil {
				break
			}
		}
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			if hc.done || !bytes.Equal(head, data) {
				t.Fatalf("no end of head in %q: done %v, client got %q", data, hc.done, head)
			}
			return
		}
		if want := data[:end+4]; !bytes.Equal(head, want) {
			t.Fatalf("client got %q, want %q", head, want)
		}
		rest, _ := io.ReadAll(hc)
		if want := data[end+4:]; !bytes.Equal(rest, want) {
			t.Fatalf("left %q, want %q", rest, want)
		}
	})
}
