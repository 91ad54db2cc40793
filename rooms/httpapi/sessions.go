package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// EventSessionCancel is logged when a session is cancelled from the console.
const EventSessionCancel rooms.EventType = "session_cancel"

// List limits of GET /sessions.
const (
	defaultListLimit = 100
	maxListLimit     = 500
)

type sessionView struct {
	rooms.Session
	SupervisorName string `json:"supervisorName,omitempty"`
	// RevokedInvitations lists the invitations a PATCH revoked.
	RevokedInvitations []revokedInvitation `json:"revokedInvitations,omitempty"`
}

type revokedInvitation struct {
	ID       string `json:"id"`
	UnitCode string `json:"unitCode"`
	// Reason is "unit_removed" or "rescheduled" (the link carries the old
	// times: issue a new one).
	Reason string `json:"reason"`
}

// supervisorNames resolves account IDs to display names, once per request.
type supervisorNames struct {
	s     *Server
	ctx   context.Context
	names map[string]string
}

func (n *supervisorNames) name(id string) string {
	if v, ok := n.names[id]; ok {
		return v
	}
	v := ""
	if a, err := n.s.store.GetAccountByID(n.ctx, id); err == nil {
		v = a.DisplayName
	}
	n.names[id] = v
	return v
}

func (s *Server) view(ctx context.Context, sess rooms.Session) sessionView {
	n := supervisorNames{s: s, ctx: ctx, names: map[string]string{}}
	return sessionView{Session: sess, SupervisorName: n.name(sess.Supervisor)}
}

// loadSession returns the session if c may see it (write: change it).
// Supervisors reach only their own sessions; auditors read all; admins
// everything.
func (s *Server) loadSession(ctx context.Context, id string, c caller, write bool) (rooms.Session, error) {
	sess, err := s.store.GetSession(ctx, id)
	if errors.Is(err, rooms.ErrNotFound) {
		return rooms.Session{}, errSessionNotFound()
	}
	if err != nil {
		return rooms.Session{}, err
	}
	if !canAccess(sess, c, write) {
		return rooms.Session{}, errForbidden()
	}
	return sess, nil
}

func canAccess(sess rooms.Session, c caller, write bool) bool {
	switch c.acct.Role {
	case rooms.RoleAdmin:
		return true
	case rooms.RoleAuditor:
		return !write
	case rooms.RoleSupervisor:
		return sess.Supervisor == c.acct.ID
	}
	return false
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	f, limit, err := parseSessionQuery(q)
	if err != nil {
		return err
	}
	if c.is(rooms.RoleSupervisor) {
		f.Supervisor = c.acct.ID
	}
	text := strings.ToLower(strings.TrimSpace(q.Get("q")))
	unit := strings.ToLower(strings.TrimSpace(q.Get("unit")))
	if text == "" && unit == "" {
		f.Limit = limit + 1
	}
	all, err := s.store.ListSessions(r.Context(), f)
	if err != nil {
		return err
	}
	names := supervisorNames{s: s, ctx: r.Context(), names: map[string]string{}}
	out := make([]sessionView, 0, min(len(all), limit))
	more := false
	for _, sess := range all {
		if !matchText(sess, text) || !matchUnit(sess, unit) {
			continue
		}
		if len(out) == limit {
			more = true
			break
		}
		out = append(out, sessionView{Session: sess, SupervisorName: names.name(sess.Supervisor)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out, "more": more})
	return nil
}

func parseSessionQuery(q url.Values) (rooms.SessionFilter, int, error) {
	var f rooms.SessionFilter
	if v := q.Get("status"); v != "" {
		for st := range strings.SplitSeq(v, ",") {
			st := rooms.Status(strings.TrimSpace(st))
			if !st.Valid() {
				return f, 0, errValidation("status", "未知的会话状态 "+string(st), "unknown status "+string(st))
			}
			f.Status = append(f.Status, st)
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(p.name, v)
			if err != nil {
				return f, 0, err
			}
			*p.dst = t
		}
	}
	f.Supervisor = q.Get("supervisor")
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return f, 0, errValidation("limit", "limit 应为 1 到 500", "limit must be 1 to 500")
		}
		limit = n
	}
	return f, limit, nil
}

func matchText(s rooms.Session, q string) bool {
	return q == "" || strings.Contains(strings.ToLower(s.Title), q) || strings.Contains(strings.ToLower(s.CaseNumber), q)
}

func matchUnit(s rooms.Session, q string) bool {
	if q == "" {
		return true
	}
	return slices.ContainsFunc(s.InvitedUnits, func(u rooms.Unit) bool {
		return strings.ToLower(u.Code) == q || strings.Contains(strings.ToLower(u.Name), q)
	})
}

type createSessionRequest struct {
	Title          string       `json:"title"`
	CaseNumber     string       `json:"caseNumber"`
	ScheduledStart string       `json:"scheduledStart"`
	ScheduledEnd   string       `json:"scheduledEnd"`
	InvitedUnits   []rooms.Unit `json:"invitedUnits"`
	Recording      *bool        `json:"recording"`
	// Supervisor is the account ID of the supervisor holding the session:
	// required from an admin, empty or oneself from a supervisor.
	Supervisor string `json:"supervisor"`
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request, c caller) error {
	var req createSessionRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	now := s.clock.Now()
	f := sessionFields{
		title:      strings.TrimSpace(req.Title),
		caseNumber: strings.TrimSpace(req.CaseNumber),
		units:      trimUnits(req.InvitedUnits),
	}
	var err error
	if req.ScheduledStart != "" {
		if f.start, err = parseTime("scheduledStart", req.ScheduledStart); err != nil {
			return err
		}
	}
	if req.ScheduledEnd != "" {
		if f.end, err = parseTime("scheduledEnd", req.ScheduledEnd); err != nil {
			return err
		}
	}
	if err := f.validate(); err != nil {
		return err
	}
	if !f.end.After(now) {
		return errValidation("scheduledEnd", "结束时间已过", "scheduledEnd is in the past")
	}
	sup, err := s.sessionSupervisor(r.Context(), c, req.Supervisor)
	if err != nil {
		return err
	}
	sess := rooms.NewSession(f.title, f.caseNumber, sup.ID, f.start, f.end, f.units, now)
	if req.Recording != nil {
		sess.Recording = *req.Recording
	}
	sess, err = s.store.CreateSession(r.Context(), sess)
	if err != nil {
		return err
	}
	s.log.Info("session created", "session", sess.ID, "by", c.acct.Username, "supervisor", sup.Username, "units", len(sess.InvitedUnits))
	w.Header().Set("Location", "/api/v1/sessions/"+sess.ID)
	setETag(w, sess)
	writeJSON(w, http.StatusCreated, sessionView{Session: sess, SupervisorName: sup.DisplayName})
	return nil
}

// sessionSupervisor decides who holds a new session.
func (s *Server) sessionSupervisor(ctx context.Context, c caller, requested string) (rooms.Account, error) {
	if c.is(rooms.RoleSupervisor) {
		if requested != "" && requested != c.acct.ID {
			return rooms.Account{}, errValidation("supervisor", "督查人员只能为自己安排会话", "a supervisor can only schedule sessions for themself")
		}
		return c.acct, nil
	}
	if requested == "" {
		return rooms.Account{}, errValidation("supervisor", "请指定主持会话的督查人员", "supervisor (an account ID) is required")
	}
	a, err := s.store.GetAccountByID(ctx, requested)
	if errors.Is(err, rooms.ErrNotFound) || (err == nil && a.Role != rooms.RoleSupervisor) {
		return rooms.Account{}, errValidation("supervisor", "指定的账号不是督查人员", "supervisor must be the ID of a supervisor account")
	}
	return a, err
}

func setETag(w http.ResponseWriter, sess rooms.Session) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(sess.Version, 10)+`"`)
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, false)
	if err != nil {
		return err
	}
	setETag(w, sess)
	writeJSON(w, http.StatusOK, s.view(r.Context(), sess))
	return nil
}

type patchSessionRequest struct {
	Title          *string       `json:"title"`
	CaseNumber     *string       `json:"caseNumber"`
	ScheduledStart *string       `json:"scheduledStart"`
	ScheduledEnd   *string       `json:"scheduledEnd"`
	InvitedUnits   *[]rooms.Unit `json:"invitedUnits"`
	// Recording may be set here only before the lobby opens; afterwards
	// the moderation actions recording-on/off tell the recorder too.
	Recording *bool `json:"recording"`
}

func (s *Server) patchSession(w http.ResponseWriter, r *http.Request, c caller) error {
	cur, err := s.loadSession(r.Context(), r.PathValue("id"), c, true)
	if err != nil {
		return err
	}
	var req patchSessionRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ifMatch, err := parseIfMatch(r)
	if err != nil {
		return err
	}
	apply, err := req.applier(cur)
	if err != nil {
		return err
	}
	updated, err := s.store.UpdateSession(r.Context(), cur.ID, func(sess *rooms.Session) error {
		if ifMatch >= 0 && sess.Version != ifMatch {
			return newError(http.StatusPreconditionFailed, CodePreconditionFailed,
				"会话已被他人修改，请刷新后重试", "the session changed since you read it; reload and retry")
		}
		return apply(sess)
	})
	if err != nil {
		return err
	}
	retimed := !cur.ScheduledStart.Equal(updated.ScheduledStart) || !cur.ScheduledEnd.Equal(updated.ScheduledEnd)
	revoked, err := s.reconcileInvitations(r.Context(), updated, retimed, c.acct.ID)
	if err != nil {
		return err
	}
	s.log.Info("session updated", "session", updated.ID, "by", c.acct.Username, "revoked_invitations", len(revoked))
	v := s.view(r.Context(), updated)
	v.RevokedInvitations = revoked
	setETag(w, updated)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// parseIfMatch returns the version an If-Match header asks for, or -1.
func parseIfMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if err != nil {
		return 0, newError(http.StatusBadRequest, CodeValidation, "If-Match 应为会话版本号", "If-Match must be a session version")
	}
	return n, nil
}

// applier parses and validates the request against the current session
// and returns the change to apply inside UpdateSession. The change checks
// the stored session's status again, since it may have moved meanwhile, and
// is deterministic, as store update functions must be.
func (req patchSessionRequest) applier(cur rooms.Session) (func(*rooms.Session) error, error) {
	f := sessionFields{title: cur.Title, caseNumber: cur.CaseNumber, start: cur.ScheduledStart, end: cur.ScheduledEnd, units: cur.InvitedUnits}
	if req.Title != nil {
		f.title = strings.TrimSpace(*req.Title)
	}
	if req.CaseNumber != nil {
		f.caseNumber = strings.TrimSpace(*req.CaseNumber)
	}
	var err error
	if req.ScheduledStart != nil {
		if f.start, err = parseTime("scheduledStart", *req.ScheduledStart); err != nil {
			return nil, err
		}
	}
	if req.ScheduledEnd != nil {
		if f.end, err = parseTime("scheduledEnd", *req.ScheduledEnd); err != nil {
			return nil, err
		}
	}
	if req.InvitedUnits != nil {
		f.units = trimUnits(*req.InvitedUnits)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	retime := !f.start.Equal(cur.ScheduledStart) || !f.end.Equal(cur.ScheduledEnd)
	return func(sess *rooms.Session) error {
		if sess.Status.Final() {
			return errSessionFinal()
		}
		if retime && sess.Status == rooms.StatusLive {
			return errConflict("会话已开始，不能再修改时间", "the session is live: its times can no longer change")
		}
		if req.Recording != nil && sess.Status != rooms.StatusScheduled {
			return errConflict("会话已开放，请用“录制”按钮开始或停止录制", "the session is open: use the recording-on/off moderation actions")
		}
		if req.Title != nil {
			sess.Title = f.title
		}
		if req.CaseNumber != nil {
			sess.CaseNumber = f.caseNumber
		}
		if retime {
			sess.ScheduledStart, sess.ScheduledEnd = f.start, f.end
		}
		if req.InvitedUnits != nil {
			sess.InvitedUnits = slices.Clone(f.units)
		}
		if req.Recording != nil {
			sess.Recording = *req.Recording
		}
		return nil
	}, nil
}

func (s *Server) cancelSession(w http.ResponseWriter, r *http.Request, c caller) error {
	cur, err := s.loadSession(r.Context(), r.PathValue("id"), c, true)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	updated, err := s.store.UpdateSession(r.Context(), cur.ID, func(sess *rooms.Session) error {
		return sess.Transition(rooms.StatusCancelled, now)
	})
	if err != nil {
		return err
	}
	if _, err := s.store.AppendEvent(r.Context(), rooms.Event{
		SessionID: updated.ID, Time: now, Actor: c.acct.ID, Type: EventSessionCancel,
	}); err != nil {
		return err
	}
	s.log.Info("session cancelled", "session", updated.ID, "by", c.acct.Username)
	if s.cfg.OnCancel != nil {
		s.cfg.OnCancel(updated.ID) // whoever waits in the lobby is sent home
	}
	setETag(w, updated)
	writeJSON(w, http.StatusOK, s.view(r.Context(), updated))
	return nil
}
