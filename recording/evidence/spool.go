package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

// Spool is the local, crash-safe waiting room of evidence: closed segment
// files and the chain records that describe them, per session:
//
//	<dir>/sessions/<escaped session id>/
//	    00000000.json    chain record (written atomically, before the file moves in)
//	    00000000.webm    the segment, until the archive confirms it
//	    session.json     the session facts, once the session is closed
//	    manifest.json    the signed manifest, built once every segment is archived
//	    manifest.sig
//	<dir>/lost/          segments that no longer match their hash, kept for inspection
//
// Records stay until the session's manifest (which carries them all) is
// archived; then the session directory goes. One Uploader drains one Spool.
type Spool struct {
	dir string
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*sessionState
	notify   chan struct{}
}

type sessionState struct {
	id      string
	dir     string
	head    string
	seqs    map[string]uint64
	closed  bool
	records []Record
	// cursor: no record before it is still spooled.
	cursor int
	// pending counts spooled segments; pendingBytes their sizes.
	pending      int
	pendingBytes int64
}

// Segment is a closed segment file handed over by the recorder.
type Segment struct {
	SessionID     string
	ParticipantID string
	// Source names the track group: "camera", "screen"... one chain of
	// sequence numbers per participant and source.
	Source string
	// Path of the closed file; it is moved into the spool (same file system
	// preferred, else copied).
	Path       string
	Start, End time.Time // server clock
	Codecs     []string
	// Container is the file extension, "webm" when empty.
	Container string
	// AudioFrames and AudioFramesFilled are what the recorder counted while
	// writing the file: Opus frames received, and concealment frames it wrote
	// into holes (DTX silence, lost packets), which a player makes up rather
	// than plays from the microphone. Both nil when not known (a file
	// recovered after a crash, or cut short by a write error); 0 for a file
	// without audio.
	AudioFrames, AudioFramesFilled *int
}

// Gap declares a stretch of a track that was not recorded (crash, a segment
// never closed, recording paused by fault) so the manifest says where it is.
type Gap struct {
	SessionID     string
	ParticipantID string
	Source        string
	Start, End    time.Time
	Reason        string
}

// Backlog is what waits in the spool.
type Backlog struct {
	Segments  int   `json:"segments"`
	Bytes     int64 `json:"bytes"`
	Manifests int   `json:"manifests"`
}

// OpenSpool opens (creating) the spool and reloads every session left by a
// previous process, finishing interrupted moves, so the uploader can start
// with what is already there.
func OpenSpool(dir string, log *slog.Logger) (*Spool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Spool{dir: dir, log: log, sessions: map[string]*sessionState{}, notify: make(chan struct{}, 1)}
	for _, d := range []string{s.sessionsDir(), s.lostDir()} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("evidence: create spool %s: %w", d, err)
		}
	}
	entries, err := os.ReadDir(s.sessionsDir())
	if err != nil {
		return nil, fmt.Errorf("evidence: read spool: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sess, err := s.load(filepath.Join(s.sessionsDir(), e.Name()))
		if err != nil {
			// One damaged session must not stop recording of the others; it
			// stays on disk for an operator.
			s.log.Error("evidence: spool session not loaded", slog.String("dir", e.Name()), slog.Any("err", err))
			continue
		}
		s.sessions[sess.id] = sess
	}
	if len(s.sessions) > 0 {
		s.signal()
	}
	return s, nil
}

func (s *Spool) sessionsDir() string { return filepath.Join(s.dir, "sessions") }
func (s *Spool) lostDir() string     { return filepath.Join(s.dir, "lost") }

func recordName(index uint64) string { return fmt.Sprintf("%08d.json", index) }

func trackKey(participant, source string) string { return participant + "\x00" + source }

// load rebuilds a session from its records, checking the chain as it goes.
func (s *Spool) load(dir string) (*sessionState, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	sess := &sessionState{dir: dir, seqs: map[string]uint64{}}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			os.Remove(filepath.Join(dir, name)) // an atomic write that never finished
			continue
		}
		if base, ok := strings.CutSuffix(name, ".json"); ok && len(base) == 8 {
			if _, err := strconv.ParseUint(base, 10, 64); err == nil {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	for i, name := range names {
		var r Record
		if err := readJSON(filepath.Join(dir, name), &r); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorruptSpool, name, err)
		}
		h, err := r.ComputeHash()
		if err != nil {
			return nil, err
		}
		if r.Index != uint64(i) || r.Prev != sess.head || h != r.Hash {
			return nil, fmt.Errorf("%w: %s breaks the chain (index %d, want %d)", ErrCorruptSpool, name, r.Index, i)
		}
		if sess.id == "" {
			sess.id = r.Session
		} else if r.Session != sess.id {
			return nil, fmt.Errorf("%w: %s belongs to session %q", ErrCorruptSpool, name, r.Session)
		}
		switch {
		case r.Kind == KindSegment && r.State == StateSpooled:
			s.finishMove(dir, &r)
			sess.pending++
			sess.pendingBytes += r.Size
		case r.Kind == KindSegment && r.State == StateArchived && r.SpoolFile != "":
			// A crash between the record update and the file removal.
			s.removeArchived(dir, r)
		}
		sess.head = r.Hash
		if k := trackKey(r.Participant, r.Source); r.Kind == KindSegment && r.Seq+1 > sess.seqs[k] {
			sess.seqs[k] = r.Seq + 1
		}
		sess.records = append(sess.records, r)
	}
	var in ManifestInput
	err = readJSON(filepath.Join(dir, "session.json"), &in)
	switch {
	case err == nil:
		sess.closed = true
		if sess.id == "" {
			sess.id = in.Session.ID
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: session.json: %v", ErrCorruptSpool, err)
	}
	if sess.id == "" {
		return nil, fmt.Errorf("%w: no records", ErrCorruptSpool)
	}
	if want, err := archive.EscapePart(sess.id); err != nil || want != filepath.Base(dir) {
		return nil, fmt.Errorf("%w: directory does not match session %q", ErrCorruptSpool, sess.id)
	}
	return sess, nil
}

// finishMove completes a move interrupted after the record was written.
func (s *Spool) finishMove(dir string, r *Record) {
	dst := filepath.Join(dir, r.SpoolFile)
	if _, err := os.Stat(dst); err == nil || r.Origin == "" {
		return
	}
	if err := moveFile(r.Origin, dst); err != nil {
		s.log.Warn("evidence: could not finish moving a segment into the spool",
			slog.String("session", r.Session), slog.Uint64("index", r.Index), slog.Any("err", err))
	}
}

// signal wakes the uploader without ever blocking the recorder.
func (s *Spool) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Spool) session(id string) (*sessionState, error) {
	if sess, ok := s.sessions[id]; ok {
		return sess, nil
	}
	name, err := archive.EscapePart(id)
	if err != nil {
		return nil, fmt.Errorf("%w: session id: %v", ErrInvalidSegment, err)
	}
	dir := filepath.Join(s.sessionsDir(), name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("evidence: create session spool: %w", err)
	}
	sess := &sessionState{id: id, dir: dir, seqs: map[string]uint64{}}
	s.sessions[id] = sess
	return sess, nil
}

func validateIDs(session, participant, source string) error {
	for _, p := range [][2]string{{"session", session}, {"participant", participant}, {"source", source}} {
		if _, err := archive.EscapePart(p[1]); err != nil {
			return fmt.Errorf("%w: %s id: %v", ErrInvalidSegment, p[0], err)
		}
	}
	return nil
}

// AddSegment hashes a closed segment, appends its record to the session's
// chain and moves the file into the spool. The record is on disk before the
// file moves, so a crash in between is finished on the next OpenSpool.
func (s *Spool) AddSegment(ctx context.Context, seg Segment) (Record, error) {
	if err := validateIDs(seg.SessionID, seg.ParticipantID, seg.Source); err != nil {
		return Record{}, err
	}
	if seg.Path == "" || seg.Start.IsZero() || seg.End.Before(seg.Start) {
		return Record{}, fmt.Errorf("%w: need a path and start <= end", ErrInvalidSegment)
	}
	if (seg.AudioFrames == nil) != (seg.AudioFramesFilled == nil) ||
		(seg.AudioFrames != nil && (*seg.AudioFrames < 0 || *seg.AudioFramesFilled < 0)) {
		return Record{}, fmt.Errorf("%w: audio frame counts must be both known (and not negative) or both unknown", ErrInvalidSegment)
	}
	if seg.Container == "" {
		seg.Container = "webm"
	}
	origin, err := filepath.Abs(seg.Path)
	if err != nil {
		return Record{}, fmt.Errorf("evidence: segment path: %w", err)
	}
	// Hash before taking the lock: a minute of video takes a while to read.
	sum, size, err := hashFile(origin)
	if err != nil {
		return Record{}, fmt.Errorf("evidence: hash segment: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	r := Record{
		Kind: KindSegment, Participant: seg.ParticipantID, Source: seg.Source,
		Start: seg.Start.UTC(), End: seg.End.UTC(), Container: seg.Container,
		Codecs: slices.Clone(seg.Codecs), SHA256: sum, Size: size, State: StateSpooled, Origin: origin,
		AudioFrames: cloneCount(seg.AudioFrames), AudioFramesFilled: cloneCount(seg.AudioFramesFilled),
	}
	if _, err := archive.SegmentKey(seg.SessionID, seg.ParticipantID, seg.Source, 0, r.Start, seg.Container); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrInvalidSegment, err)
	}
	return s.appendRecord(seg.SessionID, r)
}

// AddGap appends a gap record to the session's chain.
func (s *Spool) AddGap(ctx context.Context, g Gap) (Record, error) {
	if err := validateIDs(g.SessionID, g.ParticipantID, g.Source); err != nil {
		return Record{}, err
	}
	if g.Reason == "" || g.Start.IsZero() || g.End.Before(g.Start) {
		return Record{}, fmt.Errorf("%w: a gap needs a reason and start <= end", ErrInvalidSegment)
	}
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	return s.appendRecord(g.SessionID, Record{
		Kind: KindGap, Participant: g.ParticipantID, Source: g.Source,
		Start: g.Start.UTC(), End: g.End.UTC(), Reason: g.Reason,
	})
}

func (s *Spool) appendRecord(sessionID string, r Record) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, err := s.session(sessionID)
	if err != nil {
		return Record{}, err
	}
	if sess.closed {
		return Record{}, fmt.Errorf("%w: %s", ErrSessionClosed, sessionID)
	}
	r.Format = recordFormat
	r.Session = sessionID
	r.Index = uint64(len(sess.records))
	r.Prev = sess.head
	tk := trackKey(r.Participant, r.Source)
	if r.Kind == KindSegment {
		r.Seq = sess.seqs[tk]
		r.SpoolFile = fmt.Sprintf("%08d.%s", r.Index, r.Container)
	}
	if r.Hash, err = r.ComputeHash(); err != nil {
		return Record{}, err
	}
	if err := writeJSONAtomic(sess.dir, recordName(r.Index), r); err != nil {
		return Record{}, fmt.Errorf("evidence: write record: %w", err)
	}
	if r.Kind == KindSegment {
		if err := moveFile(r.Origin, filepath.Join(sess.dir, r.SpoolFile)); err != nil {
			// Nobody has seen the record yet: take it back so the chain stays
			// exactly what was spooled.
			os.Remove(filepath.Join(sess.dir, recordName(r.Index)))
			syncDir(sess.dir)
			return Record{}, fmt.Errorf("evidence: move segment into spool: %w", err)
		}
		sess.seqs[tk]++
		sess.pending++
		sess.pendingBytes += r.Size
	}
	sess.head = r.Hash
	sess.records = append(sess.records, r)
	s.log.Debug("evidence: chained", slog.String("session", sessionID), slog.Uint64("index", r.Index),
		slog.String("kind", string(r.Kind)), slog.String("participant", r.Participant), slog.String("source", r.Source))
	s.signal()
	return r, nil
}

// CloseSession records the session facts; once every segment is archived the
// uploader builds, signs and archives the manifest. Close after the recorder
// has handed over its last segment: later segments are refused.
func (s *Spool) CloseSession(ctx context.Context, in ManifestInput) error {
	if err := in.normalize(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, err := s.session(in.Session.ID)
	if err != nil {
		return err
	}
	if sess.closed {
		return fmt.Errorf("%w: %s", ErrSessionClosed, in.Session.ID)
	}
	if err := writeJSONAtomic(sess.dir, "session.json", in); err != nil {
		return fmt.Errorf("evidence: write session facts: %w", err)
	}
	sess.closed = true
	s.signal()
	return nil
}

// OpenSessions lists sessions with records but no CloseSession yet. After a
// restart the caller closes the ones that ended while the node was down
// (adding a gap record first if it knows the recording was cut).
func (s *Spool) OpenSessions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, sess := range s.sessions {
		if !sess.closed {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Records returns a copy of a session's chain as it stands in the spool.
func (s *Spool) Records(sessionID string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[sessionID]
	if !ok {
		return nil
	}
	out := make([]Record, len(sess.records))
	for i, r := range sess.records {
		out[i] = r.clone()
	}
	return out
}

// Backlog is what waits in the whole spool.
func (s *Spool) Backlog() Backlog {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b Backlog
	for _, sess := range s.sessions {
		b.Segments += sess.pending
		b.Bytes += sess.pendingBytes
		if sess.closed {
			b.Manifests++
		}
	}
	return b
}

// SessionBacklog is what one session still has in the spool; ok is false when
// the spool holds nothing of it (never recorded, or fully archived).
func (s *Spool) SessionBacklog(sessionID string) (b Backlog, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[sessionID]
	if !ok {
		return Backlog{}, false
	}
	b = Backlog{Segments: sess.pending, Bytes: sess.pendingBytes}
	if sess.closed {
		b.Manifests = 1
	}
	return b, true
}
