package replay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
)

// Verification is the answer of a verification run now: the same check as
// `ducha verify`, plus what the page shows beside it.
type Verification struct {
	Recording      string `json:"recording"`
	Result         string `json:"result"` // intact, altered, could_not_check
	SignatureValid bool   `json:"signatureValid"`
	// PublicKey is the fingerprint of the key the signature was checked with.
	PublicKey string `json:"publicKey"`
	// FirstBad names the first bad link with the participant it belongs to.
	FirstBad  *BadLink        `json:"firstBad,omitempty"`
	CheckedAt time.Time       `json:"checkedAt"`
	Report    evidence.Report `json:"report"`
	// Text is the report for a person, in Chinese and in English.
	Text   string  `json:"text"`
	TextEn string  `json:"textEn"`
	Store  Storage `json:"storage"`
}

// BadLink is evidence.Problem with the segment it names, when it names one.
type BadLink struct {
	evidence.Problem
	Participant     string `json:"participant,omitempty"`
	ParticipantName string `json:"participantName,omitempty"`
	Source          string `json:"source,omitempty"`
	Seq             *int64 `json:"seq,omitempty"`
}

// Storage is what the archive says about a recording's objects: the lock
// that keeps them (retention) and legal holds.
type Storage struct {
	ManifestKey       string    `json:"manifestKey"`
	ManifestVersion   string    `json:"manifestVersion,omitempty"`
	RetentionMode     string    `json:"retentionMode,omitempty"`
	RetainUntil       time.Time `json:"retainUntil,omitzero"`
	LegalHold         bool      `json:"legalHold"`
	Objects           int       `json:"objects"`
	Retained          int       `json:"retained"`
	Held              int       `json:"held"`
	Missing           int       `json:"missing"`
	EarliestRetainEnd time.Time `json:"earliestRetainEnd,omitzero"`
	// Errors lists objects the archive could not describe (first few).
	Errors []string `json:"errors,omitempty"`
}

// Verify checks a recording in the archive now (signature, chain, every
// segment's hash), remembers the result in the index and returns it.
func (s *Service) Verify(ctx context.Context, id string) (*Verification, error) {
	if _, err := archive.ManifestKey(id); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	rep := evidence.Verify(ctx, s.cfg.Archive, id, s.cfg.PublicKey)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now().UTC()
	v := &Verification{Recording: id, Result: rep.Result.String(), SignatureValid: rep.SignatureValid,
		PublicKey: evidence.Fingerprint(s.cfg.PublicKey), CheckedAt: now, Report: rep,
		Text: rep.Text(evidence.LangZH), TextEn: rep.Text(evidence.LangEN)}
	// The manifest as read now, not a cached one: a replaced manifest must
	// show up here.
	m, _, _, merr := s.readManifest(ctx, id)
	s.mu.RLock()
	e, known := s.entries[id]
	s.mu.RUnlock()
	// An unknown id with no manifest is simply not a recording; a known one
	// whose manifest is gone is reported, since that is what tampering
	// looks like.
	if errors.Is(merr, ErrNotFound) && !known {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if rep.FirstBad != nil {
		v.FirstBad = &BadLink{Problem: *rep.FirstBad}
		if m != nil {
			describeLink(v.FirstBad, m)
		}
	}
	if m != nil {
		v.Store = s.storage(ctx, m)
	}
	if !known && merr == nil {
		e, _ = s.index(ctx, id)
		known = e.ID != ""
	}
	if known {
		e.Verification = checkOf(rep, now)
		if err := s.store(ctx, e); err != nil {
			s.log.Warn("replay: verification not remembered", "recording", id, "err", err)
		}
	}
	return v, nil
}

// describeLink fills in whose segment a problem is about.
func describeLink(b *BadLink, m *evidence.Manifest) {
	if b.Index < 0 {
		return
	}
	idx := uint64(b.Index)
	for _, seg := range m.Segments {
		if seg.Index == idx || (b.Key != "" && seg.Key == b.Key) {
			seq := int64(seg.Seq)
			b.Participant, b.Source, b.Seq = seg.Participant, seg.Source, &seq
			break
		}
	}
	if b.Participant == "" {
		for _, g := range m.Gaps {
			if g.Index == idx {
				b.Participant, b.Source = g.Participant, g.Source
			}
		}
	}
	for _, p := range m.Participants {
		if p.ID == b.Participant {
			b.ParticipantName = p.Name
		}
	}
}

// statParallel bounds concurrent Stat calls: an hour-long call has a few
// hundred segments, and an S3 server need not see them all at once.
const statParallel = 8

// storage asks the archive about every object of the recording.
func (s *Service) storage(ctx context.Context, m *evidence.Manifest) Storage {
	mkey, _ := archive.ManifestKey(m.Session.ID)
	skey, _ := archive.SignatureKey(m.Session.ID)
	type obj struct{ key, version string }
	objs := []obj{{mkey, ""}, {skey, ""}}
	for _, seg := range m.Segments {
		if seg.State == evidence.StateArchived && seg.Key != "" {
			objs = append(objs, obj{seg.Key, seg.VersionID})
		}
	}
	infos := make([]archive.ObjectInfo, len(objs))
	errs := make([]error, len(objs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, statParallel)
	for i, o := range objs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			infos[i], errs[i] = s.cfg.Archive.Stat(ctx, o.key, o.version)
		}()
	}
	wg.Wait()
	now := s.cfg.Clock.Now()
	st := Storage{ManifestKey: mkey}
	for i, info := range infos {
		if err := errs[i]; err != nil {
			if errors.Is(err, archive.ErrNotFound) {
				st.Missing++
			} else if len(st.Errors) < 5 {
				st.Errors = append(st.Errors, fmt.Sprintf("%s: %v", objs[i].key, err))
			}
			continue
		}
		st.Objects++
		if info.Retention.ActiveAt(now) {
			st.Retained++
			if st.EarliestRetainEnd.IsZero() || info.Retention.Until.Before(st.EarliestRetainEnd) {
				st.EarliestRetainEnd = info.Retention.Until.UTC()
			}
		}
		if info.LegalHold {
			st.Held++
		}
		if i == 0 {
			st.ManifestVersion = info.VersionID
			st.RetentionMode = string(info.Retention.Mode)
			if !info.Retention.Until.IsZero() {
				st.RetainUntil = info.Retention.Until.UTC()
			}
			st.LegalHold = info.LegalHold
		}
	}
	return st
}
