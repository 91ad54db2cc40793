package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// MaxBodyBytes caps request bodies; the largest legitimate one (a session
// with a few hundred invited units) is well under it.
const MaxBodyBytes = 64 << 10

// decodeJSON reads exactly one JSON object from the body into v, refusing
// unknown fields, trailing data, bodies over MaxBodyBytes and other content
// types. Requiring application/json also keeps cross-site HTML forms out:
// browsers cannot send that type to another origin without a preflight.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return jsonError(err)
		}
		return newError(http.StatusBadRequest, CodeBadJSON, "请求体只能包含一个 JSON 对象", "the body must hold exactly one JSON object")
	}
	return nil
}

func requireJSON(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return newError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia,
			"请求体必须是 JSON（Content-Type: application/json）", "the body must be JSON (Content-Type: application/json)")
	}
	return nil
}

func jsonError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		typeErr  *json.UnmarshalTypeError
		syntax   *json.SyntaxError
	)
	switch {
	case errors.As(err, &tooLarge):
		return newError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
			"请求体过大（上限 64 KiB）", "the body is larger than 64 KiB")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		return errValidation(field, "字段 "+field+" 的类型不正确", "field "+field+" has the wrong type")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this one; its message is
		// stable: json: unknown field "name".
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		e := newError(http.StatusBadRequest, CodeUnknownField, "未知字段 "+field, "unknown field "+field)
		e.Field = field
		return e
	case errors.As(err, &syntax), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return newError(http.StatusBadRequest, CodeBadJSON, "请求体不是有效的 JSON", "the body is not valid JSON")
	}
	return newError(http.StatusBadRequest, CodeBadJSON, "请求体不是有效的 JSON", "the body is not valid JSON: "+err.Error())
}

// writeJSON sends v with status. API answers are never cached: they hold
// per-user data and sometimes join links.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	msg := e.Zh
	if prefersEnglish(r) {
		msg = e.En
	}
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(w, e.Status, errorBody{Error: errorDetail{Code: e.Code, Message: msg, Field: e.Field}})
}

// prefersEnglish reports whether the client asked for English before
// Chinese. Chinese is the default: most callers are the console in zh-CN.
func prefersEnglish(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return false
		case strings.HasPrefix(tag, "en"):
			return true
		}
	}
	return false
}
