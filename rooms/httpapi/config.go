package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/accounts"
	"github.com/ducha-dev/ducha/signaling/token"
)

// Defaults of Config.
const (
	// DefaultLinkOverrun is how long a join token outlives the scheduled end
	// of its session, so a unit whose network drops while a session runs
	// over can come back. The server still checks the invitation itself
	// (rooms.CheckInvitation) on every join, so a revoked link or an ended
	// session is refused whatever the token's expiry.
	DefaultLinkOverrun = 2 * time.Hour
)

// Config is what the API needs. Store, Accounts, Moderator, Tokens,
// PublicURL and CookieKey are required.
type Config struct {
	Store     rooms.Store
	Accounts  *accounts.Service
	Moderator Moderator
	// Recordings serves recording status and legal hold; may be nil.
	Recordings Recordings
	// OnCancel, if set, is called after a session was cancelled (the live
	// controller disconnects anyone waiting in its lobby).
	OnCancel func(sessionID string)
	// Replay serves auditors' search, replay, verification, export and the
	// access log (recording/replay.Service); may be nil (those endpoints
	// then answer 404).
	Replay Replay
	// ErrBadAction is the live controller's error for an unknown action or
	// target (live.ErrBadAction); matched with errors.Is and answered 422
	// bad_action. Nil: such errors answer 500.
	ErrBadAction error
	// Tokens signs join links.
	Tokens *token.Issuer
	// PublicURL is the base of join links, e.g. https://ducha.example.cn.
	PublicURL string
	// CookieKey signs console cookies (LoadOrCreateCookieKey); at least
	// MinCookieKeyLen bytes.
	CookieKey []byte
	// SecureCookies marks the cookie Secure; set it whenever the console is
	// served over HTTPS (always, outside a laptop).
	SecureCookies bool
	// Clock defaults to the system clock.
	Clock rooms.Clock
	// Logger defaults to discarding.
	Logger *slog.Logger
	// EarlyWindow is how long before the scheduled start invitation links
	// work. Default rooms.DefaultEarlyWindow (30 minutes).
	EarlyWindow time.Duration
	// LinkOverrun: see DefaultLinkOverrun. Zero takes the default; a
	// negative value means none (links expire at the scheduled end).
	LinkOverrun time.Duration
	// Grace is the attendance grace period. Default rooms.DefaultGrace.
	Grace time.Duration
}

// Server is the API handler. It serves paths under /api/v1/ (mount it at
// "/api/v1/") and answers JSON everywhere, including unknown paths.
type Server struct {
	cfg     Config
	store   rooms.Store
	clock   rooms.Clock
	log     *slog.Logger
	cookies cookieCodec
	mux     *http.ServeMux
}

// New checks cfg and returns the API handler.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, fmt.Errorf("%w: Store is required", ErrConfig)
	case cfg.Accounts == nil:
		return nil, fmt.Errorf("%w: Accounts is required", ErrConfig)
	case cfg.Moderator == nil:
		return nil, fmt.Errorf("%w: Moderator is required", ErrConfig)
	case cfg.Tokens == nil:
		return nil, fmt.Errorf("%w: Tokens is required", ErrConfig)
	case len(cfg.CookieKey) < MinCookieKeyLen:
		return nil, fmt.Errorf("%w: CookieKey must have at least %d bytes", ErrConfig, MinCookieKeyLen)
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: PublicURL %q must be an absolute http(s) URL", ErrConfig, cfg.PublicURL)
	}
	if cfg.Clock == nil {
		cfg.Clock = rooms.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.EarlyWindow <= 0 {
		cfg.EarlyWindow = rooms.DefaultEarlyWindow
	}
	switch {
	case cfg.LinkOverrun == 0:
		cfg.LinkOverrun = DefaultLinkOverrun
	case cfg.LinkOverrun < 0:
		cfg.LinkOverrun = 0
	}
	if cfg.Grace <= 0 {
		cfg.Grace = rooms.DefaultGrace
	}
	s := &Server{
		cfg:     cfg,
		store:   cfg.Store,
		clock:   cfg.Clock,
		log:     cfg.Logger.With("component", "httpapi"),
		cookies: cookieCodec{key: append([]byte(nil), cfg.CookieKey...)},
		mux:     http.NewServeMux(),
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	// Who may call what, before the per-session ownership checks of the
	// handlers. Roles are account roles: county officials have no account
	// and so no way into the API at all.
	anyAccount := []rooms.Role{rooms.RoleSupervisor, rooms.RoleAuditor, rooms.RoleAdmin}
	schedulers := []rooms.Role{rooms.RoleSupervisor, rooms.RoleAdmin}
	adminsOnly := []rooms.Role{rooms.RoleAdmin}
	supervisor := []rooms.Role{rooms.RoleSupervisor}

	s.mux.HandleFunc("POST /api/v1/auth/login", s.login)
	s.mux.HandleFunc("POST /api/v1/auth/logout", s.logout)
	s.handle("GET /api/v1/auth/me", anyAccount, s.me)

	s.handle("GET /api/v1/sessions", anyAccount, s.listSessions)
	s.handle("POST /api/v1/sessions", schedulers, s.createSession)
	s.handle("GET /api/v1/sessions/{id}", anyAccount, s.getSession)
	s.handle("PATCH /api/v1/sessions/{id}", schedulers, s.patchSession)
	s.handle("POST /api/v1/sessions/{id}/cancel", schedulers, s.cancelSession)

	s.handle("POST /api/v1/sessions/{id}/invitations", schedulers, s.issueInvitations)
	s.handle("GET /api/v1/sessions/{id}/invitations", anyAccount, s.listInvitations)
	s.handle("POST /api/v1/sessions/{id}/invitations/{inv}/revoke", schedulers, s.revokeInvitation)
	s.handle("GET /api/v1/sessions/{id}/invitations/{inv}/qr.svg", schedulers, s.invitationQR)

	s.handle("GET /api/v1/sessions/{id}/join-link", supervisor, s.joinLink)
	s.handle("GET /api/v1/sessions/{id}/participants", anyAccount, s.participants)
	s.handle("POST /api/v1/sessions/{id}/moderation", schedulers, s.moderate)
	s.handle("GET /api/v1/sessions/{id}/events", anyAccount, s.events)
	s.handle("GET /api/v1/sessions/{id}/attendance", anyAccount, s.attendance)
	s.handle("GET /api/v1/overview", anyAccount, s.overview)
	s.handle("GET /api/v1/sessions/{id}/recording", anyAccount, s.recordingStatus)
	s.handle("POST /api/v1/sessions/{id}/legal-hold", []rooms.Role{rooms.RoleAdmin, rooms.RoleAuditor}, s.legalHold)
	s.replayRoutes()

	s.handle("GET /api/v1/accounts", adminsOnly, s.listAccounts)
	s.handle("POST /api/v1/accounts", adminsOnly, s.createAccount)
	s.handle("POST /api/v1/accounts/{username}/password", adminsOnly, s.resetPassword)

	s.mux.HandleFunc("/", s.fallback)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// fallback answers paths no route took: 405 when another method would have
// matched, 404 otherwise, both as JSON.
func (s *Server) fallback(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		for _, m := range allowed {
			w.Header().Add("Allow", m)
		}
		writeError(w, r, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "不支持此请求方法", "method not allowed"))
		return
	}
	writeError(w, r, errNotFound("接口不存在", "no such API endpoint"))
}

// fail sends err, logging what the caller does not see.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err, s.cfg.ErrBadAction)
	if e.Status >= 500 {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err)
	} else {
		s.log.Debug("api request refused", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err)
	}
	writeError(w, r, e)
}
