package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

// What the uploader does next, in order: the segments of a session in chain
// order, then its manifest once it is closed and nothing is spooled.
type workKind int

const (
	workSegment workKind = iota + 1
	workManifest
)

type work struct {
	kind    workKind
	session string
	dir     string
	rec     Record
}

// next returns the oldest pending piece of work.
func (s *Spool) next() (work, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.sessions))
	for id := range s.sessions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		sess := s.sessions[id]
		if sess.pending > 0 {
			// Records only ever leave the spooled state, so everything before
			// the cursor is done and need not be scanned again.
			for ; sess.cursor < len(sess.records); sess.cursor++ {
				if r := &sess.records[sess.cursor]; r.Kind == KindSegment && r.State == StateSpooled {
					return work{kind: workSegment, session: id, dir: sess.dir, rec: r.clone()}, true
				}
			}
		}
		if sess.closed && sess.pending == 0 {
			return work{kind: workManifest, session: id, dir: sess.dir}, true
		}
	}
	return work{}, false
}

// segmentPath is where a spooled record's file lives.
func (s *Spool) segmentPath(w work) string { return filepath.Join(w.dir, w.rec.SpoolFile) }

// update rewrites one record (state changes only; hashed fields never change)
// and keeps the counters in step. then, if set, runs once the new record is
// durable but before anyone can see it: observers (Backlog, Records, the API)
// must never be told about a step that is not finished yet.
func (s *Spool) update(sessionID string, index uint64, change func(*Record), then func(dir string, r Record)) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[sessionID]
	if !ok || index >= uint64(len(sess.records)) {
		return Record{}, fmt.Errorf("%w: no record %d in session %s", ErrCorruptSpool, index, sessionID)
	}
	r := sess.records[index].clone()
	if r.State != StateSpooled {
		return Record{}, fmt.Errorf("%w: record %d of %s is %s, not spooled", ErrCorruptSpool, index, sessionID, r.State)
	}
	change(&r)
	if err := writeJSONAtomic(sess.dir, recordName(index), r); err != nil {
		return Record{}, fmt.Errorf("evidence: update record: %w", err)
	}
	if then != nil {
		then(sess.dir, r)
	}
	sess.records[index] = r
	sess.pending--
	sess.pendingBytes -= r.Size
	return r, nil
}

// markArchived records what the archive confirmed; only then does the
// segment file leave the spool. The record is written first: a crash in
// between leaves a copy of an archived file (removed on the next OpenSpool),
// where the other order would leave a spooled record with no file, which the
// next run would declare lost although the archive holds it.
func (s *Spool) markArchived(w work, info archive.ObjectInfo, at time.Time) error {
	_, err := s.update(w.session, w.rec.Index, func(r *Record) {
		r.State = StateArchived
		r.Key = info.Key
		r.VersionID = info.VersionID
		r.RetainUntil = info.Retention.Until
		r.UploadedAt = at.UTC()
	}, s.removeArchived)
	return err
}

// removeArchived deletes the spool copy of a segment the archive confirmed.
// A failure only costs disk space until the session directory goes with its
// manifest, so it is logged, not returned: the record must still say archived.
func (s *Spool) removeArchived(dir string, r Record) {
	err := os.Remove(filepath.Join(dir, r.SpoolFile))
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("evidence: archived segment left in spool", "session", r.Session, "index", r.Index, "err", err)
	}
}

// markLost gives up on a segment that can never be archived as recorded; its
// file (if any) is kept aside for inspection, its record says why.
func (s *Spool) markLost(w work, reason string) error {
	src := filepath.Join(w.dir, w.rec.SpoolFile)
	if _, err := os.Stat(src); err == nil {
		dst := filepath.Join(s.lostDir(), fmt.Sprintf("%s-%s", filepath.Base(w.dir), w.rec.SpoolFile))
		if err := moveFile(src, dst); err != nil {
			return fmt.Errorf("evidence: set aside lost segment: %w", err)
		}
	}
	_, err := s.update(w.session, w.rec.Index, func(r *Record) {
		r.State = StateLost
		r.LostReason = reason
	}, nil)
	if err == nil {
		s.log.Error("evidence: segment lost before archiving", "session", w.session, "index", w.rec.Index,
			"participant", w.rec.Participant, "source", w.rec.Source, "reason", reason)
	}
	return err
}

// closedSession returns what the manifest is built from.
func (s *Spool) closedSession(id string) ([]Record, ManifestInput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok || !sess.closed {
		return nil, ManifestInput{}, fmt.Errorf("%w: session %s is not closed", ErrCorruptSpool, id)
	}
	var in ManifestInput
	if err := readJSON(filepath.Join(sess.dir, "session.json"), &in); err != nil {
		return nil, ManifestInput{}, fmt.Errorf("%w: session.json: %v", ErrCorruptSpool, err)
	}
	recs := make([]Record, len(sess.records))
	for i, r := range sess.records {
		recs[i] = r.clone()
	}
	return recs, in, nil
}

// finishSession forgets a session whose manifest the archive confirmed.
func (s *Spool) finishSession(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return nil
	}
	if err := os.RemoveAll(sess.dir); err != nil {
		return fmt.Errorf("evidence: remove archived session from spool: %w", err)
	}
	delete(s.sessions, id)
	return syncDir(s.sessionsDir())
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeJSONAtomic(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, name, append(b, '\n'))
}

// writeFileAtomic: temp file, fsync, rename, fsync the directory. A reader
// (or a restart) sees the old content or the new, never a torn file.
func writeFileAtomic(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// moveFile renames, or copies and syncs across file systems.
func moveFile(src, dst string) error {
	err := os.Rename(src, dst)
	if err == nil {
		return syncDir(filepath.Dir(dst))
	}
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".part"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	return os.Remove(src)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
