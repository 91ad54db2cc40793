package replay

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/rooms"
)

// Entry is one archived recording as the index keeps it: what a search
// filters on and what a result list shows.
type Entry struct {
	// ID is the recording id (the archive's session id): the session id of a
	// scheduled session, "<room>-<UTC time>" for an ad-hoc room.
	ID string `json:"id"`
	// SessionID is set when the recording belongs to a scheduled session.
	SessionID  string `json:"sessionId,omitempty"`
	Title      string `json:"title"`
	CaseNumber string `json:"caseNumber,omitempty"`
	// Supervisor is the account id of the supervisor who held the session.
	Supervisor     string `json:"supervisor,omitempty"`
	SupervisorName string `json:"supervisorName,omitempty"`
	// Units are the county offices: those invited (when the session store
	// still knows the session) and those whose participants attended.
	Units        []Unit     `json:"units"`
	Participants []Attendee `json:"participants"`
	// Start and End are the session's (actual start and end when known),
	// else the recorded span.
	Start           time.Time `json:"start"`
	End             time.Time `json:"end"`
	DurationSeconds float64   `json:"durationSeconds"`
	// RecordedStart and RecordedEnd bound the recorded media: the replay
	// timeline.
	RecordedStart   time.Time `json:"recordedStart,omitzero"`
	RecordedEnd     time.Time `json:"recordedEnd,omitzero"`
	Segments        int       `json:"segments"`
	LostSegments    int       `json:"lostSegments,omitempty"`
	Gaps            int       `json:"gaps"`
	Bytes           int64     `json:"bytes"`
	ManifestKey     string    `json:"manifestKey"`
	ManifestVersion string    `json:"manifestVersion,omitempty"`
	NodeID          string    `json:"nodeId,omitempty"`
	Signer          string    `json:"signer,omitempty"`
	Sealed          time.Time `json:"sealed"`
	// Verification is the last check of the recording, nil until one ran.
	Verification *Check    `json:"verification,omitempty"`
	Indexed      time.Time `json:"indexed"`
}

// Unit is a county office.
type Unit struct {
	Code string `json:"code"`
	Name string `json:"name,omitempty"`
}

// Attendee is one participant of a recording, with the attendance the
// manifest records.
type Attendee struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Role   string    `json:"role"`
	Unit   string    `json:"unit,omitempty"`
	Joined time.Time `json:"joined,omitzero"`
	Left   time.Time `json:"left,omitzero"`
}

// Check is the outcome of one verification, as the index remembers it.
type Check struct {
	Result          string            `json:"result"` // intact, altered, could_not_check
	At              time.Time         `json:"at"`
	SignatureValid  bool              `json:"signatureValid"`
	Segments        int               `json:"segments"`
	SegmentsOK      int               `json:"segmentsOk"`
	ManifestVersion string            `json:"manifestVersion,omitempty"`
	Reason          string            `json:"reason,omitempty"`
	FirstBad        *evidence.Problem `json:"firstBad,omitempty"`
}

func checkOf(rep evidence.Report, at time.Time) *Check {
	c := &Check{Result: rep.Result.String(), At: at.UTC(), SignatureValid: rep.SignatureValid,
		Segments: rep.Segments, SegmentsOK: rep.SegmentsOK, ManifestVersion: rep.ManifestVersion, Reason: rep.Reason}
	if rep.FirstBad != nil {
		p := *rep.FirstBad
		c.FirstBad = &p
	}
	return c
}

// Directory is the optional session store lookup that enriches entries
// with what a manifest does not carry (unit names, the supervisor's display
// name). rooms.Store implements it.
type Directory interface {
	GetSession(ctx context.Context, id string) (rooms.Session, error)
	GetAccountByID(ctx context.Context, id string) (rooms.Account, error)
}

// buildEntry makes the index entry of a manifest. Only the manifest is
// required: dir may be nil, and lookups that fail leave fields empty.
func buildEntry(ctx context.Context, m *evidence.Manifest, key, version string, dir Directory, now time.Time) Entry {
	e := Entry{
		ID: m.Session.ID, Title: m.Session.Title, CaseNumber: m.Session.CaseNumber, Supervisor: m.Session.Supervisor,
		ManifestKey: key, ManifestVersion: version, NodeID: m.NodeID, Signer: m.Signer, Sealed: m.Created.UTC(),
		Gaps: len(m.Gaps), Units: []Unit{}, Participants: []Attendee{}, Indexed: now.UTC(),
	}
	for _, s := range m.Segments {
		if s.State == evidence.StateLost {
			e.LostSegments++
			continue
		}
		e.Segments++
		e.Bytes += s.Size
	}
	e.RecordedStart, e.RecordedEnd = mediaSpan(m)
	e.Start, e.End = m.Session.Start.UTC(), m.Session.End.UTC()
	if e.Start.IsZero() {
		e.Start = e.RecordedStart
	}
	if e.End.IsZero() || e.End.Before(e.Start) {
		e.End = e.RecordedEnd
	}
	if e.End.After(e.Start) {
		e.DurationSeconds = e.End.Sub(e.Start).Seconds()
	}
	units := map[string]string{}
	var order []string
	addUnit := func(code, name string) {
		if code == "" {
			return
		}
		if _, ok := units[code]; !ok {
			order = append(order, code)
		}
		if units[code] == "" {
			units[code] = name
		}
	}
	if dir != nil {
		if sess, err := dir.GetSession(ctx, m.Session.ID); err == nil {
			e.SessionID = sess.ID
			if e.Title == "" {
				e.Title = sess.Title
			}
			if e.CaseNumber == "" {
				e.CaseNumber = sess.CaseNumber
			}
			if e.Supervisor == "" {
				e.Supervisor = sess.Supervisor
			}
			for _, u := range sess.InvitedUnits {
				addUnit(u.Code, u.Name)
			}
		}
		if e.Supervisor != "" {
			if a, err := dir.GetAccountByID(ctx, e.Supervisor); err == nil {
				e.SupervisorName = a.DisplayName
			}
		}
	}
	for _, p := range m.Participants {
		e.Participants = append(e.Participants, Attendee{ID: p.ID, Name: p.Name, Role: p.Role, Unit: p.Organization,
			Joined: p.Joined.UTC(), Left: p.Left.UTC()})
		if p.Role == string(rooms.RoleCounty) {
			addUnit(p.Organization, p.Name)
		} else {
			addUnit(p.Organization, "")
		}
	}
	for _, code := range order {
		e.Units = append(e.Units, Unit{Code: code, Name: units[code]})
	}
	if e.Title == "" {
		e.Title = e.ID
	}
	return e
}

// mediaSpan is the recorded span: first segment or gap start to last end.
func mediaSpan(m *evidence.Manifest) (start, end time.Time) {
	widen := func(s, e time.Time) {
		if start.IsZero() || s.Before(start) {
			start = s
		}
		if e.After(end) {
			end = e
		}
	}
	for _, s := range m.Segments {
		widen(s.Start, s.End)
	}
	for _, g := range m.Gaps {
		widen(g.Start, g.End)
	}
	return start.UTC(), end.UTC()
}

// Query selects entries in Search. Zero fields do not filter; text fields
// match case-insensitively.
type Query struct {
	// From and To keep recordings whose Start is in [From, To).
	From, To time.Time
	// Case is part of the case number.
	Case string
	// Unit is a unit code (exact) or part of a unit's name.
	Unit string
	// Supervisor is a supervisor's account id (exact) or part of their name.
	Supervisor string
	// Text is part of the title, the case number or a participant's name.
	Text string
	// Owner, when set, keeps only recordings of sessions this account held:
	// how supervisors are confined to their own.
	Owner string
	// Limit caps the results (default 100, at most 1000).
	Limit int
}

// Limits of Query.Limit.
const (
	DefaultSearchLimit = 100
	MaxSearchLimit     = 1000
)

func fold(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func contains(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }

// Match reports whether e passes the query (ignoring Limit).
func (q Query) Match(e Entry) bool {
	if q.Owner != "" && e.Supervisor != q.Owner {
		return false
	}
	if !q.From.IsZero() && e.Start.Before(q.From) {
		return false
	}
	if !q.To.IsZero() && !e.Start.Before(q.To) {
		return false
	}
	if c := fold(q.Case); c != "" && !contains(e.CaseNumber, c) {
		return false
	}
	if u := fold(q.Unit); u != "" && !slices.ContainsFunc(e.Units, func(x Unit) bool {
		return strings.ToLower(x.Code) == u || (x.Name != "" && contains(x.Name, u))
	}) {
		return false
	}
	if s := fold(q.Supervisor); s != "" && strings.ToLower(e.Supervisor) != s && (e.SupervisorName == "" || !contains(e.SupervisorName, s)) {
		return false
	}
	if t := fold(q.Text); t != "" && !contains(e.Title, t) && !contains(e.CaseNumber, t) && !contains(e.ID, t) &&
		!slices.ContainsFunc(e.Participants, func(p Attendee) bool { return contains(p.Name, t) }) {
		return false
	}
	return true
}

// sortEntries orders the newest recording first, then by id.
func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
