package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/replay"
	"github.com/ducha-dev/ducha/rooms"
)

// ReplayRecordings is what the replay endpoints read (recording/replay.Service).
type ReplayRecordings interface {
	Search(ctx context.Context, q replay.Query) ([]replay.Entry, bool, error)
	Entry(ctx context.Context, id string) (replay.Entry, error)
	Detail(ctx context.Context, id string) (*replay.Detail, error)
	Verify(ctx context.Context, id string) (*replay.Verification, error)
	OpenSegment(ctx context.Context, id string, index uint64) (*replay.Segment, error)
	PrepareExport(ctx context.Context, id string) (*replay.Export, error)
}

// ReplayAccessLog records and reads who accessed recordings.
type ReplayAccessLog interface {
	LogAccess(ctx context.Context, a replay.Access) (replay.Access, error)
	AccessLog(ctx context.Context, from, to time.Time, limit int) ([]replay.Access, bool, error)
}

// Replay is the auditors' side of recordings; *replay.Service implements it.
type Replay interface {
	ReplayRecordings
	ReplayAccessLog
}

// Error codes of the replay endpoints (see recording/replay/API.md).
const (
	CodeSegmentLost     = "segment_lost"
	CodeSegmentMissing  = "segment_missing"
	CodeManifestInvalid = "manifest_invalid"
	CodeAccessLog       = "access_log_unavailable"
)

// maxUserAgent bounds what an access-log entry keeps of the User-Agent.
const maxUserAgent = 256

func (s *Server) replayRoutes() {
	viewers := []rooms.Role{rooms.RoleSupervisor, rooms.RoleAuditor, rooms.RoleAdmin}
	s.handle("GET /api/v1/recordings", viewers, s.listRecordings)
	s.handle("GET /api/v1/recordings/{id}", viewers, s.getRecording)
	s.handle("GET /api/v1/recordings/{id}/verify", viewers, s.verifyRecording)
	s.handle("GET /api/v1/recordings/{id}/segments/{n}", viewers, s.recordingSegment)
	s.handle("GET /api/v1/recordings/{id}/export", viewers, s.exportRecording)
	s.handle("GET /api/v1/access-log", []rooms.Role{rooms.RoleAdmin}, s.accessLog)
}

func errReplayOff() *Error {
	return errNotFound("本服务器未配置录像回放", "recording replay is not configured on this server")
}

// replayError maps the replay package's sentinels to API errors.
func replayError(err error) error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, replay.ErrNotFound):
		e = errNotFound("录像不存在", "no such recording")
	case errors.Is(err, replay.ErrSegmentNotFound):
		e = errNotFound("录像片段不存在", "no such segment in this recording")
	case errors.Is(err, replay.ErrSegmentLost):
		e = newError(http.StatusGone, CodeSegmentLost, "该片段在归档前已损坏，清单已如实声明，无法播放",
			"this segment was lost before archiving (the manifest declares it) and cannot be played")
	case errors.Is(err, replay.ErrSegmentMissing):
		e = newError(http.StatusNotFound, CodeSegmentMissing, "录像片段在归档中缺失，请运行完整性校验",
			"the segment is missing from the archive; run the integrity check")
	case errors.Is(err, replay.ErrInvalidManifest):
		e = newError(http.StatusInternalServerError, CodeManifestInvalid, "录像清单无法读取，可能已被改动，请运行完整性校验",
			"the recording's manifest cannot be read and may have been altered; run the integrity check")
	case errors.Is(err, replay.ErrAccessLog):
		e = newError(http.StatusServiceUnavailable, CodeAccessLog, "访问记录暂时无法写入，为保证每次访问都有记录，请稍后再试",
			"the access log cannot be written right now; access is refused until it can be recorded, try again shortly")
		e.RetryAfter = 5 * time.Second
	case errors.Is(err, replay.ErrInvalidRange):
		e = errValidation("from", "时间范围无效（from 必须早于 to，且最多 92 天）", "invalid time range (from before to, at most 92 days)")
	default:
		return err
	}
	e.Cause = err
	return e
}

// canSeeRecording: auditors and admins see every recording, supervisors
// the recordings of sessions they held (never ad-hoc rooms, which have no
// holder).
func canSeeRecording(e replay.Entry, c caller) bool {
	switch c.acct.Role {
	case rooms.RoleAdmin, rooms.RoleAuditor:
		return true
	case rooms.RoleSupervisor:
		return e.Supervisor != "" && e.Supervisor == c.acct.ID
	}
	return false
}

// logAccess records an access; a failure refuses it (503).
func (s *Server) logAccess(r *http.Request, c caller, a replay.Access) error {
	a.Account, a.Username, a.Role = c.acct.ID, c.acct.Username, string(c.acct.Role)
	a.Remote = r.RemoteAddr
	a.ForwardedFor = r.Header.Get("X-Forwarded-For")
	if ua := r.UserAgent(); len(ua) > maxUserAgent {
		a.UserAgent = ua[:maxUserAgent]
	} else {
		a.UserAgent = ua
	}
	if _, err := s.cfg.Replay.LogAccess(r.Context(), a); err != nil {
		s.log.Error("access not recorded; refusing it", "action", a.Action, "recording", a.Recording,
			"account", c.acct.Username, "err", err)
		return replayError(err)
	}
	return nil
}

// loadRecording returns the recording named in the path if c may see it.
// A refusal is recorded too: attempts on other people's recordings are
// what an audit looks for.
func (s *Server) loadRecording(r *http.Request, c caller, action string) (replay.Entry, error) {
	if s.cfg.Replay == nil {
		return replay.Entry{}, errReplayOff()
	}
	e, err := s.cfg.Replay.Entry(r.Context(), r.PathValue("id"))
	if err != nil {
		return replay.Entry{}, replayError(err)
	}
	if !canSeeRecording(e, c) {
		_ = s.logAccess(r, c, replay.Access{Action: action, Outcome: replay.OutcomeDenied, Recording: e.ID})
		return replay.Entry{}, errForbidden()
	}
	return e, nil
}

func (s *Server) listRecordings(w http.ResponseWriter, r *http.Request, c caller) error {
	if s.cfg.Replay == nil {
		return errReplayOff()
	}
	v := r.URL.Query()
	q := replay.Query{Case: v.Get("case"), Unit: v.Get("unit"), Supervisor: v.Get("supervisor"), Text: v.Get("q")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if t := v.Get(p.name); t != "" {
			var err error
			if *p.dst, err = parseTime(p.name, t); err != nil {
				return err
			}
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > replay.MaxSearchLimit {
			return errValidation("limit", "limit 应为 1 到 1000", "limit must be 1 to 1000")
		}
		q.Limit = n
	}
	if c.is(rooms.RoleSupervisor) {
		q.Owner = c.acct.ID
	}
	found, more, err := s.cfg.Replay.Search(r.Context(), q)
	if err != nil {
		return replayError(err)
	}
	n := len(found)
	if err := s.logAccess(r, c, replay.Access{Action: replay.ActionSearch, Query: r.URL.RawQuery, Results: &n}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": found, "more": more})
	return nil
}

func (s *Server) getRecording(w http.ResponseWriter, r *http.Request, c caller) error {
	e, err := s.loadRecording(r, c, replay.ActionReplay)
	if err != nil {
		return err
	}
	if err := s.logAccess(r, c, replay.Access{Action: replay.ActionReplay, Recording: e.ID}); err != nil {
		return err
	}
	d, err := s.cfg.Replay.Detail(r.Context(), e.ID)
	if err != nil {
		return replayError(err)
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) verifyRecording(w http.ResponseWriter, r *http.Request, c caller) error {
	e, err := s.loadRecording(r, c, replay.ActionVerify)
	if err != nil {
		return err
	}
	if err := s.logAccess(r, c, replay.Access{Action: replay.ActionVerify, Recording: e.ID}); err != nil {
		return err
	}
	v, err := s.cfg.Replay.Verify(r.Context(), e.ID)
	if err != nil {
		return replayError(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// recordingSegment proxies one segment from the archive with Range
// support, so the page never holds archive credentials or URLs. A fetch is
// logged when it starts at the beginning of the segment (no Range, or a
// range from byte 0): that is a replay of the segment; the further ranges a
// player asks for while seeking within it are not separate accesses.
func (s *Server) recordingSegment(w http.ResponseWriter, r *http.Request, c caller) error {
	n, err := strconv.ParseUint(r.PathValue("n"), 10, 64)
	if err != nil {
		return errValidation("n", "片段编号应为非负整数", "the segment number must be a non-negative integer")
	}
	e, err := s.loadRecording(r, c, replay.ActionSegment)
	if err != nil {
		return err
	}
	seg, err := s.cfg.Replay.OpenSegment(r.Context(), e.ID, n)
	if err != nil {
		return replayError(err)
	}
	defer seg.Body.Close()
	if rangeFromStart(r.Header.Get("Range")) {
		if err := s.logAccess(r, c, replay.Access{Action: replay.ActionSegment, Recording: e.ID, Segment: &n}); err != nil {
			return err
		}
	}
	h := w.Header()
	h.Set("Content-Type", seg.ContentType)
	h.Set("Cache-Control", "private, no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", `inline; filename="`+seg.Name+`"`)
	if seg.Entry.SHA256 != "" {
		h.Set("ETag", `"`+seg.Entry.SHA256+`"`)
	}
	http.ServeContent(w, r, seg.Name, seg.Modified, seg.Body)
	return nil
}

// rangeFromStart reports whether a Range header is absent or asks for a
// range starting at byte 0.
func rangeFromStart(h string) bool {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok {
		return true // absent or not understood: ServeContent sends it all
	}
	for part := range strings.SplitSeq(spec, ",") {
		if start, _, _ := strings.Cut(strings.TrimSpace(part), "-"); start == "0" {
			return true
		}
	}
	return false
}

func (s *Server) exportRecording(w http.ResponseWriter, r *http.Request, c caller) error {
	e, err := s.loadRecording(r, c, replay.ActionExport)
	if err != nil {
		return err
	}
	if err := s.logAccess(r, c, replay.Access{Action: replay.ActionExport, Recording: e.ID}); err != nil {
		return err
	}
	x, err := s.cfg.Replay.PrepareExport(r.Context(), e.ID)
	if err != nil {
		return replayError(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+x.FileName()+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if err := x.WriteTo(r.Context(), w); err != nil {
		s.log.Error("evidence export broken off", "recording", e.ID, "account", c.acct.Username, "err", err)
		// The status is sent: abort the connection so the client sees a
		// failed download, not a complete-looking one.
		panic(http.ErrAbortHandler)
	}
	s.log.Info("evidence exported", "recording", e.ID, "account", c.acct.Username, "result", x.Report().Result.String())
	return nil
}

// Access log read limits.
const defaultAccessLogWindow = 24 * time.Hour

func (s *Server) accessLog(w http.ResponseWriter, r *http.Request, c caller) error {
	if s.cfg.Replay == nil {
		return errReplayOff()
	}
	v := r.URL.Query()
	to := s.clock.Now()
	from := to.Add(-defaultAccessLogWindow)
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if t := v.Get(p.name); t != "" {
			var err error
			if *p.dst, err = parseTime(p.name, t); err != nil {
				return err
			}
		}
	}
	limit := 0
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > replay.MaxAccessLogEntries {
			return errValidation("limit", "limit 应为 1 到 10000", "limit must be 1 to 10000")
		}
		limit = n
	}
	entries, more, err := s.cfg.Replay.AccessLog(r.Context(), from, to, limit)
	if err != nil {
		return replayError(err)
	}
	if err := s.logAccess(r, c, replay.Access{Action: replay.ActionAccessLog, Query: r.URL.RawQuery}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "more": more, "from": from, "to": to})
	return nil
}
