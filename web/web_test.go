package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutes(t *testing.T) {
	h := Handler()
	cases := []struct {
		path, wantType, wantBody string
	}{
		{"/", "text/html; charset=utf-8", "请使用会议邀请链接加入"},
		{"/join/room-1", "text/html; charset=utf-8", `src="/static/main.js"`},
		{"/join/%E7%9D%A3%E6%9F%A5-7", "text/html; charset=utf-8", `src="/static/main.js"`},
		{"/static/main.js", "text/javascript; charset=utf-8", "__ducha"},
		{"/static/i18n.js", "text/javascript; charset=utf-8", "摄像头或麦克风被其他程序占用，请关闭其他程序后重试"},
		{"/static/style.css", "text/css; charset=utf-8", ".tile"},
		{"/static/favicon.svg", "image/svg+xml", "<svg"},
		{"/console/", "text/html; charset=utf-8", `src="/static/console/app.js"`},
		{"/console/sessions/XS3TJPABN5VKKJ2JHN3MLOV4DK", "text/html; charset=utf-8", `src="/static/console/app.js"`},
		{"/console/report.html?session=XS3TJPABN5VKKJ2JHN3MLOV4DK", "text/html; charset=utf-8", `src="/static/console/report.js"`},
		{"/static/console/app.js", "text/javascript; charset=utf-8", "mountSession"},
		{"/static/console/console.css", "text/css; charset=utf-8", ".rec-dot"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, c.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != c.wantType {
				t.Errorf("Content-Type %q, want %q", got, c.wantType)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			if b := body(t, res); !strings.Contains(b, c.wantBody) {
				t.Errorf("body lacks %q", c.wantBody)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/join/", "/join", "/join/a/b", "/static/", "/static/nope.js", "/static/../web.go", "/index.html", "/ws-not-here",
		"/console/app.js", "/console/nope.html", "/console/a/report.html", "/console/../web.go"} {
		res := get(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusTemporaryRedirect {
			t.Errorf("%s: status %d, want 404 (or 307 to the cleaned path)", p, res.StatusCode)
		}
		if res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: error response without CSP", p)
		}
	}
	if res := get(t, h, http.MethodPost, "/", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", res.StatusCode)
	}
	res := get(t, h, http.MethodGet, "/console", nil)
	if res.StatusCode/100 != 3 || res.Header.Get("Location") != "/console/" {
		t.Errorf("GET /console: status %d, Location %q, want a redirect to /console/", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/", "/join/r", "/static/main.js"} {
		res := get(t, h, http.MethodGet, p, nil)
		want := map[string]string{
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"Content-Security-Policy": ContentSecurityPolicy,
		}
		for k, v := range want {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", p, k, got, v)
			}
		}
	}
	for _, must := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self' ws: wss:", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, must) {
			t.Errorf("CSP lacks %q", must)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %s", ContentSecurityPolicy)
	}
}

func TestHeadAndConditional(t *testing.T) {
	h := Handler()
	res := get(t, h, http.MethodHead, "/static/main.js", nil)
	if res.StatusCode != http.StatusOK || body(t, res) != "" || res.Header.Get("Content-Length") == "" {
		t.Fatalf("HEAD: status %d, length %q", res.StatusCode, res.Header.Get("Content-Length"))
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	res = get(t, h, http.MethodGet, "/static/main.js", map[string]string{"If-None-Match": `"other", ` + etag})
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match with current ETag: status %d, want 304", res.StatusCode)
	}
	res = get(t, h, http.MethodGet, "/static/main.js", map[string]string{"If-None-Match": `"stale"`})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("If-None-Match with stale ETag: status %d, want 200", res.StatusCode)
	}
}

func staticFiles(t *testing.T, ext string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ext) {
			return err
		}
		b, err := staticFS.ReadFile(p)
		out[strings.TrimPrefix(p, "static/")] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The CSP forbids inline script and style; a page that used them would
// silently break in the browser, so catch it here.
func TestPagesNeedNoInlineCode(t *testing.T) {
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	for name, html := range staticFiles(t, ".html") {
		if inlineScript.MatchString(html) {
			t.Errorf("%s has an inline <script>", name)
		}
		for _, bad := range []string{" style=", "<style", " onclick=", " onload=", "javascript:"} {
			if strings.Contains(html, bad) {
				t.Errorf("%s contains %q, which the CSP blocks", name, bad)
			}
		}
	}
}

// Every relative import and every /static/ reference must resolve to an
// embedded file: a typo would only show up as a blank page.
func TestReferencesResolve(t *testing.T) {
	h := Handler()
	importRe := regexp.MustCompile(`(?m)^\s*import\s[^;]*?from\s+'\./([^']+)'`)
	for name, js := range staticFiles(t, ".js") {
		for _, m := range importRe.FindAllStringSubmatch(js, -1) {
			target := path.Join(path.Dir(name), m[1])
			if res := get(t, h, http.MethodGet, "/static/"+target, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s imports %s: status %d", name, m[1], res.StatusCode)
			}
		}
	}
	refRe := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)
	for name, html := range staticFiles(t, ".html") {
		for _, m := range refRe.FindAllStringSubmatch(html, -1) {
			if res := get(t, h, http.MethodGet, m[1], nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s references %s: status %d", name, m[1], res.StatusCode)
			}
		}
	}
}

func dictKeys(t *testing.T, src, start string) map[string]bool {
	t.Helper()
	i := strings.Index(src, start)
	if i < 0 {
		t.Fatalf("i18n.js: %q not found", start)
	}
	block := src[i:]
	block = block[:strings.Index(block, "\n};")]
	keys := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*'([\w.]+)':`).FindAllStringSubmatch(block, -1) {
		keys[m[1]] = true
	}
	return keys
}

// Both languages must carry the same keys, and every key the call pages use
// must exist, or a user sees a raw key such as "err.deviceBusy". The console
// (console/) keeps its own dictionary, checked below.
func TestI18nComplete(t *testing.T) {
	i18nComplete(t, "i18n.js", func(name string) bool { return !strings.Contains(name, "/") },
		`'((?:app|landing|lang|room|role|btn|tile|members|status|banner|toast|err|left|lobby|chat|mod|rec)\.[A-Za-z]+)'`)
}

// The console has its own dictionary (console/i18n.js) and key namespaces.
func TestConsoleI18nComplete(t *testing.T) {
	i18nComplete(t, "console/i18n.js", func(name string) bool { return strings.HasPrefix(name, "console/") },
		`'((?:con|nav|login|prole|st|list|form|sess|inv|lobby|part|att|ev|ov|rep|dur|cerr)\.[A-Za-z_.]+)'`)
}

// i18nComplete checks one dictionary file against the pages it serves
// (mine picks them by path); usedPattern finds the keys quoted in scripts.
func i18nComplete(t *testing.T, dictFile string, mine func(string) bool, usedPattern string) {
	t.Helper()
	src := staticFiles(t, ".js")[dictFile]
	zh, en := dictKeys(t, src, "const zh = {"), dictKeys(t, src, "const en = {")
	if len(zh) < 40 {
		t.Fatalf("only %d zh keys parsed", len(zh))
	}
	var diff []string
	for k := range zh {
		if !en[k] {
			diff = append(diff, "en lacks "+k)
		}
	}
	for k := range en {
		if !zh[k] {
			diff = append(diff, "zh lacks "+k)
		}
	}
	sort.Strings(diff)
	for _, d := range diff {
		t.Error(d)
	}
	used := regexp.MustCompile(usedPattern)
	attr := regexp.MustCompile(`data-i18n(?:-[a-z-]+)?="([\w.]+)"`)
	check := func(file string, keys [][]string) {
		for _, m := range keys {
			if !zh[m[1]] {
				t.Errorf("%s uses unknown key %s", file, m[1])
			}
		}
	}
	for name, js := range staticFiles(t, ".js") {
		if name != dictFile && mine(name) {
			check(name, used.FindAllStringSubmatch(js, -1))
		}
	}
	for name, html := range staticFiles(t, ".html") {
		if mine(name) {
			check(name, attr.FindAllStringSubmatch(html, -1))
		}
	}
}

func TestReplayRedirect(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/replay/", nil))
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/static/replay/index.html" {
		t.Fatalf("GET /replay/: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}
