// Package web serves ducha's browser pages: the landing page, the join page
// opened from an invitation link, and the ES modules behind them. The files
// are embedded so the single ducha binary carries its own client.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var staticFS embed.FS

// ContentSecurityPolicy is sent with every response. Scripts and styles come
// only from this origin (no inline code, so an injected name in a tile cannot
// run); the websocket may use ws: or wss: because deployments put ducha both
// behind TLS terminators and on plain intranet HTTP.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob: mediastream:; font-src 'self'; " +
	"connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; " +
	"frame-ancestors 'none'"

// contentType is fixed here rather than taken from the mime package, whose
// table is extended from /etc/mime.types and so differs between machines.
func contentType(name string, body []byte) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".json":
		return "application/json"
	}
	return http.DetectContentType(body)
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

type handler struct {
	assets map[string]asset // keyed by path below static/, e.g. "join.html"
	mux    *http.ServeMux
}

// Handler returns the handler for the pages:
//
//	GET /               the landing page
//	GET /join/{room}    the join page (room and token are read by the page itself)
//	GET /console/       the supervisor console (it routes by the URL fragment)
//	GET /console/x.html another console page, e.g. report.html?session=ID
//	GET /static/...     the embedded files
//
// Anything else is 404. Mount it at "/" beside /ws and the API routes.
func Handler() http.Handler {
	h := &handler{assets: loadAssets(), mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.page("index.html"))
	h.mux.HandleFunc("GET /join/{room}", h.page("join.html"))
	// "/console" alone is redirected here by the mux.
	h.mux.HandleFunc("GET /console/{path...}", h.console)
	// The auditors' replay page lives with its modules under /static/replay/.
	h.mux.Handle("GET /replay/", http.RedirectHandler("/static/replay/index.html", http.StatusFound))
	h.mux.HandleFunc("GET /static/{file...}", h.static)
	return h
}

func loadAssets() map[string]asset {
	out := make(map[string]asset)
	// The embedded tree is fixed at build time, so a walk error is a broken
	// build, not a runtime condition; it surfaces as 404s and in the tests.
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[strings.TrimPrefix(p, "static/")] = asset{
			body:        body,
			contentType: contentType(p, body),
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	return out
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	// The join token travels in the URL fragment, which browsers never send;
	// no-referrer also keeps the room id in the path from leaking to anything
	// the page links to.
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
	h.mux.ServeHTTP(w, r)
}

func (h *handler) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, name) }
}

// console serves the console's pages. Its screens are routed by the URL
// fragment, so any other extension-less path (a bookmark of an older
// layout, a typed URL) gets the console too rather than a bare 404; files
// with an extension must exist, so a broken link to one stays visible.
func (h *handler) console(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("path")
	switch {
	case name == "" || (path.Ext(name) == "" && !strings.Contains(name, "..")):
		h.serve(w, r, "console/index.html")
	case path.Ext(name) == ".html" && !strings.Contains(name, "/"):
		h.serve(w, r, "console/"+name)
	default:
		http.NotFound(w, r)
	}
}

func (h *handler) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" || strings.Contains(name, "..") {
		http.NotFound(w, r)
		return
	}
	h.serve(w, r, name)
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	// Every file, not only HTML, is revalidated: there is no build step that
	// fingerprints file names, so a cached module from the previous release
	// could otherwise be mixed with a new page. The ETag keeps that cheap.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", fmt.Sprint(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = bytes.NewReader(a.body).WriteTo(w)
	}
}

func etagMatches(header, etag string) bool {
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}
