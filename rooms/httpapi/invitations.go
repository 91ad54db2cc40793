package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/signaling/token"
)

// Invitation states in API answers, from rooms.CheckInvitation.
const (
	InvitationValid       = "valid"
	InvitationNotYetValid = "not_yet_valid" // the link works from validFrom
	InvitationExpired     = "expired"
	InvitationRevoked     = "revoked"
	InvitationUnitRemoved = "unit_removed"
	InvitationEnded       = "session_ended"
)

type invitationView struct {
	ID         string    `json:"id"`
	UnitCode   string    `json:"unitCode"`
	UnitName   string    `json:"unitName"`
	ValidFrom  time.Time `json:"validFrom"`
	ValidUntil time.Time `json:"validUntil"`
	CreatedAt  time.Time `json:"createdAt"`
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
	Status     string    `json:"status"`
	// URL is the join link, only while the link can work and only for
	// those who may hand it out (the session's supervisor, admins).
	URL string `json:"url,omitempty"`
	// New marks invitations created by this request.
	New bool `json:"new,omitempty"`
}

func invitationStatus(inv rooms.Invitation, sess rooms.Session, now time.Time) string {
	err := rooms.CheckInvitation(inv, sess, now)
	switch {
	case err == nil:
		return InvitationValid
	case errors.Is(err, rooms.ErrNotYetValid):
		return InvitationNotYetValid
	case errors.Is(err, rooms.ErrRevoked):
		return InvitationRevoked
	case errors.Is(err, rooms.ErrSessionEnded):
		return InvitationEnded
	case errors.Is(err, rooms.ErrUnitNotInvited):
		return InvitationUnitRemoved
	}
	return InvitationExpired
}

// invitationURL signs the county join link of inv. The token's jti is the
// invitation ID, and it outlives the scheduled end by LinkOverrun. It has
// no not-before: the invitation's window is checked against the session on
// every join (an early lobby lets the unit in before the window opens).
func (s *Server) invitationURL(sess rooms.Session, inv rooms.Invitation) (string, error) {
	unit, _ := sess.Unit(inv.UnitCode)
	tok, err := s.cfg.Tokens.Issue(token.Claims{
		Room:       sess.ID,
		Identity:   inv.UnitCode,
		Name:       unit.Name,
		Role:       token.RoleCounty,
		ExpiresAt:  inv.ValidUntil.Add(s.cfg.LinkOverrun),
		ID:         inv.ID,
		Invitation: inv.ID,
		Unit:       inv.UnitCode,
	})
	if err != nil {
		return "", err
	}
	return token.JoinURL(s.cfg.PublicURL, sess.ID, tok), nil
}

func (s *Server) viewInvitation(sess rooms.Session, inv rooms.Invitation, now time.Time, withURL bool) invitationView {
	unit, _ := sess.Unit(inv.UnitCode)
	v := invitationView{
		ID: inv.ID, UnitCode: inv.UnitCode, UnitName: unit.Name,
		ValidFrom: inv.ValidFrom, ValidUntil: inv.ValidUntil, CreatedAt: inv.CreatedAt, RevokedAt: inv.RevokedAt,
		Status: invitationStatus(inv, sess, now),
	}
	if withURL && (v.Status == InvitationValid || v.Status == InvitationNotYetValid) {
		if u, err := s.invitationURL(sess, inv); err == nil {
			v.URL = u
		} else {
			// Only a link past its overrun lands here.
			v.Status = InvitationExpired
		}
	}
	return v
}

// current reports whether inv is an unrevoked invitation of an invited unit
// whose window matches the session's schedule.
func (s *Server) current(inv rooms.Invitation, sess rooms.Session) bool {
	_, invited := sess.Unit(inv.UnitCode)
	return invited && !inv.Revoked() && inv.ValidUntil.Equal(sess.ScheduledEnd) &&
		inv.ValidFrom.Equal(sess.ScheduledStart.Add(-s.cfg.EarlyWindow))
}

func (s *Server) issueInvitations(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, true)
	if err != nil {
		return err
	}
	if sess.Status.Final() {
		return errSessionFinal()
	}
	invs, err := s.store.ListInvitations(r.Context(), sess.ID)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	have := make(map[string]rooms.Invitation)
	for _, inv := range invs {
		if s.current(inv, sess) {
			have[inv.UnitCode] = inv
		}
	}
	out := make([]invitationView, 0, len(sess.InvitedUnits))
	created := 0
	for _, u := range sess.InvitedUnits {
		inv, ok := have[u.Code]
		if !ok {
			if inv, err = s.createInvitation(r.Context(), sess, u.Code, c.acct.ID, now); err != nil {
				return err
			}
			created++
		}
		v := s.viewInvitation(sess, inv, now, true)
		v.New = !ok
		out = append(out, v)
	}
	status := http.StatusOK
	if created > 0 {
		status = http.StatusCreated
		s.log.Info("invitations issued", "session", sess.ID, "by", c.acct.Username, "count", created)
	}
	writeJSON(w, status, map[string]any{"invitations": out})
	return nil
}

func (s *Server) createInvitation(ctx context.Context, sess rooms.Session, unit, actor string, now time.Time) (rooms.Invitation, error) {
	inv, err := rooms.NewInvitation(sess, unit, s.cfg.EarlyWindow, now)
	if err != nil {
		return rooms.Invitation{}, err
	}
	if inv, err = s.store.CreateInvitation(ctx, inv); err != nil {
		return rooms.Invitation{}, err
	}
	_, err = s.store.AppendEvent(ctx, rooms.Event{
		SessionID: sess.ID, Time: now, Actor: actor, Type: rooms.EventInvite, Subject: inv.ID,
		Data: map[string]string{rooms.DataUnit: unit},
	})
	return inv, err
}

func (s *Server) listInvitations(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, false)
	if err != nil {
		return err
	}
	invs, err := s.store.ListInvitations(r.Context(), sess.ID)
	if err != nil {
		return err
	}
	// Auditors see who was invited, not the links: they never hand them out.
	withURL := canAccess(sess, c, true)
	now := s.clock.Now()
	out := make([]invitationView, 0, len(invs))
	for _, inv := range invs {
		out = append(out, s.viewInvitation(sess, inv, now, withURL))
	}
	writeJSON(w, http.StatusOK, map[string]any{"invitations": out})
	return nil
}

// loadInvitation returns an invitation of sess, or not_found.
func (s *Server) loadInvitation(ctx context.Context, sess rooms.Session, id string) (rooms.Invitation, error) {
	inv, err := s.store.GetInvitation(ctx, id)
	if errors.Is(err, rooms.ErrNotFound) || (err == nil && inv.SessionID != sess.ID) {
		return rooms.Invitation{}, errNotFound("邀请不存在", "no such invitation in this session")
	}
	return inv, err
}

func (s *Server) revokeInvitation(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, true)
	if err != nil {
		return err
	}
	inv, err := s.loadInvitation(r.Context(), sess, r.PathValue("inv"))
	if err != nil {
		return err
	}
	now := s.clock.Now()
	if !inv.Revoked() {
		if inv, err = s.store.RevokeInvitation(r.Context(), inv.ID, now); err != nil {
			return err
		}
		if err := s.logRevoke(r.Context(), sess.ID, c.acct.ID, inv.ID, inv.UnitCode, "revoked", now); err != nil {
			return err
		}
		s.log.Info("invitation revoked", "session", sess.ID, "invitation", inv.ID, "unit", inv.UnitCode, "by", c.acct.Username)
	}
	writeJSON(w, http.StatusOK, s.viewInvitation(sess, inv, now, false))
	return nil
}

func (s *Server) logRevoke(ctx context.Context, sessionID, actor, invID, unit, reason string, now time.Time) error {
	_, err := s.store.AppendEvent(ctx, rooms.Event{
		SessionID: sessionID, Time: now, Actor: actor, Type: rooms.EventRevoke, Subject: invID,
		Data: map[string]string{rooms.DataUnit: unit, rooms.DataReason: reason},
	})
	return err
}

// reconcileInvitations revokes, after a session change, the invitations of
// units no longer invited and, when the schedule moved, those whose links
// carry the old times. It works from the stored state, so concurrent
// changes and retries converge.
func (s *Server) reconcileInvitations(ctx context.Context, sess rooms.Session, retimed bool, actor string) ([]revokedInvitation, error) {
	invs, err := s.store.ListInvitations(ctx, sess.ID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var out []revokedInvitation
	removed := make(map[string]bool)
	for _, inv := range invs {
		if inv.Revoked() {
			continue
		}
		if _, ok := sess.Unit(inv.UnitCode); !ok {
			if !removed[inv.UnitCode] {
				removed[inv.UnitCode] = true
				if _, err := s.store.RevokeUnitInvitations(ctx, sess.ID, inv.UnitCode, now); err != nil {
					return out, err
				}
			}
			out = append(out, revokedInvitation{ID: inv.ID, UnitCode: inv.UnitCode, Reason: "unit_removed"})
		} else if retimed && !s.current(inv, sess) {
			if _, err := s.store.RevokeInvitation(ctx, inv.ID, now); err != nil {
				return out, err
			}
			out = append(out, revokedInvitation{ID: inv.ID, UnitCode: inv.UnitCode, Reason: "rescheduled"})
		} else {
			continue
		}
		last := out[len(out)-1]
		if err := s.logRevoke(ctx, sess.ID, actor, last.ID, last.UnitCode, last.Reason, now); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (s *Server) invitationQR(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, true)
	if err != nil {
		return err
	}
	inv, err := s.loadInvitation(r.Context(), sess, r.PathValue("inv"))
	if err != nil {
		return err
	}
	v := s.viewInvitation(sess, inv, s.clock.Now(), true)
	if v.URL == "" {
		return errConflict("该邀请链接已失效（"+v.Status+"），请重新生成", "the invitation link no longer works ("+v.Status+"); issue a new one")
	}
	svg, err := qrSVG(v.URL)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	// The code holds a live join link.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = w.Write(svg)
	return nil
}
