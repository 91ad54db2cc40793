package rooms

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Limits on free-text fields, so a malformed API body cannot store megabytes.
const (
	MaxTitleLen      = 200
	MaxCaseNumberLen = 64
	MaxUnitNameLen   = 100
	MaxUnitCodeLen   = 64
	MaxInvitedUnits  = 500
)

// Unit is a county office (县级单位) invited to a session.
type Unit struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// Session is one scheduled supervision session (督查会话).
type Session struct {
	ID             string    `json:"id"`
	Title          string    `json:"title"`
	CaseNumber     string    `json:"caseNumber"` // 信访件编号
	Supervisor     string    `json:"supervisor"` // account ID
	ScheduledStart time.Time `json:"scheduledStart"`
	ScheduledEnd   time.Time `json:"scheduledEnd"`
	InvitedUnits   []Unit    `json:"invitedUnits"`
	Status         Status    `json:"status"`
	Locked         bool      `json:"locked"`
	Recording      bool      `json:"recording"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
	StartedAt      time.Time `json:"startedAt,omitzero"`
	EndedAt        time.Time `json:"endedAt,omitzero"`
	// Version increases by one on every stored change; the API can use it as
	// an ETag.
	Version int64 `json:"version"`
}

// NewSession returns a scheduled session with recording on, which is the
// default the bureau wants (sessions are evidence unless the supervisor
// turns recording off).
func NewSession(title, caseNumber, supervisor string, start, end time.Time, units []Unit, now time.Time) Session {
	return Session{
		ID:             NewID(),
		Title:          title,
		CaseNumber:     caseNumber,
		Supervisor:     supervisor,
		ScheduledStart: start,
		ScheduledEnd:   end,
		InvitedUnits:   slices.Clone(units),
		Status:         StatusScheduled,
		Recording:      true,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
}

// Clone returns a copy that shares no slices with s.
func (s Session) Clone() Session {
	s.InvitedUnits = slices.Clone(s.InvitedUnits)
	return s
}

// Unit returns the invited unit with the given code.
func (s Session) Unit(code string) (Unit, bool) {
	for _, u := range s.InvitedUnits {
		if u.Code == code {
			return u, true
		}
	}
	return Unit{}, false
}

// Validate checks the fields a store must never accept wrong.
func (s Session) Validate() error {
	switch {
	case s.ID == "":
		return fmt.Errorf("%w: session id is empty", ErrInvalid)
	case s.Title == "" || utf8.RuneCountInString(s.Title) > MaxTitleLen:
		return fmt.Errorf("%w: title must have 1 to %d characters", ErrInvalid, MaxTitleLen)
	case utf8.RuneCountInString(s.CaseNumber) > MaxCaseNumberLen:
		return fmt.Errorf("%w: case number longer than %d characters", ErrInvalid, MaxCaseNumberLen)
	case s.Supervisor == "":
		return fmt.Errorf("%w: supervisor is empty", ErrInvalid)
	case s.ScheduledStart.IsZero() || s.ScheduledEnd.IsZero():
		return fmt.Errorf("%w: scheduled start and end are required", ErrInvalid)
	case !s.ScheduledEnd.After(s.ScheduledStart):
		return fmt.Errorf("%w: scheduled end must be after start", ErrInvalid)
	case len(s.InvitedUnits) > MaxInvitedUnits:
		return fmt.Errorf("%w: more than %d invited units", ErrInvalid, MaxInvitedUnits)
	}
	if !s.Status.Valid() {
		return fmt.Errorf("%w: %q", ErrUnknownStatus, s.Status)
	}
	seen := make(map[string]bool, len(s.InvitedUnits))
	for _, u := range s.InvitedUnits {
		if u.Code == "" || len(u.Code) > MaxUnitCodeLen {
			return fmt.Errorf("%w: unit code must have 1 to %d bytes", ErrInvalid, MaxUnitCodeLen)
		}
		if u.Name == "" || utf8.RuneCountInString(u.Name) > MaxUnitNameLen {
			return fmt.Errorf("%w: unit %s: name must have 1 to %d characters", ErrInvalid, u.Code, MaxUnitNameLen)
		}
		if seen[u.Code] {
			return fmt.Errorf("%w: unit %s invited twice", ErrInvalid, u.Code)
		}
		seen[u.Code] = true
	}
	return nil
}

// SessionFilter selects sessions in Store.ListSessions. Zero fields do not
// filter.
type SessionFilter struct {
	// Status keeps sessions whose status is any of these.
	Status []Status
	// Supervisor keeps sessions of this account ID.
	Supervisor string
	// From and To keep sessions whose ScheduledStart is in [From, To).
	From, To time.Time
	// Limit caps the number of results (after filtering); 0 means no cap.
	Limit int
}

// Match reports whether s passes the filter (ignoring Limit). Stores use it
// so both implementations agree on the edges.
func (f SessionFilter) Match(s Session) bool {
	if len(f.Status) > 0 && !slices.Contains(f.Status, s.Status) {
		return false
	}
	if f.Supervisor != "" && s.Supervisor != f.Supervisor {
		return false
	}
	if !f.From.IsZero() && s.ScheduledStart.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && !s.ScheduledStart.Before(f.To) {
		return false
	}
	return true
}

// SortSessions orders sessions by scheduled start, then ID, the order
// ListSessions returns.
func SortSessions(ss []Session) {
	slices.SortFunc(ss, func(a, b Session) int {
		if c := a.ScheduledStart.Compare(b.ScheduledStart); c != 0 {
			return c
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
}
