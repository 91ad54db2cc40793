package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/signaling/token"
)

// minSupervisorLink is the least time a fresh supervisor link stays valid,
// so a session running past its end and overrun still gets a usable one.
const minSupervisorLink = time.Hour

// joinLink answers the session supervisor's own join link. It is minted on
// each call and valid until LinkOverrun past the scheduled end, and for at
// least minSupervisorLink.
func (s *Server) joinLink(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, true)
	if err != nil {
		return err
	}
	if sess.Status.Final() {
		return errSessionFinal()
	}
	now := s.clock.Now()
	exp := sess.ScheduledEnd.Add(s.cfg.LinkOverrun)
	if floor := now.Add(minSupervisorLink); exp.Before(floor) {
		exp = floor
	}
	name := c.acct.DisplayName
	if name == "" {
		name = c.acct.Username
	}
	tok, err := s.cfg.Tokens.Issue(token.Claims{
		Room:      sess.ID,
		Identity:  c.acct.ID,
		Name:      name,
		Role:      token.RoleSupervisor,
		ExpiresAt: exp,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"url": token.JoinURL(s.cfg.PublicURL, sess.ID, tok), "expiresAt": exp})
	return nil
}

type liveParticipantView struct {
	ID         string    `json:"id"`
	Identity   string    `json:"identity"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Unit       string    `json:"unit,omitempty"`
	Lobby      bool      `json:"lobby"`
	AudioMuted bool      `json:"audioMuted"`
	VideoMuted bool      `json:"videoMuted"`
	ModMuted   bool      `json:"modMuted"`
	JoinedAt   time.Time `json:"joinedAt"`
	// RTTMillis, LossPercent and DownlinkKbps are null while unknown.
	RTTMillis    *float64 `json:"rttMillis"`
	LossPercent  *float64 `json:"lossPercent"`
	DownlinkKbps *float64 `json:"downlinkKbps"`
}

func known(v float64) *float64 {
	if v < 0 {
		return nil
	}
	return &v
}

func viewLive(ps []LiveParticipant) []liveParticipantView {
	out := make([]liveParticipantView, 0, len(ps))
	for _, p := range ps {
		out = append(out, liveParticipantView{
			ID: p.ID, Identity: p.Identity, Name: p.Name, Role: p.Role, Unit: p.Unit,
			Lobby: p.Lobby, AudioMuted: p.AudioMuted, VideoMuted: p.VideoMuted, ModMuted: p.ModMuted,
			JoinedAt: p.JoinedAt, RTTMillis: known(p.RTTMillis), LossPercent: known(p.LossPercent),
			DownlinkKbps: known(p.DownlinkKbps),
		})
	}
	return out
}

func (s *Server) participants(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"participants": viewLive(s.cfg.Moderator.Live(sess.ID))})
	return nil
}

type moderationRequest struct {
	Action string `json:"action"`
	Target string `json:"target"`
}

func (s *Server) moderate(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, true)
	if err != nil {
		return err
	}
	var req moderationRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	needsTarget, ok := knownAction(req.Action)
	switch {
	case !ok:
		return errValidation("action", "未知的操作 "+req.Action, "unknown action "+strconv.Quote(req.Action))
	case needsTarget && req.Target == "":
		return errValidation("target", "请指定参会方", "this action needs a target participant id")
	case !needsTarget && req.Target != "":
		return errValidation("target", "此操作不需要指定参会方", "this action takes no target")
	}
	if err := s.cfg.Moderator.Moderate(r.Context(), sess.ID, c.acct, req.Action, req.Target); err != nil {
		return err
	}
	s.log.Info("moderation", "session", sess.ID, "action", req.Action, "target", req.Target, "by", c.acct.Username)
	after, err := s.store.GetSession(r.Context(), sess.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.view(r.Context(), after))
	return nil
}

// Paging of GET /events.
const (
	defaultEventLimit = 200
	maxEventLimit     = 1000
)

func (s *Server) events(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, false)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var after int64
	if v := q.Get("afterSeq"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return errValidation("afterSeq", "afterSeq 应为非负整数", "afterSeq must be a non-negative integer")
		}
	}
	limit := defaultEventLimit
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxEventLimit {
			return errValidation("limit", "limit 应为 1 到 1000", "limit must be 1 to 1000")
		}
	}
	evs, err := s.store.ListEvents(r.Context(), sess.ID, after, limit+1)
	if err != nil {
		return err
	}
	more := len(evs) > limit
	evs = evs[:min(len(evs), limit)]
	next := after
	if len(evs) > 0 {
		next = evs[len(evs)-1].Seq
	}
	if evs == nil {
		evs = []rooms.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs, "nextAfterSeq": next, "more": more})
	return nil
}

type unitAttendanceView struct {
	Unit           rooms.Unit             `json:"unit"`
	Status         rooms.AttendanceStatus `json:"status"`
	FirstArrival   time.Time              `json:"firstArrival,omitzero"`
	LateSeconds    int64                  `json:"lateSeconds"`
	PresentSeconds int64                  `json:"presentSeconds"`
	Reconnects     int                    `json:"reconnects"`
	Removed        bool                   `json:"removed"`
	Connected      bool                   `json:"connected"`
}

type attendanceView struct {
	SessionID     string               `json:"sessionId"`
	SessionStatus rooms.Status         `json:"sessionStatus"`
	Reference     time.Time            `json:"reference"`
	Until         time.Time            `json:"until"`
	GraceSeconds  int64                `json:"graceSeconds"`
	Units         []unitAttendanceView `json:"units"`
	Summary       map[string]int       `json:"summary"`
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

func (s *Server) attendance(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, false)
	if err != nil {
		return err
	}
	evs, err := s.store.ListEvents(r.Context(), sess.ID, 0, 0)
	if err != nil {
		return err
	}
	rep := rooms.Attendance(sess, evs, s.clock.Now(), s.cfg.Grace)
	v := attendanceView{
		SessionID: rep.SessionID, SessionStatus: sess.Status, Reference: rep.Reference, Until: rep.Until,
		GraceSeconds: seconds(rep.Grace), Units: make([]unitAttendanceView, 0, len(rep.Units)),
		Summary: map[string]int{
			string(rooms.AttendanceOnTime): 0, string(rooms.AttendanceLate): 0,
			string(rooms.AttendanceAbsent): 0, string(rooms.AttendancePending): 0,
		},
	}
	for _, u := range rep.Units {
		v.Units = append(v.Units, unitAttendanceView{
			Unit: u.Unit, Status: u.Status, FirstArrival: u.FirstArrival,
			LateSeconds: seconds(u.Late), PresentSeconds: seconds(u.Present),
			Reconnects: u.Reconnects, Removed: u.Removed, Connected: u.Connected,
		})
		v.Summary[string(u.Status)]++
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

type liveSessionView struct {
	SessionID    string                `json:"sessionId"`
	Title        string                `json:"title"`
	CaseNumber   string                `json:"caseNumber"`
	Status       string                `json:"status"`
	Participants []liveParticipantView `json:"participants"`
}

// overview answers the sessions with anyone connected; a supervisor sees
// only their own.
func (s *Server) overview(w http.ResponseWriter, r *http.Request, c caller) error {
	out := []liveSessionView{}
	for _, ls := range s.cfg.Moderator.Overview() {
		if c.is(rooms.RoleSupervisor) {
			sess, err := s.store.GetSession(r.Context(), ls.SessionID)
			if err != nil && !errors.Is(err, rooms.ErrNotFound) {
				return err
			}
			if err != nil || sess.Supervisor != c.acct.ID {
				continue
			}
		}
		out = append(out, liveSessionView{
			SessionID: ls.SessionID, Title: ls.Title, CaseNumber: ls.CaseNumber, Status: ls.Status,
			Participants: viewLive(ls.Participants),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}
