package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"github.com/ducha-dev/ducha/rooms/accounts"
	"github.com/ducha-dev/ducha/signaling"
	"github.com/ducha-dev/ducha/signaling/token"
	"log/slog"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/httpapi"
	"github.com/ducha-dev/ducha/rooms/live"
)

// moderator adapts the live controller to the HTTP API's Moderator.
type moderator struct {
	ctl   *live.Controller
	store rooms.Store
}

func (m moderator) Moderate(ctx context.Context, sessionID string, actor rooms.Account, action, target string) error {
	return m.ctl.Moderate(ctx, sessionID, actor.ID, action, target)
}

func (m moderator) Live(sessionID string) []httpapi.LiveParticipant {
	var out []httpapi.LiveParticipant
	for _, p := range m.ctl.Live(sessionID) {
		out = append(out, httpapi.LiveParticipant(p))
	}
	return out
}

func (m moderator) Overview() []httpapi.LiveSession {
	var out []httpapi.LiveSession
	for _, id := range m.ctl.LiveSessionIDs() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := m.store.GetSession(ctx, id)
		cancel()
		if err != nil {
			continue
		}
		out = append(out, httpapi.LiveSession{SessionID: id, Title: s.Title, CaseNumber: s.CaseNumber,
			Status: string(s.Status), Participants: m.Live(id)})
	}
	return out
}

// recordings adapts the evidence pipeline to the HTTP API's Recordings.
type recordings struct{ ev *evidenceParts }

func (r recordings) Status(ctx context.Context, sessionID string) (httpapi.RecordingStatus, error) {
	st := httpapi.RecordingStatus{Recording: sessionID}
	if id, ok := r.ev.recorder.Recording(sessionID); ok {
		st.Active, st.Recording = true, id
	}
	if b, ok := r.ev.spool.SessionBacklog(st.Recording); ok {
		st.Backlog = httpapi.Backlog{Segments: b.Segments, Bytes: b.Bytes}
	}
	up := r.ev.uploader.Status()
	st.Upload, st.LastError, st.LastUpload = string(up.State), up.LastError, up.LastUpload
	key, err := archive.ManifestKey(st.Recording)
	if err != nil {
		return st, err
	}
	_, err = r.ev.archive.Stat(ctx, key, "")
	switch {
	case err == nil:
		st.Sealed = true
	case errors.Is(err, archive.ErrNotFound):
	default:
		st.LastError = fmt.Sprintf("archive: %v", err)
	}
	return st, nil
}

func (r recordings) SetLegalHold(ctx context.Context, sessionID string, on bool) (int, error) {
	prefix, err := archive.SessionPrefix(sessionID)
	if err != nil {
		return 0, err
	}
	objs, err := r.ev.archive.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	for i, o := range objs {
		if err := r.ev.archive.SetLegalHold(ctx, o.Key, o.VersionID, on); err != nil {
			return i, fmt.Errorf("legal hold on %s: %w", o.Key, err)
		}
	}
	return len(objs), nil
}

func newAPI(cfg config, store rooms.Store, joinKey ed25519.PrivateKey, ctl *live.Controller, ev *evidenceParts,
	publicURL string, log *slog.Logger) (*httpapi.Server, error) {
	accts, err := accounts.New(store, accounts.Options{Logger: log.With("component", "accounts")})
	if err != nil {
		return nil, err
	}
	cookieKey, err := httpapi.LoadOrCreateCookieKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return httpapi.New(httpapi.Config{
		Store: store, Accounts: accts, Moderator: moderator{ctl, store}, Recordings: recordings{ev}, Replay: ev.replay,
		ErrBadAction: signaling.ErrBadAction, Tokens: token.NewIssuer(joinKey, time.Now), PublicURL: publicURL,
		CookieKey: cookieKey, SecureCookies: strings.HasPrefix(publicURL, "https://"),
		Logger: log.With("component", "api"), OnCancel: ctl.Cancelled,
	})
}
