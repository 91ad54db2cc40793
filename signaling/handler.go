package signaling

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocol is the optional websocket subprotocol of version 1.
const Subprotocol = "ducha.v1"

// Handler serves the signaling websocket. Mount it at /ws.
type Handler struct {
	cfg      Config
	lim      Limits
	log      *slog.Logger
	now      func() time.Time
	origins  map[string]bool
	ice      []ICEServer
	upgrader websocket.Upgrader

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
	wg       sync.WaitGroup

	st counters
}

type counters struct {
	connsOpen, connsTotal, joins              atomic.Int64
	messagesIn, messagesOut, errors           atomic.Int64
	rateLimited, slowConsumers, originRefused atomic.Int64
}

// Stats is a snapshot of the handler's counters.
type Stats struct {
	ConnectionsOpen  int64 // websockets open now
	ConnectionsTotal int64 // websockets accepted since start
	Joins            int64 // successful joins since start
	MessagesIn       int64 // frames read (including refused ones)
	MessagesOut      int64 // messages written
	Errors           int64 // `error` messages sent
	RateLimited      int64 // messages dropped by the rate limit
	SlowConsumers    int64 // connections closed because their queue overflowed
	OriginRefused    int64 // upgrades refused for their Origin
}

// NewHandler checks cfg and returns a Handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Conference == nil {
		return nil, fmt.Errorf("%w: Conference is nil", ErrConfig)
	}
	if cfg.Tokens == nil {
		return nil, fmt.Errorf("%w: Tokens is nil", ErrConfig)
	}
	lim, err := cfg.Limits.withDefaults()
	if err != nil {
		return nil, err
	}
	origins := make(map[string]bool, len(cfg.AllowedOrigins))
	for _, o := range cfg.AllowedOrigins {
		n, ok := normalizeOrigin(o)
		if !ok {
			return nil, fmt.Errorf("%w: allowed origin %q is not scheme://host[:port]", ErrConfig, o)
		}
		origins[n] = true
	}
	h := &Handler{
		cfg:     cfg,
		lim:     lim,
		log:     cfg.Logger,
		now:     cfg.Now,
		origins: origins,
		ice:     browserICEServers(cfg.ICEServers),
		conns:   make(map[*conn]struct{}),
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.log = h.log.With("component", "signaling")
	if h.now == nil {
		h.now = time.Now
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
		Subprotocols:     []string{Subprotocol},
		// ServeHTTP has checked the Origin already, with its own answer.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h, nil
}

// Stats returns the current counters.
func (h *Handler) Stats() Stats {
	return Stats{
		ConnectionsOpen:  h.st.connsOpen.Load(),
		ConnectionsTotal: h.st.connsTotal.Load(),
		Joins:            h.st.joins.Load(),
		MessagesIn:       h.st.messagesIn.Load(),
		MessagesOut:      h.st.messagesOut.Load(),
		Errors:           h.st.errors.Load(),
		RateLimited:      h.st.rateLimited.Load(),
		SlowConsumers:    h.st.slowConsumers.Load(),
		OriginRefused:    h.st.originRefused.Load(),
	}
}

// ServeHTTP upgrades the request and serves the connection until it ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.originAllowed(r) {
		h.st.originRefused.Add(1)
		h.log.Warn("refused websocket from foreign origin", "origin", r.Header.Get("Origin"), "host", r.Host,
			"remote", r.RemoteAddr)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	h.mu.Lock()
	down := h.shutdown
	h.mu.Unlock()
	if down {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the request.
		h.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := newConn(h, ws, h.log.With("remote", r.RemoteAddr))
	if !h.track(c) {
		ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutdown"),
			time.Now().Add(time.Second))
		ws.Close()
		return
	}
	c.run()
}

// track registers c unless the handler is shutting down. Registration and
// the shutdown flag share the lock so Shutdown's wait covers every
// connection it did not refuse.
func (h *Handler) track(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutdown {
		return false
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	h.st.connsOpen.Add(1)
	h.st.connsTotal.Add(1)
	return true
}

func (h *Handler) untrack(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.st.connsOpen.Add(-1)
	h.wg.Done()
}

// Shutdown refuses new connections, sends `closed` {reason:
// "server_shutdown"} to every client, closes their sockets and waits for
// every connection's goroutines to end. When ctx ends first, the remaining
// sockets are cut and ctx's error returned.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.shutdown = true
	for c := range h.conns {
		c.closeWithReason(ReasonServerShutdown)
	}
	h.mu.Unlock()

	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	for c := range h.conns {
		c.ws.Close()
	}
	h.mu.Unlock()
	return fmt.Errorf("%w: %w", ErrShutdown, ctx.Err())
}

// originAllowed applies the browser Origin rule: no Origin (not a browser),
// the page's own host, or a configured origin.
func (h *Handler) originAllowed(r *http.Request) bool {
	vals := r.Header.Values("Origin")
	if len(vals) == 0 {
		return true
	}
	if len(vals) > 1 {
		return false
	}
	u, err := url.Parse(vals[0])
	if err != nil || u.Host == "" {
		return false // includes "null", sent by sandboxed frames and file pages
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	n, ok := normalizeOrigin(vals[0])
	return ok && h.origins[n]
}

// normalizeOrigin returns scheme://host[:port] in lower case.
func normalizeOrigin(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), true
}
