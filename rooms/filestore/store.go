package filestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/memstore"
)

// DefaultCompactBytes is the journal size below which compaction never
// runs. Above it, compaction runs once the journals reach the size of the
// snapshot, so replay at startup never reads more than about twice the
// state.
const DefaultCompactBytes = 8 << 20

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	compactBytes int64
}

// WithCompactBytes sets the minimum journal size that triggers compaction
// (default DefaultCompactBytes). Values below 1 are ignored.
func WithCompactBytes(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.compactBytes = n
		}
	}
}

// Store is a rooms.Store kept in memory and journaled to a directory.
type Store struct {
	mem  *memstore.Store
	log  *slog.Logger
	dir  string
	lock *os.File
	opts options

	// wmu orders changes: a change is applied to memory and its record
	// appended to the journal under wmu, so the journal order is the order
	// in which memory changed. The fsync wait happens after wmu is released.
	wmu    sync.Mutex
	closed bool
	j      *journal

	compactMu sync.Mutex // one compaction at a time
	cmu       sync.Mutex // guards compactAt and snapBytes
	compactAt int64      // journal bytes that trigger compaction
	snapBytes int64      // size of the last snapshot
	kick      chan struct{}
	done      chan struct{}
	wg        sync.WaitGroup
}

var _ rooms.Store = (*Store)(nil)

// Open locks dir (creating it), rebuilds the state saved there and returns
// the store. A nil clock means the system clock (it decides heartbeat
// expiry); a nil log discards. It returns an error wrapping ErrLocked when
// another process holds dir, and ErrCorrupt when the saved state is damaged
// beyond an interrupted last write.
func Open(dir string, clock rooms.Clock, log *slog.Logger, opts ...Option) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "filestore", "dir", dir)
	o := options{compactBytes: DefaultCompactBytes}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s, err := open(dir, clock, log, o, lock)
	if err != nil {
		_ = unlockDir(lock)
		return nil, err
	}
	return s, nil
}

func open(dir string, clock rooms.Clock, log *slog.Logger, o options, lock *os.File) (*Store, error) {
	start := time.Now()
	mem := memstore.New(clock)
	l, err := load(dir, mem, log)
	if err != nil {
		return nil, err
	}
	j, err := createJournal(dir, l.nextGen)
	if err != nil {
		return nil, err
	}
	j.oldBytes = l.journalBytes
	s := &Store{
		mem:  mem,
		log:  log,
		dir:  dir,
		lock: lock,
		opts: o,
		j:    j,
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	s.setCompactAt(l.snapBytes)
	log.Info("state loaded", "snapshot_bytes", l.snapBytes, "journals", l.journals, "records", l.records,
		"journal_bytes", l.journalBytes, "generation", l.nextGen, "took", time.Since(start))
	s.wg.Go(s.compactLoop)
	s.maybeCompact()
	return s, nil
}

// Healthy reports whether every accepted change reached the disk.
func (s *Store) Healthy() bool { return s.j.failure() == nil }

// Close waits for a running compaction, makes every accepted change durable
// and releases the directory. Changes after Close return rooms.ErrClosed.
func (s *Store) Close() error {
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return nil
	}
	s.closed = true
	s.wmu.Unlock()
	close(s.done)
	s.wg.Wait()
	// A Compact called by someone else may still be writing the snapshot:
	// the directory must stay locked until it is done.
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	err := s.j.close()
	if uerr := unlockDir(s.lock); err == nil && uerr != nil {
		err = fmt.Errorf("filestore: release lock: %w", uerr)
	}
	return err
}

// Compact writes a snapshot of the whole state and deletes the journals it
// covers. It runs by itself when the journals grow; calling it is only
// needed to make the next start faster.
func (s *Store) Compact() error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return rooms.ErrClosed
	}
	// Changes stop only while the journal switches files and memory is
	// copied; the snapshot is written while they go on.
	gen := s.j.gen + 1
	if err := s.j.rotate(gen); err != nil {
		s.wmu.Unlock()
		return err
	}
	st := s.mem.Export()
	s.wmu.Unlock()

	start := time.Now()
	size, err := writeSnapshot(s.dir, gen, st)
	if err != nil {
		// The journals are all still there: nothing is lost, and the next
		// attempt waits for the journals to grow by another threshold.
		s.cmu.Lock()
		s.compactAt = s.j.pending() + max(s.opts.compactBytes, s.snapBytes)
		s.cmu.Unlock()
		return err
	}
	s.j.covered()
	gens, err := listJournals(s.dir)
	if err == nil {
		for _, g := range gens {
			if g < gen {
				if rerr := os.Remove(filepath.Join(s.dir, journalName(g))); rerr != nil {
					err = errors.Join(err, rerr)
				}
			}
		}
	}
	s.setCompactAt(size)
	s.log.Info("compacted", "generation", gen, "snapshot_bytes", size, "sessions", len(st.Sessions),
		"events", len(st.Events), "took", time.Since(start))
	if err != nil {
		// The snapshot is in place; a journal left behind is removed at the
		// next Open.
		s.log.Warn("could not remove compacted journals", "error", err)
	}
	return nil
}

func (s *Store) setCompactAt(snapBytes int64) {
	s.cmu.Lock()
	s.snapBytes = snapBytes
	s.compactAt = max(s.opts.compactBytes, snapBytes)
	s.cmu.Unlock()
}

// maybeCompact wakes the compactor when the journals have outgrown the
// threshold. It never blocks a writer.
func (s *Store) maybeCompact() {
	s.cmu.Lock()
	at := s.compactAt
	s.cmu.Unlock()
	if s.j.pending() < at {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Store) compactLoop() {
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
			if err := s.Compact(); err != nil && !errors.Is(err, rooms.ErrClosed) {
				s.log.Error("compaction failed; the journal still holds everything", "error", err)
			}
		}
	}
}

// change applies a change to memory and journals the record it returns, in
// one step under wmu, then waits until the journal is durable up to that
// record. A nil record (nothing changed) still waits for earlier records,
// since the answer may rest on them. ctx is only checked before the change:
// once applied, the change is journaled whatever happens to the caller.
func change[T any](ctx context.Context, s *Store, fn func() (T, *record, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return zero, rooms.ErrClosed
	}
	if err := s.j.failure(); err != nil {
		s.wmu.Unlock()
		return zero, err
	}
	v, rec, err := fn()
	if err != nil {
		s.wmu.Unlock()
		return zero, err
	}
	var pos uint64
	if rec != nil {
		pos, err = s.j.append(rec)
	} else {
		pos = s.j.position()
	}
	s.wmu.Unlock()
	if err == nil {
		err = s.j.wait(pos)
	}
	if err != nil {
		s.log.Error("change not journaled; refusing further changes", "error", err)
		return zero, err
	}
	s.maybeCompact()
	return v, nil
}
