package mux

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxSegment    = 60 * time.Second
	DefaultJitterHold    = 400 * time.Millisecond
	DefaultFlushInterval = time.Second
	DefaultKeyframeLead  = 2 * time.Second
)

// Config describes one recording: one participant's source (camera with
// microphone, or a screen share) written as a series of segment files.
type Config struct {
	// Dir is the spool directory; it must exist. Segment files are created
	// in it and nowhere else.
	Dir string
	// Name is the file name stem, built by the caller from safe ids (for
	// example "<session>_<participant>_camera"). Only ASCII letters, digits,
	// '-', '_' and '.' are accepted, and never "..": the name is checked
	// again here because a path escaping the spool would be a security bug.
	Name string

	// MaxSegment is how long a segment runs: it is cut at the first video
	// keyframe at or after MaxSegment (anywhere for audio only, and anywhere
	// at 2*MaxSegment if the publisher sends no keyframe). Default 60 s.
	MaxSegment time.Duration
	// JitterHold is how long a gap in sequence numbers is waited for before
	// the missing packets are counted lost, leaving time for NACK
	// retransmissions. Default 400 ms.
	JitterHold time.Duration
	// FlushInterval is how often written data is synced to disk; at most 1 s
	// so that a crash loses about a second. Default 1 s.
	FlushInterval time.Duration
	// KeyframeLead is how long before a segment boundary a keyframe is
	// requested, so one arrives close to the boundary. Default 2 s (at most
	// MaxSegment/4).
	KeyframeLead time.Duration

	// Now is the server clock. Segment start times are on this clock so
	// recordings of all participants share one timeline. Default time.Now.
	Now func() time.Time
	// RequestKeyframe asks the publisher for a keyframe (PLI). Called from the
	// recorder's goroutine, throttled; it must not block. May be nil.
	RequestKeyframe func()
	// OnSegment is called from the recorder's goroutine after a segment file
	// is complete, synced and renamed to its final name. It must return
	// quickly (hand the work to another goroutine). May be nil.
	OnSegment func(Segment)
	// Logger receives events with the recording's attributes; nil discards.
	Logger *slog.Logger
	// Buffers lends the buffers that hold packets and frames in flight.
	// Give every recorder of a server the same pool, so that they share
	// what they hold between them (see BufferPool). Default: a pool of the
	// recorder's own.
	Buffers *BufferPool
}

func (c Config) withDefaults() Config {
	if c.MaxSegment == 0 {
		c.MaxSegment = DefaultMaxSegment
	}
	if c.JitterHold == 0 {
		c.JitterHold = DefaultJitterHold
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.KeyframeLead == 0 {
		c.KeyframeLead = min(DefaultKeyframeLead, c.MaxSegment/4)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Buffers == nil {
		c.Buffers = NewBufferPool()
	}
	return c
}

func (c Config) validate() error {
	if err := CheckName(c.Name); err != nil {
		return err
	}
	fi, err := os.Stat(c.Dir)
	if err != nil {
		return fmt.Errorf("%w: spool dir: %w", ErrInvalidConfig, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: spool dir %q is not a directory", ErrInvalidConfig, c.Dir)
	}
	switch {
	case c.MaxSegment < time.Second:
		return fmt.Errorf("%w: MaxSegment %v below 1s", ErrInvalidConfig, c.MaxSegment)
	case c.JitterHold < 0 || c.JitterHold > 2*time.Second:
		return fmt.Errorf("%w: JitterHold %v outside 0..2s", ErrInvalidConfig, c.JitterHold)
	case c.FlushInterval < 0 || c.FlushInterval > time.Second:
		return fmt.Errorf("%w: FlushInterval %v outside 0..1s", ErrInvalidConfig, c.FlushInterval)
	case c.KeyframeLead < 0 || c.KeyframeLead >= c.MaxSegment:
		return fmt.Errorf("%w: KeyframeLead %v outside 0..MaxSegment", ErrInvalidConfig, c.KeyframeLead)
	}
	return nil
}

// maxNameLen keeps "<name>-000001.webm.part" well under common file name
// limits (255 bytes).
const maxNameLen = 200

// CheckName reports whether name is safe as a file name stem in the spool:
// 1..200 ASCII letters, digits, '-', '_' or '.', not starting with '.', and
// without "..". Anything else is rejected rather than escaped, so a name can
// never address another directory.
func CheckName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: length %d", ErrUnsafeName, len(name))
	}
	if name[0] == '.' || strings.Contains(name, "..") {
		return fmt.Errorf("%w: %q", ErrUnsafeName, name)
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		ok := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			b == '-' || b == '_' || b == '.'
		if !ok {
			return fmt.Errorf("%w: %q has byte %q", ErrUnsafeName, name, b)
		}
	}
	return nil
}
