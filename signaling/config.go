package signaling

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/token"
)

// Conference is the media side signaling drives; the lead adapts *sfu.SFU
// to it.
type Conference interface {
	Join(roomID string, info sfu.ParticipantInfo, n Notifier) (Session, JoinResult, error)
}

// Notifier is how the conference talks to one client: the SFU's events plus
// those of supervision sessions. Every method queues and returns.
type Notifier interface {
	sfu.Notifier
	// Admitted: a participant waiting in the lobby may now take part.
	Admitted(res JoinResult)
	SessionUpdated(s SessionState)
	LobbyUpdated(waiting []Waiting)
	Chat(m ChatMessage)
}

// JoinResult is what a joining client is told.
type JoinResult struct {
	sfu.JoinResult
	// Lobby: the participant waits for the supervisor; it must not send
	// media until Admitted.
	Lobby bool
	// Session is set for supervision sessions, nil for ad-hoc rooms.
	Session *SessionState
}

// Session is one participant's media session.
type Session interface {
	HandleOffer(sdp string, sources map[string]string) error
	HandleAnswer(sdp string) error
	AddCandidate(c webrtc.ICECandidateInit) error
	SetMuted(kind string, muted bool) error
	// SetVideoSize records how large the client shows a received video,
	// which picks the simulcast layer it is sent.
	SetVideoSize(track string, width, height int) error
	Leave(reason string)
	// Chat sends a text message to the room.
	Chat(text string) error
	// Moderate runs a supervisor action (PROTOCOL.md, "Supervision sessions").
	Moderate(action, target string) error
}

// TokenVerifier checks join tokens; *token.Verifier implements it.
type TokenVerifier interface {
	Verify(tok, room string) (token.Claims, error)
}

// Config configures a Handler.
type Config struct {
	Conference Conference
	Tokens     TokenVerifier
	// AllowedOrigins are extra browser origins ("https://ducha.example.cn")
	// accepted besides the request's own host, for deployments where the
	// page and the websocket are served under different names.
	AllowedOrigins []string
	ICEServers     []webrtc.ICEServer
	Logger         *slog.Logger
	// Now is the clock for rate limiting and flood detection (nil: time.Now).
	// Socket deadlines and timers use the real clock: the kernel knows no
	// other.
	Now    func() time.Time
	Limits Limits
}

// Limits bound what one connection may cost. A zero field takes the
// default from PROTOCOL.md.
type Limits struct {
	MaxMessageBytes   int64         // frame size; default 512 KiB
	MessagesPerSecond float64       // sustained rate; default 50
	Burst             int           // bucket size; default 200
	FloodClose        time.Duration // continuous flooding before 4008; default 5 s
	FloodGap          time.Duration // a pause this long ends a flood; default 1 s
	JoinTimeout       time.Duration // upgrade to join; default 10 s
	PingInterval      time.Duration // server pings; default 15 s
	IdleTimeout       time.Duration // no frame at all; default 45 s
	WriteTimeout      time.Duration // one frame write; default 10 s
	CloseGrace        time.Duration // wait for the peer's close frame; default 2 s
	OutboundQueue     int           // messages queued to one client; default 512
	MaxBadMessages    int           // bad_message in a row before 4000; default 20
}

// DefaultLimits returns the limits of PROTOCOL.md.
func DefaultLimits() Limits {
	return Limits{
		MaxMessageBytes:   512 << 10,
		MessagesPerSecond: 50,
		Burst:             200,
		FloodClose:        5 * time.Second,
		FloodGap:          time.Second,
		JoinTimeout:       10 * time.Second,
		PingInterval:      15 * time.Second,
		IdleTimeout:       45 * time.Second,
		WriteTimeout:      10 * time.Second,
		CloseGrace:        2 * time.Second,
		OutboundQueue:     512,
		MaxBadMessages:    20,
	}
}

// withDefaults fills zero fields and rejects negative or inconsistent ones.
func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits()
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = d.MaxMessageBytes
	}
	if l.MessagesPerSecond == 0 {
		l.MessagesPerSecond = d.MessagesPerSecond
	}
	if l.Burst == 0 {
		l.Burst = d.Burst
	}
	if l.FloodClose == 0 {
		l.FloodClose = d.FloodClose
	}
	if l.FloodGap == 0 {
		l.FloodGap = d.FloodGap
	}
	if l.JoinTimeout == 0 {
		l.JoinTimeout = d.JoinTimeout
	}
	if l.PingInterval == 0 {
		l.PingInterval = d.PingInterval
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.CloseGrace == 0 {
		l.CloseGrace = d.CloseGrace
	}
	if l.OutboundQueue == 0 {
		l.OutboundQueue = d.OutboundQueue
	}
	if l.MaxBadMessages == 0 {
		l.MaxBadMessages = d.MaxBadMessages
	}
	if l.MaxMessageBytes < 0 || l.MessagesPerSecond < 0 || l.Burst < 0 || l.FloodClose < 0 ||
		l.FloodGap < 0 || l.JoinTimeout < 0 || l.PingInterval < 0 || l.IdleTimeout < 0 ||
		l.WriteTimeout < 0 || l.CloseGrace < 0 || l.OutboundQueue < 0 || l.MaxBadMessages < 0 {
		return l, fmt.Errorf("%w: negative limit in %+v", ErrConfig, l)
	}
	// A client that answers every ping must never be closed as idle.
	if l.IdleTimeout <= l.PingInterval {
		return l, fmt.Errorf("%w: IdleTimeout %v must exceed PingInterval %v", ErrConfig, l.IdleTimeout, l.PingInterval)
	}
	return l, nil
}
