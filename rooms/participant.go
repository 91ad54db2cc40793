package rooms

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxNameLen caps display names of participants and accounts.
const MaxNameLen = 100

// Role is what a participant or an account may do (see the roles table in
// DESIGN.md).
type Role string

// Roles. Participants are supervisor, county or observer; accounts are
// supervisor, auditor or admin.
const (
	RoleSupervisor Role = "supervisor"
	RoleCounty     Role = "county"
	RoleObserver   Role = "observer"
	RoleAuditor    Role = "auditor"
	RoleAdmin      Role = "admin"
)

// ParticipantRole reports whether r may take part in a live session.
func (r Role) ParticipantRole() bool {
	return r == RoleSupervisor || r == RoleCounty || r == RoleObserver
}

// AccountRole reports whether r is a role for a console account.
func (r Role) AccountRole() bool {
	return r == RoleSupervisor || r == RoleAuditor || r == RoleAdmin
}

// Participant is one connection's presence in a session. Its liveness is kept
// by heartbeats: a participant whose node stops sending them (crashed) drops
// out of Store.ListLive after the heartbeat TTL.
type Participant struct {
	ID        string `json:"id"`
	SessionID string `json:"sessionId"`
	// Identity is who joined: the account ID of a supervisor or observer, the
	// invitation ID of a county unit.
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Role     Role   `json:"role"`
	UnitCode string `json:"unitCode,omitempty"`
	// Node is the ducha node that holds the participant's connection.
	Node       string `json:"node,omitempty"`
	AudioMuted bool   `json:"audioMuted"`
	VideoMuted bool   `json:"videoMuted"`
	// ModMuted is set when the supervisor muted the participant; only the
	// supervisor can clear it.
	ModMuted bool      `json:"modMuted"`
	InLobby  bool      `json:"inLobby"`
	JoinedAt time.Time `json:"joinedAt"`
	LeftAt   time.Time `json:"leftAt,omitzero"`
	LastSeen time.Time `json:"lastSeen"`
	Version  int64     `json:"version"`
}

// Validate checks the fields a store must never accept wrong.
func (p Participant) Validate() error {
	switch {
	case p.ID == "" || p.SessionID == "":
		return fmt.Errorf("%w: participant and session id are required", ErrInvalid)
	case !p.Role.ParticipantRole():
		return fmt.Errorf("%w: participant role %q", ErrInvalid, p.Role)
	case utf8.RuneCountInString(p.Name) > MaxNameLen:
		return fmt.Errorf("%w: name longer than %d characters", ErrInvalid, MaxNameLen)
	case p.Role == RoleCounty && p.UnitCode == "":
		return fmt.Errorf("%w: county participant without unit code", ErrInvalid)
	}
	return nil
}
