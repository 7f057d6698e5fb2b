package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// ProtocolVersion is the link protocol version this package speaks,
// "major.minor" (PROTOCOL.md; the changelog is on wire.ProtocolVersion).
const ProtocolVersion = wire.ProtocolVersion

// LinkLimits bound what one side of a link accepts: frame, state and
// descriptor sizes, and how many descriptors the peer may declare. Each
// side announces its limits in the handshake; a sender never sends more
// than its peer announced, and a peer that does anyway is disconnected
// with close code 4003. A zero field means its default; Validate checks
// the ranges of PROTOCOL.md, "Limits".
type LinkLimits = wire.Limits

// DefaultLinkLimits returns the default link limits (16 MiB states).
func DefaultLinkLimits() LinkLimits { return wire.DefaultLimits() }

// linkFeatures are the payload encodings this side accepts, announced in
// Hello and Welcome: the link decodes zstd states and deltas (link.go).
const linkFeatures = wire.AllFeatures

// readLimiter is implemented by transports whose frame limit is raised
// when the handshake ends (a server reads Hello under the small
// wire.MaxHandshakeFrame limit, before it knows who is talking).
type readLimiter interface{ setReadLimit(n int) }

// messageError is an error with its own message that still matches the
// errors it wraps.
type messageError struct {
	msg  string
	errs []error
}

func (e *messageError) Error() string   { return e.msg }
func (e *messageError) Unwrap() []error { return e.errs }

// clientHandshake sends hello and waits for the Welcome, at most timeout.
// On failure it closes t (with a close code when the upstream should learn
// why) and returns an error that says why; a refusal by the upstream reads
// like "core: upstream refused: auth refused: bad token (close 4002)".
func clientHandshake(ctx context.Context, t transport, hello *wire.Hello, timeout time.Duration) (linkPeer, error) {
	if err := wire.Check(hello, hello.Limits); err != nil {
		_ = t.CloseNow()
		return linkPeer{}, fmt.Errorf("core: handshake: %w: %w", ErrInvalidArgument, err)
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	frame, err := func() ([]byte, error) {
		if err := t.Write(hctx, wire.Append(nil, hello)); err != nil {
			return nil, err
		}
		return t.Read(hctx)
	}()
	if err != nil {
		var lc *linkClosedError
		switch {
		case errors.As(err, &lc) && lc.Remote && lc.Code != 0:
			_ = t.CloseNow()
			return linkPeer{}, &messageError{
				msg:  fmt.Sprintf("core: upstream refused: %s (close %d)", lc.Reason, lc.Code),
				errs: []error{err},
			}
		case ctx.Err() != nil:
			_ = t.Close(ownClose(ctx))
			return linkPeer{}, fmt.Errorf("core: handshake: %w", ctx.Err())
		case hctx.Err() != nil:
			_ = t.Close(wire.CloseTimeout, fmt.Sprintf("no Welcome within %v", timeout))
			return linkPeer{}, fmt.Errorf("core: handshake: upstream sent no Welcome within %v: %w", timeout, ErrConnection)
		case violation(err):
			_ = t.Close(wire.CloseCodeFor(err), wire.CloseReason(err))
			return linkPeer{}, fmt.Errorf("core: handshake: bad Welcome from upstream: %w: %w", ErrProtocol, err)
		}
		_ = t.CloseNow()
		return linkPeer{}, fmt.Errorf("core: handshake: %w", err)
	}
	w, err := wire.DecodeWelcome(frame)
	if err != nil {
		_ = t.Close(wire.CloseCodeFor(err), wire.CloseReason(err))
		return linkPeer{}, fmt.Errorf("core: handshake: bad Welcome from upstream: %w: %w", ErrProtocol, err)
	}
	if w.Major != wire.ProtocolMajor || w.Minor > hello.Minor {
		reason := fmt.Sprintf("Welcome chose version %d.%d, we offered %d.%d", w.Major, w.Minor, hello.Major, hello.Minor)
		_ = t.Close(wire.CloseUnsupportedVersion, reason)
		return linkPeer{}, fmt.Errorf("core: handshake: %s: %w", reason, ErrProtocol)
	}
	if rl, ok := t.(readLimiter); ok {
		// The Welcome was read under the handshake's limit; what follows
		// is read under ours.
		rl.setReadLimit(hello.Limits.WithDefaults().MaxFrame)
	}
	return linkPeer{Name: w.Name, Features: w.Features, Limits: w.Limits.WithDefaults(), Local: hello.Limits.WithDefaults(), Minor: w.Minor}, nil
}

// serverHandshake waits for the downstream's Hello (at most timeout),
// checks its version and, when authorize is not nil, its token (which
// gives the link its permissions), and answers with welcome (its version fields are filled in here). A refusal
// closes t with the matching close code and a reason the downstream's user
// will read; the returned error says the same for the server's logs.
func serverHandshake(ctx context.Context, t transport, welcome wire.Welcome, authorize func(token []byte) (*Permissions, error), timeout time.Duration) (linkPeer, error) {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	frame, err := t.Read(hctx)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			_ = t.Close(ownClose(ctx))
		case hctx.Err() != nil:
			reason := fmt.Sprintf("no Hello within %v", timeout)
			_ = t.Close(wire.CloseTimeout, reason)
			return linkPeer{}, fmt.Errorf("core: handshake: %s: %w", reason, ErrConnection)
		case violation(err):
			// A text message, or a frame over the handshake's limit
			// (whose 1009 the transport sent already).
			_ = t.Close(wire.CloseCodeFor(err), wire.CloseReason(err))
		default:
			_ = t.CloseNow()
		}
		return linkPeer{}, fmt.Errorf("core: handshake: %w", err)
	}
	refuse := func(code wire.CloseCode, reason string, err error) (linkPeer, error) {
		reason = wire.TruncateReason(reason)
		_ = t.Close(code, reason)
		return linkPeer{}, &messageError{
			msg:  fmt.Sprintf("core: handshake refused: %s (close %d)", reason, code),
			errs: []error{ErrConnection, err},
		}
	}
	h, err := wire.DecodeHello(frame)
	if err != nil {
		return refuse(wire.CloseCodeFor(err), "bad Hello: "+err.Error(), err)
	}
	minor, err := wire.Negotiate(h.Major, h.Minor)
	if err != nil {
		return refuse(wire.CloseUnsupportedVersion, fmt.Sprintf("unsupported protocol version %d.%d, server speaks %s", h.Major, h.Minor, wire.ProtocolVersion), err)
	}
	var (
		perms *Permissions
		token []byte
	)
	if authorize != nil {
		if perms, err = authorize(h.Token); err != nil {
			return refuse(wire.CloseAuthRefused, "auth refused: "+err.Error(), err)
		}
		token = slices.Clone(h.Token) // for Listener.Reauthorize (h lives in the read buffer)
	}
	if rl, ok := t.(readLimiter); ok {
		// Before the Welcome: the downstream sends nothing else until
		// it has it, so its next frame is read under the new limit.
		rl.setReadLimit(welcome.Limits.WithDefaults().MaxFrame)
	}
	welcome.Major, welcome.Minor = wire.ProtocolMajor, minor
	if err := t.Write(hctx, wire.Append(nil, &welcome)); err != nil {
		_ = t.CloseNow()
		return linkPeer{}, fmt.Errorf("core: handshake: %w", err)
	}
	return linkPeer{Name: h.Name, Features: h.Features, Limits: h.Limits.WithDefaults(), Local: welcome.Limits.WithDefaults(), Minor: minor, Perms: perms, Token: token}, nil
}

// violation reports whether a read failed because the peer broke the
// protocol (a text message, a frame over the limit), which closes with a
// code and a reason rather than by cutting the connection.
func violation(err error) bool {
	return errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrTooLarge)
}

// ownClose is the close code and reason for a link our side ends: normal
// closure when the user closed the connector or exchange (do not
// reconnect), going away otherwise (a listener or router shutting down:
// reconnect, elsewhere first).
func ownClose(ctx context.Context) (wire.CloseCode, string) {
	if errors.Is(context.Cause(ctx), errNormalClose) {
		return closeNormal, "closed"
	}
	return wire.CloseGoingAway, "shutting down"
}
