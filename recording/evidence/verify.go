package evidence

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

// Source is what verification reads from an archive.
type Source interface {
	Get(ctx context.Context, key, versionID string) (io.ReadCloser, archive.ObjectInfo, error)
	List(ctx context.Context, prefix string) ([]archive.ObjectInfo, error)
}

// Result is the verdict of a verification.
type Result int

// Results, in the order of the CLI exit codes.
const (
	// Intact: signature valid, chain whole, every object present with its hash.
	Intact Result = iota
	// Altered: something differs from the signed manifest, or is missing.
	Altered
	// CouldNotCheck: no manifest, or the archive could not be read.
	CouldNotCheck
)

func (r Result) String() string {
	switch r {
	case Intact:
		return "intact"
	case Altered:
		return "altered"
	}
	return "could_not_check"
}

// MarshalText makes the result readable in JSON reports.
func (r Result) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// ProblemCode classifies what is wrong with one link.
type ProblemCode string

// Problem codes.
const (
	ProblemSignatureMissing ProblemCode = "signature_missing"
	ProblemBadSignature     ProblemCode = "bad_signature"
	ProblemManifestInvalid  ProblemCode = "manifest_invalid"
	ProblemSessionMismatch  ProblemCode = "session_mismatch"
	ProblemChainIndex       ProblemCode = "chain_index"
	ProblemRecordHash       ProblemCode = "record_hash"
	ProblemChainLink        ProblemCode = "chain_link"
	ProblemChainHead        ProblemCode = "chain_head"
	ProblemKeyMismatch      ProblemCode = "key_mismatch"
	ProblemMissing          ProblemCode = "missing"
	ProblemContent          ProblemCode = "content_mismatch"
	ProblemSize             ProblemCode = "size_mismatch"
)

// manifestLevel is the Index of problems with the manifest itself; they come
// before any chain link.
const manifestLevel = -1

// Problem is one bad link.
type Problem struct {
	Index     int64       `json:"index"`
	Key       string      `json:"key,omitempty"`
	VersionID string      `json:"version_id,omitempty"`
	Code      ProblemCode `json:"code"`
	Detail    string      `json:"detail"`
}

// Report is the outcome of Verify.
type Report struct {
	Session string `json:"session"`
	Result  Result `json:"result"`
	// Reason explains CouldNotCheck.
	Reason          string    `json:"reason,omitempty"`
	ManifestKey     string    `json:"manifest_key,omitempty"`
	ManifestVersion string    `json:"manifest_version,omitempty"`
	NodeID          string    `json:"node_id,omitempty"`
	Created         time.Time `json:"created,omitzero"`
	// Signer is the key the manifest names; Key the one checked against.
	Signer         string         `json:"signer,omitempty"`
	Key            string         `json:"key,omitempty"`
	SignatureValid bool           `json:"signature_valid"`
	Records        int            `json:"records"`
	Segments       int            `json:"segments"`
	SegmentsOK     int            `json:"segments_ok"`
	Bytes          int64          `json:"bytes"`
	Gaps           []GapEntry     `json:"gaps,omitempty"`
	Lost           []SegmentEntry `json:"lost,omitempty"`
	FirstBad       *Problem       `json:"first_bad,omitempty"`
	Problems       []Problem      `json:"problems,omitempty"`
	// Unlisted are objects under the session's prefix the manifest does not
	// name (a re-upload after a crash, or something added later): reported,
	// not counted as alteration.
	Unlisted []string `json:"unlisted,omitempty"`
	// Audio sums, per track, what the manifest says the recorder counted of
	// the audio; empty when no segment carries counts (older manifests).
	Audio []AudioSummary `json:"audio,omitempty"`
}

// AudioSummary is one track's audio counts over its segments that are not
// lost: how much of what the archive holds was concealment written by the
// recorder rather than sound from the microphone.
type AudioSummary struct {
	Participant string `json:"participant"`
	Source      string `json:"source"`
	Frames      int    `json:"frames"`
	Filled      int    `json:"frames_filled"`
	// Uncounted segments carry no counts (recovered after a crash, or cut
	// short by a write error).
	Uncounted int `json:"segments_uncounted,omitempty"`
}

// summarizeAudio adds up the counts of the manifest's segments per track, in
// the order tracks first appear; tracks without a counted frame are left out
// (a screen share has no audio; a manifest from before the counts has none).
func summarizeAudio(segs []SegmentEntry) []AudioSummary {
	var out []AudioSummary
	at := map[string]int{}
	for _, e := range segs {
		if e.State == StateLost {
			continue
		}
		k := trackKey(e.Participant, e.Source)
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, AudioSummary{Participant: e.Participant, Source: e.Source})
		}
		if e.AudioFrames == nil || e.AudioFramesFilled == nil {
			out[i].Uncounted++
			continue
		}
		out[i].Frames += *e.AudioFrames
		out[i].Filled += *e.AudioFramesFilled
	}
	return slices.DeleteFunc(out, func(a AudioSummary) bool { return a.Frames+a.Filled == 0 })
}

// maxManifestSize bounds what is read as a manifest: a day-long province-wide
// session is a few MB.
const maxManifestSize = 256 << 20

// Verify checks a session in the archive against its signed manifest:
// the Ed25519 signature with pub, every chain record's hash and link, and the
// SHA-256 and size of every archived segment recomputed from the archive's bytes.
func Verify(ctx context.Context, src Source, sessionID string, pub ed25519.PublicKey) Report {
	rep := Report{Session: sessionID}
	couldNot := func(format string, a ...any) Report {
		rep.Result = CouldNotCheck
		rep.Reason = fmt.Sprintf(format, a...)
		return rep
	}
	if len(pub) != ed25519.PublicKeySize {
		return couldNot("no valid Ed25519 public key given")
	}
	rep.Key = Fingerprint(pub)
	mkey, err := archive.ManifestKey(sessionID)
	if err != nil {
		return couldNot("invalid session id: %v", err)
	}
	skey, _ := archive.SignatureKey(sessionID)
	rep.ManifestKey = mkey

	var problems []Problem
	add := func(p Problem) { problems = append(problems, p) }
	data, minfo, err := readAll(ctx, src, mkey, "", maxManifestSize)
	if errors.Is(err, archive.ErrNotFound) {
		prefix, _ := archive.SessionPrefix(sessionID)
		if objs, lerr := src.List(ctx, prefix); lerr == nil {
			segs := 0
			for _, o := range objs {
				if strings.HasPrefix(o.Key, prefix+"segments/") {
					segs++
				}
			}
			if segs > 0 {
				return couldNot("no manifest for session %q, but the archive holds %d segment(s) of it: the manifest was deleted, or the session is still being uploaded", sessionID, segs)
			}
		}
		return couldNot("no manifest for session %q in the archive (unknown session, or not finished uploading)", sessionID)
	}
	if errors.Is(err, errTooLarge) {
		add(Problem{Index: manifestLevel, Key: mkey, Code: ProblemManifestInvalid, Detail: err.Error()})
		return finish(rep, problems, false)
	}
	if err != nil {
		return couldNot("archive unreachable: %v", err)
	}
	rep.ManifestVersion = minfo.VersionID

	sig, _, err := readAll(ctx, src, skey, "", 1<<10)
	switch {
	case errors.Is(err, archive.ErrNotFound):
		add(Problem{Index: manifestLevel, Key: skey, Code: ProblemSignatureMissing, Detail: "manifest.sig is missing"})
	case err != nil && !errors.Is(err, errTooLarge):
		return couldNot("archive unreachable: %v", err)
	case err != nil || !ed25519.Verify(pub, data, sig):
		add(Problem{Index: manifestLevel, Key: mkey, VersionID: minfo.VersionID, Code: ProblemBadSignature,
			Detail: "the signature does not match the manifest bytes under the given key"})
	default:
		rep.SignatureValid = true
	}

	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil || m.Format != ManifestFormat {
		detail := fmt.Sprintf("format %q", m.Format)
		if err != nil {
			detail = err.Error()
		}
		add(Problem{Index: manifestLevel, Key: mkey, Code: ProblemManifestInvalid, Detail: detail})
		return finish(rep, problems, false)
	}
	rep.NodeID, rep.Created, rep.Signer = m.NodeID, m.Created, m.Signer
	if len(problems) > 0 && problems[0].Code == ProblemBadSignature && m.Signer != rep.Key {
		problems[0].Detail += fmt.Sprintf(" (manifest names signer %s, checked with %s)", m.Signer, rep.Key)
	}
	if m.Session.ID != sessionID {
		add(Problem{Index: manifestLevel, Key: mkey, Code: ProblemSessionMismatch,
			Detail: fmt.Sprintf("manifest is for session %q", m.Session.ID)})
	}

	recs, entries, chainProblems := orderChain(&m)
	problems = append(problems, chainProblems...)
	rep.Records, rep.Gaps, rep.Audio = len(recs), m.Gaps, summarizeAudio(m.Segments)
	listed := map[string]bool{mkey: true, skey: true}
	unreachable := false
	prev := ""
	for i, r := range recs {
		idx := int64(r.Index)
		e := entries[i]
		r.Session = sessionID
		if h, err := r.ComputeHash(); err != nil || h != r.Hash {
			add(Problem{Index: idx, Key: e.Key, Code: ProblemRecordHash,
				Detail: fmt.Sprintf("record hashes to %s, manifest lists %s", h, r.Hash)})
		}
		if r.Prev != prev {
			add(Problem{Index: idx, Key: e.Key, Code: ProblemChainLink,
				Detail: fmt.Sprintf("prev is %s, the record before hashes to %s", r.Prev, prev)})
		}
		prev = r.Hash
		if r.Kind != KindSegment {
			continue
		}
		rep.Segments++
		if e.State == StateLost {
			rep.Lost = append(rep.Lost, *e)
			continue
		}
		listed[e.Key] = true
		if p, ok := checkSegment(ctx, src, r, e); ok {
			rep.SegmentsOK++
			rep.Bytes += r.Size
		} else if p != nil {
			add(*p)
		} else {
			unreachable = true
		}
	}
	if m.Chain.Head != prev || m.Chain.Length != len(recs) {
		add(Problem{Index: int64(len(recs)), Key: mkey, Code: ProblemChainHead,
			Detail: fmt.Sprintf("chain ends at %s after %d records, manifest states %s after %d", prev, len(recs), m.Chain.Head, m.Chain.Length)})
	}
	if prefix, err := archive.SessionPrefix(sessionID); err == nil {
		if objs, err := src.List(ctx, prefix); err == nil {
			for _, o := range objs {
				if !listed[o.Key] {
					rep.Unlisted = append(rep.Unlisted, o.Key)
				}
			}
		}
	}
	return finish(rep, problems, unreachable)
}

// checkSegment reads one segment back. ok: intact; a problem: altered; nil
// and not ok: the archive could not be read.
func checkSegment(ctx context.Context, src Source, r Record, e *SegmentEntry) (*Problem, bool) {
	idx := int64(r.Index)
	if e.State != StateArchived {
		return &Problem{Index: idx, Key: e.Key, Code: ProblemManifestInvalid, Detail: fmt.Sprintf("segment state %q", e.State)}, false
	}
	if want, err := r.ObjectKey(); err != nil || want != e.Key {
		return &Problem{Index: idx, Key: e.Key, Code: ProblemKeyMismatch,
			Detail: fmt.Sprintf("record belongs at %q", want)}, false
	}
	rc, _, err := src.Get(ctx, e.Key, e.VersionID)
	if errors.Is(err, archive.ErrNotFound) {
		return &Problem{Index: idx, Key: e.Key, VersionID: e.VersionID, Code: ProblemMissing,
			Detail: "the archive does not have this object version"}, false
	}
	if err != nil {
		return nil, false
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return nil, false
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != r.SHA256 {
		return &Problem{Index: idx, Key: e.Key, VersionID: e.VersionID, Code: ProblemContent,
			Detail: fmt.Sprintf("content hashes to %s (%d bytes), manifest lists %s (%d bytes)", got, n, r.SHA256, r.Size)}, false
	}
	if n != r.Size {
		return &Problem{Index: idx, Key: e.Key, VersionID: e.VersionID, Code: ProblemSize,
			Detail: fmt.Sprintf("%d bytes, manifest lists %d", n, r.Size)}, false
	}
	return nil, true
}

// orderChain merges segments and gaps back into one chain by index. It
// returns, per record, the segment entry (nil-safe placeholder for gaps).
func orderChain(m *Manifest) ([]Record, []*SegmentEntry, []Problem) {
	type item struct {
		r Record
		e *SegmentEntry
	}
	var items []item
	for i := range m.Segments {
		items = append(items, item{m.Segments[i].record(m.Session.ID), &m.Segments[i]})
	}
	for _, g := range m.Gaps {
		items = append(items, item{g.record(m.Session.ID), &SegmentEntry{}})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].r.Index < items[j].r.Index })
	var problems []Problem
	recs := make([]Record, len(items))
	entries := make([]*SegmentEntry, len(items))
	for i, it := range items {
		if it.r.Index != uint64(i) {
			problems = append(problems, Problem{Index: int64(i), Key: it.e.Key, Code: ProblemChainIndex,
				Detail: fmt.Sprintf("record at position %d has index %d (a record is missing or repeated)", i, it.r.Index)})
		}
		recs[i], entries[i] = it.r, it.e
	}
	return recs, entries, problems
}

func finish(rep Report, problems []Problem, unreachable bool) Report {
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Index < problems[j].Index })
	rep.Problems = problems
	switch {
	case len(problems) > 0:
		rep.Result = Altered
		rep.FirstBad = &rep.Problems[0]
	case unreachable:
		rep.Result = CouldNotCheck
		rep.Reason = "some segments could not be read from the archive"
	default:
		rep.Result = Intact
	}
	return rep
}

func readAll(ctx context.Context, src Source, key, version string, limit int64) ([]byte, archive.ObjectInfo, error) {
	rc, info, err := src.Get(ctx, key, version)
	if err != nil {
		return nil, archive.ObjectInfo{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, archive.ObjectInfo{}, err
	}
	if int64(len(b)) > limit {
		return nil, archive.ObjectInfo{}, fmt.Errorf("%w: %s is larger than %d bytes", errTooLarge, key, limit)
	}
	return b, info, nil
}
