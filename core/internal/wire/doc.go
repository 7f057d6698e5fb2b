// Package wire encodes and decodes the messages of the hakuban link protocol
// (PROTOCOL.md at the repository root is the specification; this package is
// its reference implementation).
//
// A link is one WebSocket connection between a downstream exchange (the
// WebSocket client) and its upstream (the server), using the subprotocol
// Subprotocol. Every WebSocket binary message is one frame; a frame holds one
// or more messages, each a type byte, a body length and the body.
//
// Encoding appends to a caller's buffer and never fails:
//
//	frame := wire.Append(buf[:0], &wire.ObjectObserve{Object: 3})
//	frame = wire.AppendState(frame, &state) // no allocation when buf has room
//
// The encoder does not check limits; Check does, so a sender can refuse a
// message its peer would reject. Decoding checks everything against Limits
// and never trusts a length or count before it has seen the bytes behind it,
// so a hostile frame costs at most a small multiple of its own size:
//
//	msgs, err := wire.Decode(frame, limits)
//	if err != nil {
//		conn.Close(websocket.StatusCode(wire.CloseCodeFor(err)), wire.CloseReason(err))
//	}
//
// Decoded byte-slice fields (descriptor JSON, state data, token) alias the
// frame; copy them before the frame's buffer is reused.
//
// The handshake has its own decoders (DecodeHello, DecodeWelcome; encode
// with Append) and Negotiate, because its messages must travel alone, under
// a smaller frame limit, before the link's limits are known.
package wire
