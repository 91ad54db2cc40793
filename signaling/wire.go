package signaling

import (
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/sfu"
)

// Server-to-client data types. Exported so that Go clients (tests, the load
// generator) decode exactly what the server encodes.

// Joined is the data of `joined`.
type Joined struct {
	Version      int                    `json:"version"`
	Room         string                 `json:"room"`
	Self         sfu.ParticipantState   `json:"self"`
	Participants []sfu.ParticipantState `json:"participants"`
	Tracks       []sfu.TrackInfo        `json:"tracks"`
	ICEServers   []ICEServer            `json:"iceServers"`
	// Lobby and Session: supervision sessions (PROTOCOL.md).
	Lobby   bool          `json:"lobby"`
	Session *SessionState `json:"session,omitempty"`
}

// SessionState is a supervision session as participants see it.
type SessionState struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	CaseNumber string `json:"caseNumber"`
	Status     string `json:"status"`
	Locked     bool   `json:"locked"`
	Recording  bool   `json:"recording"`
}

// SessionUpdated is the data of `session-updated`.
type SessionUpdated struct {
	Session SessionState `json:"session"`
}

// Waiting is one participant in the lobby.
type Waiting struct {
	ID       string    `json:"id"`
	Identity string    `json:"identity"`
	Name     string    `json:"name"`
	Unit     string    `json:"unit,omitempty"`
	Since    time.Time `json:"since"`
}

// LobbyUpdated is the data of `lobby-updated`.
type LobbyUpdated struct {
	Waiting []Waiting `json:"waiting"`
}

// Layers is the data of `layers`: the simulcast layers (rids) of one of
// the client's tracks that somebody receives.
type Layers struct {
	Track  string   `json:"track"`
	Mid    string   `json:"mid"` // the track's media section in the publisher's SDP
	Active []string `json:"active"`
}

// ActiveSpeakers is the data of `active-speakers`.
type ActiveSpeakers struct {
	IDs []string `json:"ids"`
}

// ChatMessage is the data of a server `chat`.
type ChatMessage struct {
	ID   string    `json:"id"`
	From string    `json:"from"`
	Name string    `json:"name"`
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// ICEServer is an RTCIceServer as browsers take it. Pion's own JSON form
// adds a credentialType member that no browser defines.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// browserICEServers converts the configured servers. Only password
// credentials exist in browsers; a server with another kind is passed
// without credential.
func browserICEServers(in []webrtc.ICEServer) []ICEServer {
	out := make([]ICEServer, 0, len(in))
	for _, s := range in {
		b := ICEServer{URLs: s.URLs, Username: s.Username}
		if cred, ok := s.Credential.(string); ok {
			b.Credential = cred
		}
		out = append(out, b)
	}
	return out
}

// SDP is the data of a server `offer` or `answer`.
type SDP struct {
	SDP string `json:"sdp"`
}

// ParticipantEvent is the data of `participant-joined` and
// `participant-updated`.
type ParticipantEvent struct {
	Participant sfu.ParticipantState `json:"participant"`
}

// ParticipantLeft is the data of `participant-left`.
type ParticipantLeft struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// TrackEvent is the data of `track-published` and `track-removed`.
type TrackEvent struct {
	Track sfu.TrackInfo `json:"track"`
}

// Closed is the data of `closed`.
type Closed struct {
	Reason string `json:"reason"`
}

// ErrorMsg is the data of `error`.
type ErrorMsg struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

// outMsg is one queued server-to-client message, marshalled by the writer
// so that SFU goroutines calling the Notifier do no encoding work.
type outMsg struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

// Reasons in `closed` and `participant-left`.
const (
	ReasonLeft           = "left"
	ReasonDisconnected   = "disconnected"
	ReasonReplaced       = "replaced"
	ReasonServerShutdown = "server_shutdown"
)
