package filestore

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// Record operations. Each record holds the resulting value, not the request,
// so replay is a plain put and cannot disagree with what callers were told.
const (
	opSession     = "session"
	opInvitations = "invitations"
	opParticipant = "participant"
	opEvent       = "event"
	opAccount     = "account"
)

// record is one journal line.
type record struct {
	// N numbers the records of one journal file from 1, so a lost or
	// repeated line is detected on replay.
	N           uint64             `json:"n"`
	Op          string             `json:"op"`
	Session     *rooms.Session     `json:"session,omitempty"`
	Invitations []rooms.Invitation `json:"invitations,omitempty"`
	Participant *rooms.Participant `json:"participant,omitempty"`
	// Expires is set by joins; other participant records keep the stored
	// expiry.
	Expires time.Time      `json:"expires,omitzero"`
	Event   *rooms.Event   `json:"event,omitempty"`
	Account *rooms.Account `json:"account,omitempty"`
}

func journalName(gen uint64) string { return fmt.Sprintf("journal-%08d.jsonl", gen) }

// journal appends records to the current journal file with group commit:
// appends only fill a buffer; the first caller that needs its record durable
// becomes the leader, writes and fsyncs everything buffered so far, and
// wakes the others, whose records that one fsync covered.
type journal struct {
	dir string

	mu       sync.Mutex
	cond     sync.Cond
	f        *os.File
	gen      uint64
	n        uint64 // records in the current file
	buf      []byte // appended, not yet written
	appended uint64 // records appended since Open
	synced   uint64 // records durable since Open
	flushing bool
	err      error // sticky: once set, nothing more is written
	closed   bool
	// fileBytes counts the current file, oldBytes the earlier files the
	// snapshot does not cover yet; together they decide compaction.
	fileBytes int64
	oldBytes  int64

	syncs atomic.Uint64 // fsyncs done, for the benchmark
}

// createJournal creates journal file gen in dir; it must not exist.
func createJournal(dir string, gen uint64) (*journal, error) {
	f, err := openNewJournal(dir, gen)
	if err != nil {
		return nil, err
	}
	j := &journal{dir: dir, f: f, gen: gen}
	j.cond.L = &j.mu
	return j, nil
}

func openNewJournal(dir string, gen uint64) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, journalName(gen)), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: create journal: %w", ErrJournal, err)
	}
	// The new name must survive a crash, or records written to it would
	// vanish with it.
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %w", ErrJournal, err)
	}
	return f, nil
}

// failure returns the sticky error, wrapped for callers of the store.
func (j *journal) failure() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.wrapErr()
}

func (j *journal) wrapErr() error {
	if j.err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", rooms.ErrUnavailable, j.err)
}

// append buffers rec and returns the position to pass to wait. The caller
// serialises appends with the memory changes they describe.
func (j *journal) append(rec *record) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return 0, j.wrapErr()
	}
	if j.closed {
		return 0, rooms.ErrClosed
	}
	rec.N = j.n + 1
	line, err := json.Marshal(rec)
	if err != nil {
		// The change is already in memory: stop here rather than let memory
		// and disk drift apart further.
		j.err = fmt.Errorf("%w: encode %s record: %w", ErrJournal, rec.Op, err)
		return 0, j.wrapErr()
	}
	j.n++
	j.buf = append(append(j.buf, line...), '\n')
	j.fileBytes += int64(len(line) + 1)
	j.appended++
	return j.appended, nil
}

// position returns the position of the last appended record.
func (j *journal) position() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.appended
}

// pending returns the bytes of journal the snapshot does not cover.
func (j *journal) pending() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.oldBytes + j.fileBytes
}

// wait returns once every record up to pos is on disk. It does not take a
// context: once a record is buffered it will be written, and a caller told
// "cancelled" about a change that then lands would be misled.
func (j *journal) wait(pos uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.synced < pos && j.err == nil {
		if j.flushing {
			j.cond.Wait()
			continue
		}
		j.flushLocked()
	}
	if j.synced >= pos {
		return nil
	}
	return j.wrapErr()
}

// flushLocked writes and fsyncs the buffer as leader. It drops j.mu during
// the I/O so appends and other waiters carry on.
func (j *journal) flushLocked() {
	j.flushing = true
	buf, upto, f := j.buf, j.appended, j.f
	j.buf = nil
	j.mu.Unlock()
	err := writeSync(f, buf)
	j.syncs.Add(1)
	j.mu.Lock()
	j.flushing = false
	if err != nil {
		j.err = fmt.Errorf("%w: %s: %w", ErrJournal, f.Name(), err)
	} else {
		j.synced = upto
	}
	j.cond.Broadcast()
}

func writeSync(f *os.File, buf []byte) error {
	if len(buf) > 0 {
		if _, err := f.Write(buf); err != nil {
			return err
		}
	}
	return f.Sync()
}

// rotate makes everything durable and switches to journal file gen. The
// caller holds the store's write lock, so nothing is appended meanwhile.
func (j *journal) rotate(gen uint64) error {
	if err := j.wait(j.position()); err != nil {
		return err
	}
	f, err := openNewJournal(j.dir, gen)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.flushing {
		j.cond.Wait()
	}
	old := j.f
	j.f, j.gen, j.n = f, gen, 0
	j.oldBytes += j.fileBytes
	j.fileBytes = 0
	// Everything in old was fsync'ed above; a close error loses nothing.
	_ = old.Close()
	return nil
}

// covered records that a snapshot now holds every journal before the
// current one.
func (j *journal) covered() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.oldBytes = 0
}

// close makes everything durable and closes the file.
func (j *journal) close() error {
	err := j.wait(j.position())
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.flushing {
		j.cond.Wait()
	}
	j.closed = true
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: close journal: %w", ErrJournal, cerr)
	}
	return err
}

// syncDir fsyncs a directory so that file creations, renames and removals
// in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
