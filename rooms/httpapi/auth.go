package httpapi

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/accounts"
)

// CSRFHeader carries the CSRF token on every state-changing request.
const CSRFHeader = "X-CSRF-Token"

// caller is the signed-in account making a request.
type caller struct {
	acct rooms.Account // PasswordHash cleared
	csrf string
	exp  time.Time
}

func (c caller) is(r rooms.Role) bool { return c.acct.Role == r }

// handlerFunc is an API handler behind authentication; it returns errors
// and leaves their mapping to fail.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c caller) error

// handle registers h for pattern, callable by the given roles.
func (s *Server) handle(pattern string, roles []rooms.Role, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !slices.Contains(roles, c.acct.Role) {
			s.fail(w, r, errForbidden())
			return
		}
		if err := h(w, r, c); err != nil {
			s.fail(w, r, err)
		}
	})
}

// authenticate checks the session cookie, the CSRF token of state-changing
// requests, and that the account still exists with the same role and
// password. Nothing else is accepted: an Authorization header (a join token
// sent as bearer, say) is ignored, so it fails as unauthenticated.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (caller, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return caller{}, errUnauthenticated()
	}
	sess, err := s.cookies.decode(ck.Value, s.clock.Now())
	if err != nil {
		s.clearCookie(w)
		e := errUnauthenticated()
		e.Cause = err
		return caller{}, e
	}
	if stateChanging(r.Method) {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
			return caller{}, newError(http.StatusForbidden, CodeCSRF,
				"安全校验失败，请刷新页面后重试", "missing or wrong "+CSRFHeader+" header; reload the page")
		}
	}
	a, err := s.store.GetAccountByID(r.Context(), sess.Sub)
	if errors.Is(err, rooms.ErrNotFound) {
		s.clearCookie(w)
		return caller{}, errUnauthenticated()
	}
	if err != nil {
		return caller{}, err
	}
	// A role change or password reset since sign-in ends the sign-in.
	if a.Role != sess.Role || s.cookies.passwordFingerprint(a.PasswordHash) != sess.PW {
		s.clearCookie(w)
		e := errUnauthenticated()
		e.Zh, e.En = "账号信息已变更，请重新登录", "the account changed since you signed in; sign in again"
		return caller{}, e
	}
	a.PasswordHash = ""
	return caller{acct: a, csrf: sess.CSRF, exp: time.Unix(sess.Exp, 0)}, nil
}

func stateChanging(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

func (s *Server) setCookie(w http.ResponseWriter, value string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		Expires:  exp,
		MaxAge:   int(exp.Sub(s.clock.Now()) / time.Second),
		HttpOnly: true,
		Secure:   s.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
}

type accountView struct {
	ID          string     `json:"id"`
	Username    string     `json:"username"`
	DisplayName string     `json:"displayName"`
	Role        rooms.Role `json:"role"`
}

func viewAccount(a rooms.Account) accountView {
	return accountView{ID: a.ID, Username: a.Username, DisplayName: a.DisplayName, Role: a.Role}
}

type authResponse struct {
	Account   accountView `json:"account"`
	CSRFToken string      `json:"csrfToken"`
	ExpiresAt time.Time   `json:"expiresAt"`
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// login signs a user in. It needs no CSRF token (there is no session yet);
// the JSON content type it requires cannot be sent cross-site without a
// preflight, and the cookie is SameSite=Strict.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Username == "" || req.Password == "" {
		s.fail(w, r, errValidation("username", "请输入用户名和密码", "username and password are required"))
		return
	}
	if len(req.Username) > 4*rooms.MaxUsernameLen {
		// No such account can exist; do not carry the string to the store.
		s.fail(w, r, accounts.ErrBadCredentials)
		return
	}
	a, err := s.cfg.Accounts.Authenticate(r.Context(), req.Username, req.Password)
	if errors.Is(err, accounts.ErrLocked) {
		s.log.Warn("sign-in refused: account locked", "username", accounts.NormalizeUsername(req.Username), "remote", r.RemoteAddr)
		s.fail(w, r, s.lockedError(r, req.Username, err))
		return
	}
	if err != nil {
		if errors.Is(err, accounts.ErrBadCredentials) {
			s.log.Info("sign-in failed", "username", accounts.NormalizeUsername(req.Username), "remote", r.RemoteAddr)
		}
		s.fail(w, r, err)
		return
	}
	now := s.clock.Now()
	exp := now.Add(SessionLifetime).Truncate(time.Second)
	sess := cookieSession{
		V:    1,
		Sub:  a.ID,
		Role: a.Role,
		Exp:  exp.Unix(),
		CSRF: newCSRFToken(),
		PW:   s.cookies.passwordFingerprint(a.PasswordHash),
	}
	v, err := s.cookies.encode(sess)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.setCookie(w, v, exp)
	s.log.Info("signed in", "username", a.Username, "role", a.Role, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, authResponse{Account: viewAccount(a), CSRFToken: sess.CSRF, ExpiresAt: exp})
}

// lockedError builds the 423 answer with the time left on the lock.
func (s *Server) lockedError(r *http.Request, username string, cause error) *Error {
	e := newError(http.StatusLocked, CodeAccountLocked,
		"密码错误次数过多，账号已暂时锁定，请稍后再试或联系管理员重置密码",
		"too many failed sign-ins: the account is locked for a while; try later or ask an administrator to reset the password")
	e.Cause = cause
	if a, err := s.store.GetAccount(r.Context(), accounts.NormalizeUsername(username)); err == nil {
		e.RetryAfter = a.LockedUntil.Sub(s.clock.Now())
	}
	if e.RetryAfter <= 0 {
		e.RetryAfter = time.Minute
	}
	return e
}

// logout clears the cookie. With a valid session it needs the CSRF token,
// so another site cannot sign users out; without one it just clears. The
// cookie is stateless: a copy taken before logout stays valid until it
// expires or the password is changed.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(CookieName); err == nil {
		if sess, err := s.cookies.decode(ck.Value, s.clock.Now()); err == nil {
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(sess.CSRF)) != 1 {
				s.fail(w, r, newError(http.StatusForbidden, CodeCSRF,
					"安全校验失败，请刷新页面后重试", "missing or wrong "+CSRFHeader+" header; reload the page"))
				return
			}
		}
	}
	s.clearCookie(w)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// me answers who is signed in, with the CSRF token: the cookie is HttpOnly,
// so a reloaded page learns the token here.
func (s *Server) me(w http.ResponseWriter, r *http.Request, c caller) error {
	writeJSON(w, http.StatusOK, authResponse{Account: viewAccount(c.acct), CSRFToken: c.csrf, ExpiresAt: c.exp})
	return nil
}
