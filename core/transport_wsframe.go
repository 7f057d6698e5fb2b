package core

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// WebSocket framing (RFC 6455 §5) of a link, after the opening handshake.
//
// coder/websocket does the opening handshake (header checks, the
// Sec-WebSocket-Accept proof, the origin check, the subprotocol); the
// transport then reads and writes frames on the connection itself. The
// library's per-message path costs about 2 µs of CPU on each side of a
// hop on these machines — channel-based locks taken with a select, a
// bufio layer per direction (two on the dialing side), byte-at-a-time
// header decoding — and, with a thousand links, touches a dozen cold
// objects per message. Framing is a small, fully specified part of the
// protocol; this file does only what hakuban needs of it:
//
//   - binary messages in, possibly fragmented (continuation frames), up to
//     the read limit; a text message is read whole and reported as
//     errTextMessage (the link closes with 4000);
//   - binary messages out, always as one frame; masked with a fresh key
//     per frame from a per-link ChaCha8 stream when this side dialed;
//   - ping, pong and close control frames, also between fragments;
//   - no extensions: the handshake negotiates none, so a frame with a
//     reserved bit set is a protocol error.
//
// Violations close the connection with 1002 (protocol error), 1007
// (a close reason that is not UTF-8) or 1009 (message too big), as the
// library did.

// WebSocket opcodes and header bits.
const (
	wsOpContinuation = 0x0
	wsOpText         = 0x1
	wsOpBinary       = 0x2
	wsOpClose        = 0x8
	wsOpPing         = 0x9
	wsOpPong         = 0xA

	wsFin  = 0x80
	wsRSV  = 0x70
	wsMask = 0x80

	// wsMaxControl is the largest control frame payload.
	wsMaxControl = 125
	// wsWriteChunk is the largest part of a frame copied into the write
	// buffer at once (to mask it, or to send header and payload in one
	// write).
	wsWriteChunk = 32 << 10
	// wsReadBuffer is a read buffer's starting size.
	wsReadBuffer = 4096
)

// Standard WebSocket close codes the framing sends.
const (
	wsCloseNormal        = wire.CloseCode(1000)
	wsCloseProtocol      = wire.CloseCode(1002)
	wsCloseNoStatus      = wire.CloseCode(1005) // never on the wire
	wsCloseInvalidData   = wire.CloseCode(1007)
	wsCloseMessageTooBig = wire.CloseCode(1009)
)

// errWSTooBig: a message exceeded the read limit (the link was closed with
// 1009).
var errWSTooBig = errors.New("core: websocket: message over the read limit")

// wsHeader is a decoded frame header.
type wsHeader struct {
	fin     bool
	opcode  byte
	masked  bool
	key     uint32
	length  int64
	hdrSize int
}

// parseWSHeader decodes the frame header at the start of b. It returns
// ok false when b does not hold the whole header yet; need is then the
// header's size as far as b tells (at least 2).
func parseWSHeader(b []byte) (h wsHeader, need int, ok bool, err error) {
	if len(b) < 2 {
		return h, 2, false, nil
	}
	b0, b1 := b[0], b[1]
	h.fin = b0&wsFin != 0
	h.opcode = b0 & 0x0F
	h.masked = b1&wsMask != 0
	if b0&wsRSV != 0 {
		return h, 0, false, fmt.Errorf("reserved bits set (%#x) without a negotiated extension", b0&wsRSV)
	}
	n := 2
	switch l := b1 & 0x7F; l {
	case 126:
		n += 2
	case 127:
		n += 8
	default:
		h.length = int64(l)
	}
	if h.masked {
		n += 4
	}
	if len(b) < n {
		return h, n, false, nil
	}
	switch b1 & 0x7F {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		l := binary.BigEndian.Uint64(b[2:])
		if l>>63 != 0 {
			return h, 0, false, errors.New("payload length with the most significant bit set")
		}
		h.length = int64(l)
	}
	if h.masked {
		h.key = binary.LittleEndian.Uint32(b[n-4:])
	}
	h.hdrSize = n
	switch h.opcode {
	case wsOpContinuation, wsOpText, wsOpBinary:
	case wsOpClose, wsOpPing, wsOpPong:
		if !h.fin {
			return h, 0, false, errors.New("fragmented control frame")
		}
		if h.length > wsMaxControl {
			return h, 0, false, fmt.Errorf("control frame of %d bytes (at most %d)", h.length, wsMaxControl)
		}
	default:
		return h, 0, false, fmt.Errorf("unknown opcode %#x", h.opcode)
	}
	return h, n, true, nil
}

// appendWSHeader appends a final frame's header to b.
func appendWSHeader(b []byte, opcode byte, length int, masked bool, key uint32) []byte {
	b = append(b, wsFin|opcode)
	mbit := byte(0)
	if masked {
		mbit = wsMask
	}
	switch {
	case length <= 125:
		b = append(b, mbit|byte(length))
	case length <= 0xFFFF:
		b = append(b, mbit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(length))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(length))
	}
	if masked {
		b = binary.LittleEndian.AppendUint32(b, key)
	}
	return b
}

// maskWS XORs b with the masking key, starting at key byte pos (the
// payload offset modulo 4); it returns the position after b. Masking and
// unmasking are the same operation.
func maskWS(b []byte, key uint32, pos int) int {
	end := pos + len(b)
	k := bits.RotateLeft32(key, -8*(pos&3))
	if len(b) >= 8 {
		k64 := uint64(k) | uint64(k)<<32
		for len(b) >= 8 {
			v := binary.LittleEndian.Uint64(b)
			binary.LittleEndian.PutUint64(b, v^k64)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= byte(k)
		k = bits.RotateLeft32(k, -8)
	}
	return end
}

// wsFramer holds the framing state of a wsTransport.
type wsFramer struct {
	// client: this side dialed, so it masks what it sends and expects
	// unmasked frames.
	client bool
	// stream is the connection frames go over (the TLS connection for
	// wss://).
	stream net.Conn

	// Read side, used under readMu.
	readMu chan struct{} // one token: the right to read
	rbuf   []byte        // rbuf[rpos:] is read but not yet used
	rpos   int
	msg    []byte // a fragmented message being put together
	rerr   error  // sticky: the error that ended reading
	// readIdle gets a token when a Read ends while the transport is
	// closing, for a closer waiting to read the peer's close frame.
	readIdle chan struct{}

	// Write side: wlock serializes frames. Pings and close frames, which
	// must give up at a deadline, poll it with TryLock.
	wlock sync.Mutex
	wbuf  []byte
	rng   *rand.ChaCha8 // masking keys (client); used under wlock
	// ctlMu guards pong, pingWant and pingSeq.
	ctlMu sync.Mutex
	// pong is the payload of a pong the reader could not send at once
	// (nil: none); the next holder of wlock sends it. hasPong and pongGen
	// (bumped for each new pong) let writers check without ctlMu.
	pong    []byte
	hasPong atomic.Bool
	pongGen atomic.Uint64
	// pingWant is the payload of the ping waiting for its pong; pongs
	// gets a token when that pong arrives.
	pingSeq  uint64
	pingWant []byte
	pongs    chan struct{}

	closeSent     atomic.Bool   // the close frame was sent (or is being sent)
	closeRecv     chan struct{} // closed when the peer's close frame arrived
	closeRecvOnce sync.Once
}

// init sets the framer up on stream; leftover is what was read of the
// stream past the handshake.
func (f *wsFramer) init(stream net.Conn, client bool, leftover []byte) {
	f.client = client
	f.stream = stream
	f.readMu = make(chan struct{}, 1)
	f.readIdle = make(chan struct{}, 1)
	f.pongs = make(chan struct{}, 1)
	f.closeRecv = make(chan struct{})
	f.rbuf = make([]byte, 0, max(wsReadBuffer, len(leftover)))
	f.rbuf = append(f.rbuf, leftover...)
	if client {
		var seed [32]byte
		_, _ = crand.Read(seed[:]) // never fails (crypto/rand panics instead)
		f.rng = rand.NewChaCha8(seed)
	}
}

// ---- reading ----

// fill makes at least n bytes available at rbuf[rpos:], reading from the
// stream; it moves what is unread to the front or grows the buffer first
// when needed.
func (t *wsTransport) fill(n int) error {
	f := &t.wsFramer
	for len(f.rbuf)-f.rpos < n {
		if f.rpos+n > cap(f.rbuf) {
			unread := len(f.rbuf) - f.rpos
			if n <= cap(f.rbuf) {
				copy(f.rbuf, f.rbuf[f.rpos:])
				f.rbuf = f.rbuf[:unread]
			} else {
				nb := make([]byte, unread, max(n, 2*cap(f.rbuf)))
				copy(nb, f.rbuf[f.rpos:])
				f.rbuf = nb
			}
			f.rpos = 0
		}
		m, err := f.stream.Read(f.rbuf[len(f.rbuf):cap(f.rbuf)])
		f.rbuf = f.rbuf[:len(f.rbuf)+m]
		if err != nil && len(f.rbuf)-f.rpos < n {
			if m > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// shrinkReadBuffer replaces a read buffer grown past readBufferKeep by a
// big message with a small one, once what is unread in it fits there.
func (f *wsFramer) shrinkReadBuffer() {
	if unread := len(f.rbuf) - f.rpos; cap(f.rbuf) > readBufferKeep && unread <= wsReadBuffer {
		nb := make([]byte, unread, wsReadBuffer)
		copy(nb, f.rbuf[f.rpos:])
		f.rbuf, f.rpos = nb, 0
	}
	if cap(f.msg) > readBufferKeep {
		f.msg = nil
	}
}

// readMessage reads the next data message and returns it, valid until the
// next read; control frames on the way are handled. Errors: errWSTooBig,
// errTextMessage, a protocol error (the connection is failed), the peer's
// close (as the transport's closed error) or the connection's error.
func (t *wsTransport) readMessage() ([]byte, error) {
	f := &t.wsFramer
	f.readMu <- struct{}{}
	data, err := t.readMessageLocked()
	<-f.readMu
	if t.closing.Load() {
		select {
		case f.readIdle <- struct{}{}:
		default:
		}
	}
	return data, err
}

func (t *wsTransport) readMessageLocked() ([]byte, error) {
	f := &t.wsFramer
	if f.rerr != nil {
		return nil, f.rerr
	}
	f.shrinkReadBuffer()
	fragmented, text := false, false
	f.msg = f.msg[:0]
	for {
		h, err := t.readHeader()
		if err != nil {
			return nil, err
		}
		limit := t.readLimit.Load()
		switch h.opcode {
		case wsOpClose, wsOpPing, wsOpPong:
			payload := f.rbuf[f.rpos : f.rpos+int(h.length)]
			f.rpos += int(h.length)
			if h.masked {
				maskWS(payload, h.key, 0)
			}
			if err := t.control(h.opcode, payload); err != nil {
				return nil, err
			}
			continue
		case wsOpContinuation:
			if !fragmented {
				return nil, t.failProtocol(wsCloseProtocol, "continuation frame without a message to continue")
			}
		default: // text or binary
			if fragmented {
				return nil, t.failProtocol(wsCloseProtocol, "new message before the previous one ended")
			}
			text = h.opcode == wsOpText
		}
		if h.length > limit-int64(len(f.msg)) { // no overflow: both sides are at most limit
			return nil, t.failTooBig()
		}
		n := int(h.length)
		if !fragmented && h.fin {
			// One frame, one message (hakuban's own peers send no
			// other): return it from the read buffer.
			if err := t.fill(n); err != nil {
				return nil, t.readFailed(err)
			}
			data := f.rbuf[f.rpos : f.rpos+n]
			f.rpos += n
			if h.masked {
				maskWS(data, h.key, 0)
			}
			if text {
				return nil, errTextMessage
			}
			return data, nil
		}
		fragmented = true
		if err := t.readPayloadInto(h); err != nil {
			return nil, err
		}
		if h.fin {
			if text {
				return nil, errTextMessage
			}
			return f.msg, nil
		}
	}
}

// readHeader reads and checks the next frame header, and for a control
// frame its payload too (it is at most 125 bytes).
func (t *wsTransport) readHeader() (wsHeader, error) {
	f := &t.wsFramer
	need := 2
	for {
		if err := t.fill(need); err != nil {
			return wsHeader{}, t.readFailed(err)
		}
		h, n, ok, err := parseWSHeader(f.rbuf[f.rpos:])
		if err != nil {
			return h, t.failProtocol(wsCloseProtocol, err.Error())
		}
		if !ok {
			need = n
			continue
		}
		if h.masked == f.client {
			if f.client {
				return h, t.failProtocol(wsCloseProtocol, "masked frame from the server")
			}
			return h, t.failProtocol(wsCloseProtocol, "unmasked frame from the client")
		}
		f.rpos += n
		if h.opcode >= wsOpClose {
			if err := t.fill(int(h.length)); err != nil {
				return h, t.readFailed(err)
			}
		}
		return h, nil
	}
}

// readPayloadInto appends a data frame's payload to f.msg, reading it in
// parts no larger than the read buffer.
func (t *wsTransport) readPayloadInto(h wsHeader) error {
	f := &t.wsFramer
	pos := 0
	for left := int(h.length); left > 0; {
		if f.rpos == len(f.rbuf) {
			if err := t.fill(1); err != nil {
				return t.readFailed(err)
			}
		}
		part := f.rbuf[f.rpos:min(len(f.rbuf), f.rpos+left)]
		if h.masked {
			pos = maskWS(part, h.key, pos)
		}
		f.msg = append(f.msg, part...)
		f.rpos += len(part)
		left -= len(part)
	}
	return nil
}

// control handles a ping, pong or close frame from the peer.
func (t *wsTransport) control(op byte, payload []byte) error {
	f := &t.wsFramer
	switch op {
	case wsOpPing:
		t.sendPong(payload)
		return nil
	case wsOpPong:
		f.ctlMu.Lock()
		match := f.pingWant != nil && string(f.pingWant) == string(payload)
		if match {
			f.pingWant = nil
		}
		f.ctlMu.Unlock()
		if match {
			select {
			case f.pongs <- struct{}{}:
			default:
			}
		}
		return nil
	}
	// Close.
	code, reason := wsCloseNoStatus, ""
	switch {
	case len(payload) == 1:
		return t.failProtocol(wsCloseProtocol, "close frame with a 1-byte payload")
	case len(payload) >= 2:
		code = wire.CloseCode(binary.BigEndian.Uint16(payload))
		if !validWSCloseCode(code) {
			return t.failProtocol(wsCloseProtocol, fmt.Sprintf("invalid close code %d", code))
		}
		if !utf8.Valid(payload[2:]) {
			return t.failProtocol(wsCloseInvalidData, "close reason is not UTF-8")
		}
		reason = string(payload[2:])
	}
	f.closeRecvOnce.Do(func() { close(f.closeRecv) })
	t.setCause(&linkClosedError{Code: code, Reason: reason, Remote: true})
	if t.takeCloseSend() {
		// The peer started the close: answer with its code, then close
		// the connection (the closing handshake is done).
		echo := code
		if echo == wsCloseNoStatus {
			echo = wsCloseNormal
		}
		t.writeClose(echo, "", time.Now().Add(t.timing.closeTimeout))
		t.shutConn()
	}
	t.wsFramer.rerr = t.closedErr()
	return t.wsFramer.rerr
}

// validWSCloseCode reports whether code may be sent in a close frame
// (RFC 6455 §7.4).
func validWSCloseCode(code wire.CloseCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// readFailed turns an error of the stream into the transport's cause and
// makes it sticky.
func (t *wsTransport) readFailed(err error) error {
	if t.closing.Load() || errors.Is(err, net.ErrClosed) {
		t.wsFramer.rerr = t.closedErr()
		return t.wsFramer.rerr
	}
	t.wsFramer.rerr = t.connError(err)
	return t.wsFramer.rerr
}

// failProtocol fails the connection: a close frame with code and reason,
// then the TCP connection is closed.
func (t *wsTransport) failProtocol(code wire.CloseCode, reason string) error {
	if code == wsCloseProtocol || code == wsCloseInvalidData {
		reason = "websocket: " + reason
	}
	t.setCause(&linkClosedError{Code: code, Reason: reason})
	t.closing.Store(true)
	if t.takeCloseSend() {
		t.writeClose(code, reason, time.Now().Add(deadCloseGrace))
	}
	t.shutConn()
	t.wsFramer.rerr = t.closedErr()
	return t.wsFramer.rerr
}

// failTooBig fails the connection with 1009.
func (t *wsTransport) failTooBig() error {
	_ = t.failProtocol(wsCloseMessageTooBig, "frame too big")
	t.wsFramer.rerr = errWSTooBig
	return errWSTooBig
}

// ---- writing ----

// lockWriteBy takes the write lock, giving up when deadline passes or the
// transport is killed. Only pings and close frames wait with a deadline,
// and only while a frame is stuck in a full socket, so polling costs
// nothing on the data path (which takes wlock outright).
func (t *wsTransport) lockWriteBy(deadline time.Time) bool {
	f := &t.wsFramer
	for !f.wlock.TryLock() {
		if t.isKilled() || !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// unlockWrite releases the write lock, first sending a pong the reader
// left if the socket takes it at once.
func (t *wsTransport) unlockWrite() {
	f := &t.wsFramer
	for {
		gen := f.pongGen.Load()
		if f.hasPong.Load() {
			_ = t.sendPendingPong() // an error shows on the next write or read
		}
		f.wlock.Unlock()
		// A pong left after the check has nobody to send it unless this
		// goroutine takes the lock back (if someone else holds it now,
		// they send it).
		if f.pongGen.Load() == gen || !f.wlock.TryLock() {
			return
		}
	}
}

// sendPendingPong sends the pong the reader left; the caller holds the
// write lock. Where the kernel tells how full the socket is (Linux), only
// if the socket takes it at once: a flusher must never wait. Elsewhere
// every frame is written by goroutines that may wait (no flushers write
// inline there), so the pong always goes.
func (t *wsTransport) sendPendingPong() error {
	f := &t.wsFramer
	f.ctlMu.Lock()
	p := f.pong
	if p == nil || (t.queueKnown() && !t.writable(len(p))) {
		f.ctlMu.Unlock()
		return nil
	}
	f.pong = nil
	f.hasPong.Store(false)
	f.ctlMu.Unlock()
	return t.writeFrameLocked(wsOpPong, p)
}

// queueKnown reports whether writable can ask the kernel about the socket.
func (t *wsTransport) queueKnown() bool { return t.sc != nil && socketQueueKnown }

// sendPong answers a ping. The reader must not wait long for the socket
// (the peer may be waiting for it to read): the pong is sent now when the
// write lock is free, and the socket takes it at once or (where the
// kernel cannot tell) within the close timeout, after which the
// connection is given up; otherwise the next writer sends it. A newer
// ping's pong replaces an unsent one.
func (t *wsTransport) sendPong(payload []byte) {
	f := &t.wsFramer
	f.ctlMu.Lock()
	f.pong = append(f.pong[:0:0], payload...)
	f.hasPong.Store(true)
	f.pongGen.Add(1)
	f.ctlMu.Unlock()
	if !f.wlock.TryLock() {
		return
	}
	bounded := !t.queueKnown()
	if bounded {
		_ = f.stream.SetWriteDeadline(time.Now().Add(t.timing.closeTimeout))
	}
	err := t.sendPendingPong()
	if bounded {
		_ = f.stream.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		t.shutConn() // a frame may be cut in half: nothing can follow it
	}
	t.unlockWrite()
}

// writeData sends frame as one binary message.
func (t *wsTransport) writeData(frame []byte) error {
	t.wsFramer.wlock.Lock()
	err := t.writeFrameLocked(wsOpBinary, frame)
	t.unlockWrite()
	if err != nil {
		if t.closing.Load() || errors.Is(err, net.ErrClosed) {
			return t.closedErr()
		}
		return t.connError(err)
	}
	return nil
}

// writeFrameLocked writes one final frame; the caller holds the write
// lock. Small frames go out in one write: header and payload copied into
// the write buffer (masked on the dialing side). A large frame from the
// server goes out as header and payload in one writev; from the client,
// masked in chunks of wsWriteChunk.
func (t *wsTransport) writeFrameLocked(op byte, p []byte) error {
	f := &t.wsFramer
	// writable's estimate of the socket's queue counts every frame:
	// pongs, pings and close frames too.
	t.queuedEst.Add(int64(len(p) + wsMaxHeader))
	var key uint32
	if f.client {
		key = uint32(f.rng.Uint64())
	}
	b := appendWSHeader(f.wbuf[:0], op, len(p), f.client, key)
	if !f.client && len(p) > wsWriteChunk {
		bufs := net.Buffers{b, p}
		_, err := bufs.WriteTo(f.stream)
		f.wbuf = b[:0]
		return err
	}
	pos := 0
	for {
		n := min(len(p), wsWriteChunk)
		start := len(b)
		b = append(b, p[:n]...)
		if f.client {
			pos = maskWS(b[start:], key, pos)
		}
		if _, err := f.stream.Write(b); err != nil {
			f.keepWriteBuffer(b)
			return err
		}
		p = p[n:]
		if len(p) == 0 {
			f.keepWriteBuffer(b)
			return nil
		}
		b = b[:0]
	}
}

// keepWriteBuffer keeps b for the next frame unless it grew large.
func (f *wsFramer) keepWriteBuffer(b []byte) {
	if cap(b) <= wsWriteChunk+wsMaxHeader {
		f.wbuf = b[:0]
	} else {
		f.wbuf = nil
	}
}

// writeControlFrame sends a control frame, giving up when deadline passes
// (waiting for the lock or for the socket).
func (t *wsTransport) writeControlFrame(op byte, payload []byte, deadline time.Time) error {
	if !t.lockWriteBy(deadline) {
		if t.isKilled() {
			return t.closedErr()
		}
		return context.DeadlineExceeded
	}
	_ = t.wsFramer.stream.SetWriteDeadline(deadline)
	err := t.writeFrameLocked(op, payload)
	if err == nil && t.wsFramer.hasPong.Load() {
		err = t.sendPendingPong() // within the deadline too
	}
	_ = t.wsFramer.stream.SetWriteDeadline(time.Time{})
	t.unlockWrite()
	return err
}

// takeCloseSend claims the right to send the close frame; only the first
// caller gets it.
func (t *wsTransport) takeCloseSend() bool {
	return t.wsFramer.closeSent.CompareAndSwap(false, true)
}

// writeClose sends a close frame with code and reason (truncated to fit).
func (t *wsTransport) writeClose(code wire.CloseCode, reason string, deadline time.Time) {
	var p []byte
	if code != wsCloseNoStatus {
		p = binary.BigEndian.AppendUint16(make([]byte, 0, 2+wire.MaxCloseReason), uint16(code))
		p = append(p, wire.TruncateReason(reason)...)
	}
	_ = t.writeControlFrame(wsOpClose, p, deadline)
}

// ping sends a ping and waits for its pong until ctx is done. A ping that
// cannot even be written before ctx's deadline (the socket stays full)
// fails with context.DeadlineExceeded too.
func (t *wsTransport) ping(ctx context.Context) error {
	f := &t.wsFramer
	f.ctlMu.Lock()
	f.pingSeq++
	p := binary.BigEndian.AppendUint64(nil, f.pingSeq)
	f.pingWant = p
	f.ctlMu.Unlock()
	select {
	case <-f.pongs: // the pong of an earlier ping, too late
	default:
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(wire.DefaultPingTimeout)
	}
	if err := t.writeControlFrame(wsOpPing, p, deadline); err != nil {
		if t.isKilled() {
			return t.closedErr()
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			return context.DeadlineExceeded
		}
		return err
	}
	select {
	case <-f.pongs:
		return nil
	case <-t.life:
		return t.closedErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeHandshake sends the close frame (unless the peer's close was
// answered already) and waits for the peer's: it reads it itself when
// nobody else is reading. It returns when the close frame came, the
// connection failed, or the transport was killed (Close's deadline).
func (t *wsTransport) closeHandshake(code wire.CloseCode, reason string) {
	f := &t.wsFramer
	if t.takeCloseSend() {
		t.writeClose(code, reason, time.Now().Add(t.timing.closeTimeout))
	}
	for {
		select {
		case <-f.closeRecv:
			return
		case <-t.life:
			return
		case f.readMu <- struct{}{}:
			// Nobody is reading: read until the peer's close frame (data
			// after a close is of no use), an error, or the deadline.
			_ = f.stream.SetReadDeadline(time.Now().Add(t.timing.closeTimeout))
			for f.rerr == nil {
				_, _ = t.readMessageLocked()
			}
			<-f.readMu
			return
		case <-f.readIdle:
		}
	}
}

// shutConn closes the connection when the framing ended it (a failure, or
// the answer to the peer's close): every read and write fails from then
// on. Unlike kill it leaves the rest to Close or CloseNow, so that a
// Read waiting for the reader's result gets that result, not a bare
// "closed".
func (t *wsTransport) shutConn() {
	if t.raw != nil {
		_ = t.raw.Close()
	} else {
		_ = t.wsFramer.stream.Close()
	}
}

// isKilled reports whether kill ran.
func (t *wsTransport) isKilled() bool {
	select {
	case <-t.life:
		return true
	default:
		return false
	}
}
