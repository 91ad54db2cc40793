package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/accounts"
)

// Sentinel errors of the package.
var (
	// ErrConfig means New was given an unusable Config.
	ErrConfig = errors.New("httpapi: invalid config")
	// ErrBadCookie means a session cookie is malformed, forged or expired.
	ErrBadCookie = errors.New("httpapi: invalid session cookie")
	// ErrKeyFile means the cookie key file exists but cannot be used.
	ErrKeyFile = errors.New("httpapi: unusable cookie key file")
)

// Stable error codes of the API (docs/api.md lists them with their status).
const (
	CodeBadJSON            = "bad_json"
	CodeUnknownField       = "unknown_field"
	CodeBodyTooLarge       = "body_too_large"
	CodeUnsupportedMedia   = "unsupported_media_type"
	CodeValidation         = "validation"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeForbidden          = "forbidden"
	CodeUnauthenticated    = "unauthenticated"
	CodeCSRF               = "csrf"
	CodeConflict           = "conflict"
	CodeInvalidTransition  = "invalid_transition"
	CodePreconditionFailed = "precondition_failed"
	CodeBadCredentials     = "bad_credentials"
	CodeAccountLocked      = "account_locked"
	CodeBadAction          = "bad_action"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
)

// Error is an API error with its HTTP status, stable code and a message in
// both console languages. Handlers return it for failures that are the
// caller's to fix; anything else is mapped by toAPIError.
type Error struct {
	Status int
	Code   string
	// Field names the request field at fault (validation, unknown_field).
	Field string
	Zh    string
	En    string
	// RetryAfter is sent as a Retry-After header when positive.
	RetryAfter time.Duration
	// Cause is logged, never sent.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.En, e.Cause)
	}
	return e.Code + ": " + e.En
}

func (e *Error) Unwrap() error { return e.Cause }

func newError(status int, code, zh, en string) *Error {
	return &Error{Status: status, Code: code, Zh: zh, En: en}
}

func errValidation(field, zh, en string) *Error {
	e := newError(http.StatusUnprocessableEntity, CodeValidation, zh, en)
	e.Field = field
	return e
}

func errNotFound(zh, en string) *Error { return newError(http.StatusNotFound, CodeNotFound, zh, en) }

func errForbidden() *Error {
	return newError(http.StatusForbidden, CodeForbidden, "您没有执行此操作的权限", "you are not allowed to do this")
}

func errUnauthenticated() *Error {
	return newError(http.StatusUnauthorized, CodeUnauthenticated, "请先登录", "sign in first")
}

func errConflict(zh, en string) *Error { return newError(http.StatusConflict, CodeConflict, zh, en) }

func errSessionFinal() *Error {
	return errConflict("会话已结束或已取消，不能再修改", "the session has ended or was cancelled and cannot be changed")
}

func errSessionNotFound() *Error { return errNotFound("会话不存在", "no such session") }

// toAPIError maps any error a handler returns to the error sent. badAction
// is the live controller's "unknown action or target" error (Config).
func toAPIError(err error, badAction error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	wrap := func(status int, code, zh, en string) *Error {
		e := newError(status, code, zh, en)
		e.Cause = err
		return e
	}
	switch {
	case badAction != nil && errors.Is(err, badAction):
		return wrap(http.StatusUnprocessableEntity, CodeBadAction, "无法执行该操作：操作或对象无效", "unknown action or target")
	case errors.Is(err, rooms.ErrNotFound):
		return wrap(http.StatusNotFound, CodeNotFound, "对象不存在", "not found")
	case errors.Is(err, rooms.ErrInvalidTransition):
		return wrap(http.StatusConflict, CodeInvalidTransition, "会话当前状态不允许此操作", "the session's status does not allow this")
	case errors.Is(err, rooms.ErrSessionEnded):
		return wrap(http.StatusConflict, CodeConflict, "会话已结束或已取消", "the session has ended or was cancelled")
	case errors.Is(err, rooms.ErrExists):
		return wrap(http.StatusConflict, CodeConflict, "已存在同名对象", "it already exists")
	case errors.Is(err, rooms.ErrConflict):
		return wrap(http.StatusConflict, CodeConflict, "同时修改的人太多，请重试", "too many concurrent changes, try again")
	case errors.Is(err, rooms.ErrInvalid):
		return wrap(http.StatusUnprocessableEntity, CodeValidation, "输入不符合要求："+err.Error(), "invalid input: "+err.Error())
	case errors.Is(err, accounts.ErrBadCredentials):
		return wrap(http.StatusUnauthorized, CodeBadCredentials, "用户名或密码错误", "wrong username or password")
	case errors.Is(err, rooms.ErrUnavailable), errors.Is(err, rooms.ErrQueueFull), errors.Is(err, rooms.ErrClosed):
		e := wrap(http.StatusServiceUnavailable, CodeUnavailable, "数据存储暂时不可用，请稍后重试", "the data store is unavailable, try again shortly")
		e.RetryAfter = 5 * time.Second
		return e
	}
	return wrap(http.StatusInternalServerError, CodeInternal, "服务器内部错误，请稍后重试或联系管理员", "internal server error; try again or contact the administrator")
}
