package evidence

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

// ManifestFormat identifies the manifest layout; Verify refuses others.
const ManifestFormat = "ducha-evidence-manifest/1"

// SessionFacts are the session's own data, as the session store has them.
type SessionFacts struct {
	ID         string    `json:"id"`
	Title      string    `json:"title"`
	CaseNumber string    `json:"case_number"`
	Supervisor string    `json:"supervisor"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
}

// Participant is one attendee as the session store has them.
type Participant struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	Organization string    `json:"organization,omitempty"`
	Joined       time.Time `json:"joined,omitzero"`
	Left         time.Time `json:"left,omitzero"`
}

// ManifestInput is what the caller knows about a session when it closes it.
type ManifestInput struct {
	Session      SessionFacts  `json:"session"`
	Participants []Participant `json:"participants"`
	// Events is the session's event log, an opaque JSON array.
	Events json.RawMessage `json:"events"`
}

func (in *ManifestInput) normalize() error {
	if _, err := archive.EscapePart(in.Session.ID); err != nil {
		return fmt.Errorf("%w: session id: %v", ErrInvalidManifest, err)
	}
	if len(bytes.TrimSpace(in.Events)) == 0 {
		in.Events = json.RawMessage("[]")
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(in.Events, &arr); err != nil {
		return fmt.Errorf("%w: events must be a JSON array: %v", ErrInvalidManifest, err)
	}
	if in.Participants == nil {
		in.Participants = []Participant{}
	}
	return nil
}

// Manifest is the signed description of a recorded session.
type Manifest struct {
	Format       string          `json:"format"`
	Session      SessionFacts    `json:"session"`
	NodeID       string          `json:"node_id"`
	Created      time.Time       `json:"created"`
	Signer       string          `json:"signer"`
	Participants []Participant   `json:"participants"`
	Tracks       []Track         `json:"tracks"`
	Segments     []SegmentEntry  `json:"segments"`
	Gaps         []GapEntry      `json:"gaps"`
	Chain        ChainSummary    `json:"chain"`
	Events       json.RawMessage `json:"events"`
}

// Track summarises one participant's source across its segments.
type Track struct {
	Participant string    `json:"participant"`
	Source      string    `json:"source"`
	Container   string    `json:"container"`
	Codecs      []string  `json:"codecs"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Segments    int       `json:"segments"`
}

// SegmentEntry is a segment record of the chain plus where it was archived.
type SegmentEntry struct {
	Index       uint64       `json:"index"`
	Participant string       `json:"participant"`
	Source      string       `json:"source"`
	Seq         uint64       `json:"seq"`
	Start       time.Time    `json:"start"`
	End         time.Time    `json:"end"`
	Container   string       `json:"container"`
	Codecs      []string     `json:"codecs"`
	SHA256      string       `json:"sha256"`
	Size        int64        `json:"size"`
	Prev        string       `json:"prev"`
	Hash        string       `json:"hash"`
	State       SegmentState `json:"state"`
	Key         string       `json:"key,omitempty"`
	VersionID   string       `json:"version_id,omitempty"`
	RetainUntil time.Time    `json:"retain_until,omitzero"`
	LostReason  string       `json:"lost_reason,omitempty"`
	// AudioFrames: Opus frames the recorder received and wrote;
	// AudioFramesFilled: concealment frames it wrote into holes (DTX silence,
	// loss), not sent by the microphone. Absent when not known (a segment
	// recovered after a crash or cut short by a write error, or a manifest
	// from before they were recorded), never a guessed 0.
	AudioFrames       *int `json:"audio_frames,omitempty"`
	AudioFramesFilled *int `json:"audio_frames_filled,omitempty"`
}

// GapEntry is a gap record of the chain.
type GapEntry struct {
	Index       uint64    `json:"index"`
	Participant string    `json:"participant"`
	Source      string    `json:"source"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Reason      string    `json:"reason"`
	Prev        string    `json:"prev"`
	Hash        string    `json:"hash"`
}

// ChainSummary closes the chain: its length and the hash of the last record.
type ChainSummary struct {
	Length   int    `json:"length"`
	Head     string `json:"head"`
	Encoding string `json:"encoding"`
}

const chainEncoding = "sha256 over canonical record JSON, see recording/evidence/FORMAT.md"

func (e SegmentEntry) record(session string) Record {
	return Record{
		Format: recordFormat, Session: session, Index: e.Index, Kind: KindSegment,
		Participant: e.Participant, Source: e.Source, Seq: e.Seq, Start: e.Start, End: e.End,
		Container: e.Container, Codecs: e.Codecs, SHA256: e.SHA256, Size: e.Size, Prev: e.Prev, Hash: e.Hash,
	}
}

func (e GapEntry) record(session string) Record {
	return Record{
		Format: recordFormat, Session: session, Index: e.Index, Kind: KindGap,
		Participant: e.Participant, Source: e.Source, Start: e.Start, End: e.End, Reason: e.Reason,
		Prev: e.Prev, Hash: e.Hash,
	}
}

// BuildManifest assembles the manifest of a closed session from its chain.
// Every segment must be archived or declared lost.
func BuildManifest(in ManifestInput, recs []Record, nodeID string, created time.Time, pub ed25519.PublicKey) (*Manifest, error) {
	if err := in.normalize(); err != nil {
		return nil, err
	}
	m := &Manifest{
		Format: ManifestFormat, Session: in.Session, NodeID: nodeID, Created: created.UTC(),
		Signer: Fingerprint(pub), Participants: in.Participants,
		Tracks: []Track{}, Segments: []SegmentEntry{}, Gaps: []GapEntry{},
		Chain: ChainSummary{Length: len(recs), Encoding: chainEncoding}, Events: in.Events,
	}
	tracks := map[string]int{}
	prev := ""
	for i, r := range recs {
		if r.Index != uint64(i) || r.Prev != prev || r.Session != in.Session.ID {
			return nil, fmt.Errorf("%w: record %d does not continue the chain", ErrCorruptSpool, i)
		}
		prev = r.Hash
		if r.Kind == KindGap {
			m.Gaps = append(m.Gaps, GapEntry{
				Index: r.Index, Participant: r.Participant, Source: r.Source, Start: r.Start, End: r.End,
				Reason: r.Reason, Prev: r.Prev, Hash: r.Hash,
			})
			continue
		}
		if r.State != StateArchived && r.State != StateLost {
			return nil, fmt.Errorf("%w: segment %d is still %s", ErrCorruptSpool, r.Index, r.State)
		}
		codecs := slices.Clone(r.Codecs)
		if codecs == nil {
			codecs = []string{}
		}
		m.Segments = append(m.Segments, SegmentEntry{
			Index: r.Index, Participant: r.Participant, Source: r.Source, Seq: r.Seq, Start: r.Start, End: r.End,
			Container: r.Container, Codecs: codecs, SHA256: r.SHA256, Size: r.Size, Prev: r.Prev, Hash: r.Hash,
			State: r.State, Key: r.Key, VersionID: r.VersionID, RetainUntil: r.RetainUntil, LostReason: r.LostReason,
			AudioFrames: cloneCount(r.AudioFrames), AudioFramesFilled: cloneCount(r.AudioFramesFilled),
		})
		tk := trackKey(r.Participant, r.Source)
		ti, ok := tracks[tk]
		if !ok {
			ti = len(m.Tracks)
			tracks[tk] = ti
			m.Tracks = append(m.Tracks, Track{Participant: r.Participant, Source: r.Source, Container: r.Container,
				Codecs: []string{}, Start: r.Start, End: r.End})
		}
		t := &m.Tracks[ti]
		t.Segments++
		if r.Start.Before(t.Start) {
			t.Start = r.Start
		}
		if r.End.After(t.End) {
			t.End = r.End
		}
		for _, c := range r.Codecs {
			if !slices.Contains(t.Codecs, c) {
				t.Codecs = append(t.Codecs, c)
			}
		}
	}
	m.Chain.Head = prev
	return m, nil
}

// Encode returns the manifest's bytes: deterministic (struct order, no maps),
// indented so an auditor can read it; the signature covers exactly these bytes.
func (m *Manifest) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("evidence: encode manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// SignManifest returns the raw 64-byte Ed25519 signature of the manifest
// bytes; `openssl pkeyutl -verify -pubin -inkey node.pub.pem -rawin -in
// manifest.json -sigfile manifest.sig` checks it without ducha.
func SignManifest(priv ed25519.PrivateKey, manifest []byte) []byte {
	return ed25519.Sign(priv, manifest)
}
