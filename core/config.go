package core

import (
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/hakuban/hakuban/core/internal/wire"
)

// Config configures an Exchange. Start from DefaultConfig and change what you
// need; NewExchange validates it.
type Config struct {
	// Name identifies the exchange in snapshots, logs and handshakes (the
	// default name of its connectors and listeners): valid UTF-8 of at
	// most 256 bytes.
	Name string
	// Limits bound the descriptors contracts may name.
	Limits DescriptorLimits
	// RebalanceThreshold: objects move from the most- to the least-loaded
	// exposer while their loads differ by more than this fraction of the
	// larger load. 0 < x < 1; default 0.1.
	RebalanceThreshold float64
	// RebalanceInterval: how often the rebalancer may move objects. Moves
	// are rate-limited so that exposers coming and going never make objects
	// flap. Default 100 ms.
	RebalanceInterval time.Duration
	// MaxMovesPerInterval caps the objects moved per RebalanceInterval.
	// Default 64 (so at most 640 moves a second with the default interval).
	MaxMovesPerInterval int
	// HandoverTimeout: during a planned move the old exposer keeps its
	// assignment until the new one has sent a state, or at most this long.
	// Default 1 s.
	HandoverTimeout time.Duration
	// Logger receives the exchange's log records; nil logs nothing.
	Logger *slog.Logger
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Name:                "exchange",
		Limits:              DefaultDescriptorLimits(),
		RebalanceThreshold:  0.1,
		RebalanceInterval:   100 * time.Millisecond,
		MaxMovesPerInterval: 64,
		HandoverTimeout:     time.Second,
	}
}

// Validate reports the first field that is out of range.
func (c Config) Validate() error {
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("core: config limits: %w", err)
	}
	switch {
	case len(c.Name) > wire.MaxNameLen || !utf8.ValidString(c.Name):
		return fmt.Errorf("core: Name must be valid UTF-8 of at most %d bytes (handshakes carry it): %w", wire.MaxNameLen, ErrInvalidConfig)
	case !(c.RebalanceThreshold > 0 && c.RebalanceThreshold < 1):
		return fmt.Errorf("core: RebalanceThreshold %v not in (0,1): %w", c.RebalanceThreshold, ErrInvalidConfig)
	case c.RebalanceInterval <= 0:
		return fmt.Errorf("core: RebalanceInterval %v not positive: %w", c.RebalanceInterval, ErrInvalidConfig)
	case c.MaxMovesPerInterval <= 0:
		return fmt.Errorf("core: MaxMovesPerInterval %d not positive: %w", c.MaxMovesPerInterval, ErrInvalidConfig)
	case c.HandoverTimeout <= 0:
		return fmt.Errorf("core: HandoverTimeout %v not positive: %w", c.HandoverTimeout, ErrInvalidConfig)
	}
	return nil
}
