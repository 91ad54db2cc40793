package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

// Recordings is the evidence side as the API uses it (the recorder, the
// spool and the archive, wired by the server). Optional: without it the
// recording endpoints answer 404.
type Recordings interface {
	// Status reports a session's recording: whether it runs now, what waits
	// in the spool, and the uploader's state.
	Status(ctx context.Context, sessionID string) (RecordingStatus, error)
	// SetLegalHold puts (or lifts) a legal hold on every archived object of
	// the session.
	SetLegalHold(ctx context.Context, sessionID string, on bool) (objects int, err error)
}

// RecordingStatus is the answer of GET .../recording.
type RecordingStatus struct {
	SessionID  string    `json:"sessionId"`
	Enabled    bool      `json:"enabled"`   // the session's recording switch
	Active     bool      `json:"active"`    // tracks are being recorded now
	Recording  string    `json:"recording"` // the recording's id in the archive
	Backlog    Backlog   `json:"backlog"`   // this session's segments waiting in the spool
	Upload     string    `json:"upload"`    // "ok" or "retrying"
	LastError  string    `json:"lastError,omitempty"`
	LastUpload time.Time `json:"lastUpload,omitzero"`
	Sealed     bool      `json:"sealed"` // the signed manifest was written
}

// Backlog counts what waits in the spool.
type Backlog struct {
	Segments int   `json:"segments"`
	Bytes    int64 `json:"bytes"`
}

func (s *Server) recordingStatus(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, false)
	if err != nil {
		return err
	}
	if s.cfg.Recordings == nil {
		return errNotFound("本服务器未配置录制", "recordings are not configured on this server")
	}
	st, err := s.cfg.Recordings.Status(r.Context(), sess.ID)
	if err != nil {
		return err
	}
	st.SessionID, st.Enabled = sess.ID, sess.Recording
	writeJSON(w, http.StatusOK, st)
	return nil
}

type legalHoldRequest struct {
	On *bool `json:"on"`
}

// legalHold sets or lifts a legal hold on a session's archived recording
// (admins and auditors: a dispute is theirs to freeze).
func (s *Server) legalHold(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.loadSession(r.Context(), r.PathValue("id"), c, false)
	if err != nil {
		return err
	}
	var req legalHoldRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.On == nil {
		return errValidation("on", "需要 on（true 或 false）", "on (true or false) is required")
	}
	if s.cfg.Recordings == nil {
		return errNotFound("本服务器未配置录制", "recordings are not configured on this server")
	}
	n, err := s.cfg.Recordings.SetLegalHold(r.Context(), sess.ID, *req.On)
	if err != nil {
		return err
	}
	typ := rooms.EventType("legal_hold_off")
	if *req.On {
		typ = "legal_hold_on"
	}
	_, _ = s.store.AppendEvent(r.Context(), rooms.Event{ID: rooms.NewID(), SessionID: sess.ID, Time: s.clock.Now(),
		Actor: c.acct.ID, Type: typ, Data: map[string]string{"objects": strconv.Itoa(n)}})
	writeJSON(w, http.StatusOK, map[string]any{"sessionId": sess.ID, "legalHold": *req.On, "objects": n})
	return nil
}
