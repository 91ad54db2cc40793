package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

// Kind says what a chain record stands for.
type Kind string

// Record kinds.
const (
	KindSegment Kind = "segment"
	KindGap     Kind = "gap"
)

// SegmentState is where a segment is on its way to the archive.
type SegmentState string

// Segment states. Gap records have no state.
const (
	// StateSpooled: the file is in the spool, not yet confirmed by the archive.
	StateSpooled SegmentState = "spooled"
	// StateArchived: the archive confirmed key, version and checksum; the spool
	// file is gone (removed before the spool reports the new state; after a
	// crash in between, on the next OpenSpool).
	StateArchived SegmentState = "archived"
	// StateLost: the spool file vanished or no longer matches its hash, so it
	// can never be archived; the manifest declares it.
	StateLost SegmentState = "lost"
)

// recordFormat versions the canonical encoding below.
const recordFormat = 1

// Record is one link of a session's hash chain: a closed segment or a declared
// gap. The fields above Hash are covered by it; the ones below are not: the
// recorder's audio counts, then the upload bookkeeping, filled in later. All
// are carried into the signed manifest.
type Record struct {
	Format      int       `json:"v"`
	Session     string    `json:"session"`
	Index       uint64    `json:"index"`
	Kind        Kind      `json:"kind"`
	Participant string    `json:"participant"`
	Source      string    `json:"source"`
	Seq         uint64    `json:"seq"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Container   string    `json:"container,omitempty"`
	Codecs      []string  `json:"codecs,omitempty"`
	SHA256      string    `json:"sha256,omitempty"`
	Size        int64     `json:"size"`
	Reason      string    `json:"reason,omitempty"`
	Prev        string    `json:"prev"`
	Hash        string    `json:"hash"`

	// AudioFrames and AudioFramesFilled: see Segment. Outside the hash
	// because records hashed without them (format 1) must keep their hashes;
	// the manifest signature covers them.
	AudioFrames       *int `json:"audio_frames,omitempty"`
	AudioFramesFilled *int `json:"audio_frames_filled,omitempty"`

	State       SegmentState `json:"state,omitempty"`
	Key         string       `json:"key,omitempty"`
	VersionID   string       `json:"version_id,omitempty"`
	RetainUntil time.Time    `json:"retain_until,omitzero"`
	UploadedAt  time.Time    `json:"uploaded_at,omitzero"`
	LostReason  string       `json:"lost_reason,omitempty"`
	// SpoolFile is the segment's name inside the session's spool directory;
	// Origin is where the recorder left it, so a crash between writing this
	// record and moving the file can be finished on restart.
	SpoolFile string `json:"spool_file,omitempty"`
	Origin    string `json:"origin,omitempty"`
}

// clone copies r with nothing shared with it, so a copy handed out of the
// spool cannot change the spool's own record.
func (r Record) clone() Record {
	r.Codecs = slices.Clone(r.Codecs)
	r.AudioFrames = cloneCount(r.AudioFrames)
	r.AudioFramesFilled = cloneCount(r.AudioFramesFilled)
	return r
}

func cloneCount(n *int) *int {
	if n == nil {
		return nil
	}
	return new(*n)
}

// canonicalRecord is the hashed form: keys in lexicographic order, times as
// fixed-width UTC strings, no optional fields, so anyone can rebuild the exact
// bytes from a manifest entry (see FORMAT.md).
type canonicalRecord struct {
	Codecs      []string `json:"codecs"`
	Container   string   `json:"container"`
	End         string   `json:"end"`
	Index       uint64   `json:"index"`
	Kind        Kind     `json:"kind"`
	Participant string   `json:"participant"`
	Prev        string   `json:"prev"`
	Reason      string   `json:"reason"`
	Seq         uint64   `json:"seq"`
	Session     string   `json:"session"`
	SHA256      string   `json:"sha256"`
	Size        int64    `json:"size"`
	Source      string   `json:"source"`
	Start       string   `json:"start"`
	Format      int      `json:"v"`
}

// canonicalTime has a fixed width so that equal instants always encode the same.
const canonicalTime = "2006-01-02T15:04:05.000000000Z"

// CanonicalTime formats t the way record hashes see it.
func CanonicalTime(t time.Time) string { return t.UTC().Format(canonicalTime) }

// Canonical returns the exact bytes the record hash is computed over.
func (r *Record) Canonical() ([]byte, error) {
	codecs := r.Codecs
	if codecs == nil {
		codecs = []string{}
	}
	c := canonicalRecord{
		Codecs: codecs, Container: r.Container, End: CanonicalTime(r.End), Index: r.Index, Kind: r.Kind,
		Participant: r.Participant, Prev: r.Prev, Reason: r.Reason, Seq: r.Seq, Session: r.Session,
		SHA256: r.SHA256, Size: r.Size, Source: r.Source, Start: CanonicalTime(r.Start), Format: r.Format,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("evidence: encode record: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ComputeHash returns the lowercase hex SHA-256 of the canonical encoding.
func (r *Record) ComputeHash() (string, error) {
	b, err := r.Canonical()
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// ObjectKey is where the segment of this record is stored.
func (r *Record) ObjectKey() (string, error) {
	return archive.SegmentKey(r.Session, r.Participant, r.Source, r.Seq, r.Start, r.Container)
}
