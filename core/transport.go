package core

import (
	"context"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// transport moves whole hakuban frames (one WebSocket binary message each)
// for one link. The link calls Read from exactly one goroutine and Write
// from exactly one other goroutine.
type transport interface {
	// Read returns the next frame, which stays valid until the next Read.
	// It fails once the transport is closed. A ctx that cannot be
	// cancelled lets a transport read in the calling goroutine; one that
	// can may cost a goroutine per Read.
	Read(ctx context.Context) ([]byte, error)
	// Write sends one frame; the transport does not keep frame after
	// returning.
	Write(ctx context.Context, frame []byte) error
	// Close closes gracefully with a close code and reason, waiting a
	// bounded time for the peer. Never call it while holding a lock.
	Close(code wire.CloseCode, reason string) error
	// CloseNow closes at once, for misbehaving peers and shutdown.
	CloseNow() error
}

// linkRole says which end of a link this exchange is.
type linkRole uint8

const (
	// roleUpstream: the peer is our upstream (we connected to it).
	roleUpstream linkRole = iota + 1
	// roleDownstream: the peer is one of our downstreams (it connected to us).
	roleDownstream
)
