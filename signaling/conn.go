package signaling

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/token"
)

// Join progress, shared between the reader and the writer, which keeps
// the join deadline.
const (
	joinNone int32 = iota
	joinBusy
	joinDone
	joinTimedOut
)

// conn is one websocket connection. The reader goroutine (readLoop) owns the
// protocol state; the writer goroutine (writeLoop) owns the socket's write
// side; everything else talks to them through the outbound queue and
// requestClose.
type conn struct {
	h       *Handler
	ws      *websocket.Conn
	logp    atomic.Pointer[slog.Logger] // gains participant attributes on join
	lim     Limits
	now     func() time.Time
	started time.Time

	out        chan outMsg
	closeOnce  sync.Once
	closeReq   chan struct{} // closed by the first requestClose
	closeMsg   closeRequest  // set before closeReq is closed
	readerDone chan struct{}
	writerDone chan struct{}

	dlMu      sync.Mutex // orders read-deadline changes between reader and writer
	closeSent bool

	joinState atomic.Int32

	// Owned by the reader goroutine.
	session Session
	left    bool
	badRun  int
	bucket  *bucket
	flood   flood
	readErr error
}

func newConn(h *Handler, ws *websocket.Conn, log *slog.Logger) *conn {
	now := h.now()
	c := &conn{
		h:          h,
		ws:         ws,
		lim:        h.lim,
		now:        h.now,
		started:    time.Now(),
		out:        make(chan outMsg, h.lim.OutboundQueue),
		closeReq:   make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		bucket:     newBucket(h.lim.MessagesPerSecond, h.lim.Burst, now),
		flood:      flood{gap: h.lim.FloodGap, limit: h.lim.FloodClose, errEvery: time.Second},
	}
	c.logp.Store(log)
	return c
}

func (c *conn) lg() *slog.Logger { return c.logp.Load() }

// run serves the connection until it ends; it is the reader goroutine.
func (c *conn) run() {
	c.ws.SetReadDeadline(time.Now().Add(c.lim.IdleTimeout))
	c.ws.SetPongHandler(func(string) error { c.extendReadDeadline(); return nil })
	c.ws.SetPingHandler(func(data string) error {
		c.extendReadDeadline()
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.lim.WriteTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			c.lg().Debug("pong write failed", "err", err)
		}
		return nil
	})
	go c.writeLoop()
	c.readLoop()
	c.cleanup()
}

func (c *conn) readLoop() {
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.readErr = err
			return
		}
		c.extendReadDeadline()
		if c.closing() {
			// Keep reading only to receive the peer's close frame.
			continue
		}
		b, err := readLimited(r, c.lim.MaxMessageBytes)
		if errors.Is(err, errTooLarge) {
			c.fail(CodeMessageTooLarge, fmt.Sprintf("frames are limited to %d bytes", c.lim.MaxMessageBytes), "",
				websocket.CloseMessageTooBig, "message too large")
			continue
		}
		if err != nil {
			c.readErr = err
			return
		}
		c.h.st.messagesIn.Add(1)
		if now := c.now(); !c.bucket.allow(now) {
			c.rateLimited(now)
			continue
		}
		if typ != websocket.TextMessage {
			c.badMessage("", "frames must be UTF-8 text holding one JSON object")
			continue
		}
		c.handle(b)
	}
}

// readLimited reads one message, refusing to buffer more than max bytes of
// it whatever its frames claim.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errTooLarge
	}
	return b, nil
}

func (c *conn) handle(b []byte) {
	env, err := DecodeEnvelope(b)
	if err != nil {
		c.badMessage(env.ID, detail(err))
		return
	}
	if !KnownType(env.Type) {
		c.badRun = 0
		c.sendError(CodeUnknownType, fmt.Sprintf("unknown message type %q", truncate(env.Type, 32)), env.ID)
		return
	}
	if env.Type != TypeJoin && env.Type != TypePing && c.session == nil {
		c.badRun = 0
		c.sendError(CodeNotJoined, "send join first", env.ID)
		return
	}
	v, err := DecodeData(env)
	if err != nil {
		c.badMessage(env.ID, detail(err))
		return
	}
	c.badRun = 0
	switch m := v.(type) {
	case Join:
		c.join(env.ID, m)
	case Offer:
		c.sessionResult(env.ID, c.session.HandleOffer(m.SDP, m.Sources))
	case Answer:
		c.sessionResult(env.ID, c.session.HandleAnswer(m.SDP))
	case webrtc.ICECandidateInit:
		c.sessionResult(env.ID, c.session.AddCandidate(m))
	case Mute:
		c.sessionResult(env.ID, c.session.SetMuted(m.Kind, m.Muted))
	case VideoSize:
		c.sessionResult(env.ID, c.session.SetVideoSize(m.Track, m.Width, m.Height))
	case Chat:
		c.sessionResult(env.ID, c.session.Chat(m.Text))
	case Moderate:
		c.sessionResult(env.ID, c.session.Moderate(m.Action, m.Target))
	case Empty:
		if env.Type == TypePing {
			c.enqueue(outMsg{Type: TypePong, Data: Empty{}})
			return
		}
		c.leave()
	}
}

func (c *conn) join(ref string, m Join) {
	if c.session != nil {
		c.sendError(CodeAlreadyJoined, "this connection has already joined", ref)
		return
	}
	if m.Version != ProtocolVersion {
		c.fail(CodeUnsupportedVersion, fmt.Sprintf("protocol version %d is not supported; this server speaks %d",
			m.Version, ProtocolVersion), ref, CloseProtocol, "unsupported version")
		return
	}
	if !c.joinState.CompareAndSwap(joinNone, joinBusy) {
		return // the join timer won; the connection is closing
	}
	ok := false
	defer func() {
		if ok {
			return
		}
		c.joinState.Store(joinNone)
		// A join that failed without closing leaves the client free to try
		// again, but not beyond the join deadline.
		if time.Since(c.started) >= c.lim.JoinTimeout {
			c.onJoinTimeout()
		}
	}()

	claims, err := c.h.cfg.Tokens.Verify(m.Token, m.Room)
	if err != nil {
		code, msg := tokenError(err)
		c.lg().Info("join refused", "room", m.Room, "code", code, "err", err)
		c.fail(code, msg, ref, CloseBadToken, code)
		return
	}
	id, err := newParticipantID()
	if err != nil {
		c.internal(ref, err)
		return
	}
	info := sfu.ParticipantInfo{ID: id, Identity: claims.Identity, Name: claims.Name, Role: claims.Role,
		Unit: claims.Unit, Invitation: claims.Invitation}
	n := newNotifier(c, m.Room)
	sess, res, err := c.h.cfg.Conference.Join(m.Room, info, n)
	if err != nil {
		n.discard()
		c.lg().Info("conference refused join", "room", m.Room, "identity", claims.Identity, "err", err)
		c.joinRefused(ref, err)
		return
	}
	if sess == nil {
		n.discard()
		c.internal(ref, errors.New("conference returned a nil session"))
		return
	}
	ok = true
	c.session = sess
	c.joinState.Store(joinDone)
	c.logp.Store(c.lg().With("room", m.Room, "participant", id, "identity", claims.Identity, "role", claims.Role))
	c.h.st.joins.Add(1)

	if res.Self.ID == "" {
		res.Self.ParticipantInfo = info
	}
	n.start(outMsg{Type: TypeJoined, Data: c.joinedData(m.Room, res)})
	c.lg().Info("joined", "lobby", res.Lobby)
}

// joinedData is the body of `joined` and `admitted`.
func (c *conn) joinedData(room string, res JoinResult) Joined {
	participants := res.Participants
	if participants == nil {
		participants = []sfu.ParticipantState{}
	}
	tracks := res.Tracks
	if tracks == nil {
		tracks = []sfu.TrackInfo{}
	}
	return Joined{
		Version:      ProtocolVersion,
		Room:         room,
		Self:         res.Self,
		Participants: participants,
		Tracks:       tracks,
		ICEServers:   c.h.ice,
		Lobby:        res.Lobby,
		Session:      res.Session,
	}
}

// joinRefused maps a conference's refusal. Refusals of the session itself
// close the connection (4003): retrying the same link cannot succeed.
func (c *conn) joinRefused(ref string, err error) {
	switch {
	case errors.Is(err, ErrSessionEnded):
		c.fail(CodeSessionEnded, "this session has ended", ref, closeSessionRefused, CodeSessionEnded)
	case errors.Is(err, ErrInvitationRevoked):
		c.fail(CodeInvitationRevoked, "this invitation was revoked; ask the supervisor for a new link", ref,
			closeSessionRefused, CodeInvitationRevoked)
	case errors.Is(err, ErrInvitationNotYetValid):
		c.fail(CodeInvitationNotYetValid, "too early: the link opens 30 minutes before the scheduled start", ref,
			closeSessionRefused, CodeInvitationNotYetValid)
	default:
		c.sessionResult(ref, err)
	}
}

func (c *conn) leave() {
	c.left = true
	c.session.Leave(ReasonLeft)
	c.lg().Info("left")
	c.requestClose(closeRequest{code: websocket.CloseNormalClosure, reason: ReasonLeft, drain: true})
}

// onJoinTimeout runs on the writer when the join deadline passes, or on
// the reader when a failed join finds it passed.
func (c *conn) onJoinTimeout() {
	if c.joinState.CompareAndSwap(joinNone, joinTimedOut) {
		c.lg().Info("join timeout")
		c.fail(CodeJoinTimeout, fmt.Sprintf("no join within %v", c.lim.JoinTimeout), "", CloseJoinTimeout, "join timeout")
	}
}

// closeWithReason is how the server side ends a session: `closed`, then
// the close frame.
func (c *conn) closeWithReason(reason string) {
	code := websocket.CloseNormalClosure
	if reason == ReasonServerShutdown {
		code = websocket.CloseGoingAway
	}
	c.requestClose(closeRequest{
		code:   code,
		reason: reason,
		final:  &outMsg{Type: TypeClosed, Data: Closed{Reason: reason}},
		drain:  true,
	})
}

func (c *conn) rateLimited(now time.Time) {
	c.h.st.rateLimited.Add(1)
	v := c.flood.refused(now)
	switch {
	case v.close:
		c.lg().Warn("closing flooding client", "for", c.lim.FloodClose)
		c.fail(CodeRateLimited, "too many messages for too long", "", CloseRateLimited, "rate limited")
	case v.report:
		c.sendError(CodeRateLimited, fmt.Sprintf("too many messages: at most %g per second; messages are being dropped",
			c.lim.MessagesPerSecond), "")
	}
}

func (c *conn) badMessage(ref, msg string) {
	c.badRun++
	if c.badRun >= c.lim.MaxBadMessages {
		c.lg().Info("closing after bad messages", "count", c.badRun)
		c.fail(CodeBadMessage, msg, ref, CloseProtocol, "too many bad messages")
		return
	}
	c.sendError(CodeBadMessage, msg, ref)
}

// sessionResult maps an error from the SFU to the protocol. Only the
// sentinels the client can act on are named; anything else is reported as
// internal with no detail, and logged.
func (c *conn) sessionResult(ref string, err error) {
	switch {
	case err == nil:
	case errors.Is(err, sfu.ErrForbidden):
		c.sendError(CodeForbidden, "your role may not do this", ref)
	case errors.Is(err, sfu.ErrBadSDP):
		c.sendError(CodeBadSDP, "the session description could not be parsed or applied", ref)
	case errors.Is(err, sfu.ErrBadCandidate):
		c.sendError(CodeBadCandidate, "the ICE candidate could not be added", ref)
	case errors.Is(err, sfu.ErrBadKind):
		c.sendError(CodeBadMessage, "kind must be audio or video", ref)
	case errors.Is(err, ErrNotAdmitted):
		c.sendError(CodeNotAdmitted, "you are waiting in the lobby; the supervisor has not admitted you yet", ref)
	case errors.Is(err, ErrBadAction):
		c.sendError(CodeBadAction, "unknown moderation action or participant", ref)
	case errors.Is(err, sfu.ErrClosed) && c.closing():
		// The session ended (replaced, shut down) and the client is being
		// told so; this late request needs no answer of its own.
	default:
		c.internal(ref, err)
	}
}

func (c *conn) internal(ref string, err error) {
	c.lg().Error("internal error", "err", err)
	c.fail(CodeInternal, "internal server error; please join again", ref, websocket.CloseInternalServerErr, "internal error")
}

func (c *conn) sendError(code, msg, ref string) {
	c.h.st.errors.Add(1)
	c.enqueue(outMsg{Type: TypeError, Data: ErrorMsg{Code: code, Message: msg, Ref: ref}})
}

// fail sends an error and closes the connection with closeCode. The error
// travels inside the close request so a full queue cannot lose it.
func (c *conn) fail(code, msg, ref string, closeCode int, reason string) {
	m := outMsg{Type: TypeError, Data: ErrorMsg{Code: code, Message: msg, Ref: ref}}
	if c.requestClose(closeRequest{code: closeCode, reason: reason, final: &m, drain: true}) {
		c.h.st.errors.Add(1)
	}
}

// cleanup runs on the reader goroutine after the read side ended.
func (c *conn) cleanup() {
	var ne net.Error
	if errors.As(c.readErr, &ne) && ne.Timeout() && !c.closing() {
		c.lg().Info("closing idle connection", "idle", c.lim.IdleTimeout)
		c.requestClose(closeRequest{code: websocket.CloseGoingAway, reason: "idle timeout"})
	} else {
		// The peer is gone: stop queueing for it.
		c.requestClose(closeRequest{})
	}
	if c.closeMsg.code != 0 {
		// The writer is sending our close frame; its own deadlines bound
		// this wait.
		<-c.writerDone
	}
	close(c.readerDone)
	c.ws.Close()
	<-c.writerDone
	if c.session != nil && !c.left {
		c.session.Leave(ReasonDisconnected)
		c.lg().Info("disconnected")
	}
	c.h.untrack(c)
}

// tokenError maps a token check failure to an error code and a message the
// user can act on.
func tokenError(err error) (code, msg string) {
	switch {
	case errors.Is(err, token.ErrExpired):
		return CodeTokenExpired, "the join link has expired or is not valid yet; ask the organiser for a new link"
	case errors.Is(err, token.ErrWrongRoom):
		return CodeWrongRoom, "the join link is for another session"
	default:
		return CodeInvalidToken, "the join link is invalid; ask the organiser for a new link"
	}
}

// detail strips the sentinel prefix from a decode error for the client.
func detail(err error) string {
	s := err.Error()
	for _, p := range []string{ErrBadMessage.Error() + ": ", ErrUnknownType.Error() + ": "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}
