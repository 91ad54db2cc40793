package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/accounts"
)

type adminAccountView struct {
	accountView
	LockedUntil time.Time `json:"lockedUntil,omitzero"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func (s *Server) adminView(a rooms.Account) adminAccountView {
	v := adminAccountView{accountView: viewAccount(a), CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if s.clock.Now().Before(a.LockedUntil) {
		v.LockedUntil = a.LockedUntil
	}
	return v
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request, _ caller) error {
	as, err := s.store.ListAccounts(r.Context())
	if err != nil {
		return err
	}
	out := make([]adminAccountView, 0, len(as))
	for _, a := range as {
		out = append(out, s.adminView(a))
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": out})
	return nil
}

type createAccountRequest struct {
	Username    string     `json:"username"`
	DisplayName string     `json:"displayName"`
	Role        rooms.Role `json:"role"`
	Password    string     `json:"password"`
}

// checkAccountInput validates what a person typed for a new account, with
// messages that say what to fix; the store validates again.
func checkAccountInput(username, displayName string, role rooms.Role, password string) error {
	u := accounts.NormalizeUsername(username)
	probe := rooms.Account{ID: "x", Username: u, Role: rooms.RoleAdmin, PasswordHash: "x"}
	if probe.Validate() != nil {
		return errValidation("username", "用户名应为 1 到 64 个小写字母、数字或 . - _", "username must be 1 to 64 of a-z 0-9 . - _")
	}
	if err := checkText("displayName", displayName, 1, rooms.MaxNameLen, "姓名"); err != nil {
		return err
	}
	if !role.AccountRole() {
		return errValidation("role", "角色应为 supervisor、auditor 或 admin", "role must be supervisor, auditor or admin")
	}
	if len(password) < accounts.MinPasswordLen || len(password) > accounts.MaxPasswordLen {
		return errValidation("password", "密码至少 8 个字符", "the password must have 8 to 1024 bytes")
	}
	return nil
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	var req createAccountRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	req.DisplayName = strings.TrimSpace(req.DisplayName)
	if err := checkAccountInput(req.Username, req.DisplayName, req.Role, req.Password); err != nil {
		return err
	}
	a, err := s.cfg.Accounts.Create(r.Context(), req.Username, req.DisplayName, req.Role, req.Password)
	if errors.Is(err, rooms.ErrExists) {
		e := errConflict("用户名已被使用", "this username is taken")
		e.Field = "username"
		return e
	}
	if err != nil {
		return err
	}
	s.log.Info("account created from the console", "username", a.Username, "role", a.Role, "by", c.acct.Username)
	writeJSON(w, http.StatusCreated, s.adminView(a))
	return nil
}

type resetPasswordRequest struct {
	Password string `json:"password"`
}

// resetPassword sets a new password, which also lifts a lockout and signs
// out the account's existing cookies.
func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, c caller) error {
	username := accounts.NormalizeUsername(r.PathValue("username"))
	var req resetPasswordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if len(req.Password) < accounts.MinPasswordLen || len(req.Password) > accounts.MaxPasswordLen {
		return errValidation("password", "密码至少 8 个字符", "the password must have 8 to 1024 bytes")
	}
	if err := s.cfg.Accounts.SetPassword(r.Context(), username, req.Password); err != nil {
		if errors.Is(err, rooms.ErrNotFound) {
			return errNotFound("账号不存在", "no such account")
		}
		return err
	}
	a, err := s.store.GetAccount(r.Context(), username)
	if err != nil {
		return err
	}
	s.log.Info("password reset from the console", "username", a.Username, "by", c.acct.Username)
	writeJSON(w, http.StatusOK, s.adminView(a))
	return nil
}
