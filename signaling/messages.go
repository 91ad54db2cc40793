package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/token"
)

// ProtocolVersion is the signaling protocol version this server speaks.
const ProtocolVersion = 1

// Message types, client to server and server to client. Several are used in
// both directions.
const (
	TypeJoin               = "join"
	TypeOffer              = "offer"
	TypeAnswer             = "answer"
	TypeCandidate          = "candidate"
	TypeMute               = "mute"
	TypePing               = "ping"
	TypeLeave              = "leave"
	TypeJoined             = "joined"
	TypeParticipantJoined  = "participant-joined"
	TypeParticipantLeft    = "participant-left"
	TypeParticipantUpdated = "participant-updated"
	TypeTrackPublished     = "track-published"
	TypeTrackRemoved       = "track-removed"
	TypePong               = "pong"
	TypeClosed             = "closed"
	TypeError              = "error"
	// Supervision sessions (additive).
	TypeChat           = "chat"
	TypeModerate       = "moderate"
	TypeAdmitted       = "admitted"
	TypeSessionUpdated = "session-updated"
	TypeLobbyUpdated   = "lobby-updated"
	TypeActiveSpeakers = "active-speakers"
	// Simulcast (additive).
	TypeVideoSize = "video-size"
	TypeLayers    = "layers"
)

// Error codes sent in `error` messages. Clients switch on these.
const (
	CodeBadMessage         = "bad_message"
	CodeUnknownType        = "unknown_type"
	CodeMessageTooLarge    = "message_too_large"
	CodeRateLimited        = "rate_limited"
	CodeNotJoined          = "not_joined"
	CodeAlreadyJoined      = "already_joined"
	CodeUnsupportedVersion = "unsupported_version"
	CodeInvalidToken       = "invalid_token"
	CodeTokenExpired       = "token_expired"
	CodeWrongRoom          = "wrong_room"
	CodeForbidden          = "forbidden"
	CodeBadSDP             = "bad_sdp"
	CodeBadCandidate       = "bad_candidate"
	CodeJoinTimeout        = "join_timeout"
	CodeInternal           = "internal"
	// Supervision sessions.
	CodeSessionEnded            = "session_ended"
	CodeInvitationRevoked       = "invitation_revoked"
	CodeInvitationNotYetValid   = "invitation_not_yet_valid"
	CodeNotAdmitted             = "not_admitted"
	CodeBadAction               = "bad_action"
	closeSessionRefused         = 4003
	maxChatRunes                = 1000
	maxActionBytes, maxTargetID = 32, 64
)

// Websocket close codes beyond RFC 6455's, from PROTOCOL.md.
const (
	CloseProtocol    = 4000 // unsupported_version, or too many bad messages in a row
	CloseBadToken    = 4001 // invalid_token, token_expired, wrong_room
	CloseJoinTimeout = 4002
	CloseRateLimited = 4008
)

// Wire limits that belong to the message format rather than to the server's
// resource limits.
const (
	MaxIDBytes    = 64  // envelope id
	maxSourceKey  = 128 // MediaStreamTrack.id is a UUID (36-38 bytes) in browsers
	maxSources    = 32
	maxTokenBytes = 8192
	maxSDPBytes   = 512 << 10
)

// Envelope is the outer object of every frame.
type Envelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Join is the data of a `join`.
type Join struct {
	Version int    `json:"version"`
	Room    string `json:"room"`
	Token   string `json:"token"`
}

// Offer is the data of a client `offer`.
type Offer struct {
	SDP     string            `json:"sdp"`
	Sources map[string]string `json:"sources,omitempty"`
}

// Answer is the data of a client `answer`.
type Answer struct {
	SDP string `json:"sdp"`
}

// Mute is the data of a `mute`.
type Mute struct {
	Kind  string `json:"kind"`
	Muted bool   `json:"muted"`
}

// VideoSize is the data of `video-size`: the size, in device pixels, at
// which the client shows a received video (0x0: not shown).
type VideoSize struct {
	Track  string `json:"track"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// Chat is the data of a client `chat`.
type Chat struct {
	Text string `json:"text"`
}

// Moderate is the data of a `moderate`.
type Moderate struct {
	Action string `json:"action"`
	Target string `json:"target,omitempty"`
}

// Empty is the data of `ping` and `leave`.
type Empty struct{}

// DecodeEnvelope parses one frame. It checks the envelope only: type
// present, id a short string, data absent, null or an object. The returned
// Envelope carries whatever id was readable even on error, so the caller
// can reference the message in its error reply.
func DecodeEnvelope(b []byte) (Envelope, error) {
	if !utf8.Valid(b) {
		return Envelope{}, fmt.Errorf("%w: not valid UTF-8", ErrBadMessage)
	}
	var w struct {
		Type *string         `json:"type"`
		ID   *string         `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	if err := unmarshalObject(b, &w); err != nil {
		return Envelope{}, err
	}
	var env Envelope
	if w.ID != nil {
		if len(*w.ID) > MaxIDBytes {
			return Envelope{}, fmt.Errorf("%w: id is longer than %d bytes", ErrBadMessage, MaxIDBytes)
		}
		env.ID = *w.ID
	}
	if w.Type == nil || *w.Type == "" {
		return env, fmt.Errorf("%w: type is missing", ErrBadMessage)
	}
	env.Type = *w.Type
	data := bytes.TrimSpace(w.Data)
	switch {
	case len(data) == 0 || bytes.Equal(data, []byte("null")):
		env.Data = nil
	case data[0] == '{':
		env.Data = data
	default:
		return env, fmt.Errorf("%w: data is not an object", ErrBadMessage)
	}
	return env, nil
}

// Decode parses a frame into its envelope and typed data (one of Join,
// Offer, Answer, webrtc.ICECandidateInit, Mute, Empty). It never panics on
// any input.
func Decode(b []byte) (Envelope, any, error) {
	env, err := DecodeEnvelope(b)
	if err != nil {
		return env, nil, err
	}
	v, err := DecodeData(env)
	return env, v, err
}

// DecodeData decodes env.Data according to env.Type. On error the value is
// nil.
func DecodeData(env Envelope) (any, error) {
	var (
		v   any
		err error
	)
	switch env.Type {
	case TypeJoin:
		v, err = DecodeJoin(env.Data)
	case TypeOffer:
		v, err = DecodeOffer(env.Data)
	case TypeAnswer:
		v, err = DecodeAnswer(env.Data)
	case TypeCandidate:
		v, err = DecodeCandidate(env.Data)
	case TypeMute:
		v, err = DecodeMute(env.Data)
	case TypeChat:
		v, err = DecodeChat(env.Data)
	case TypeModerate:
		v, err = DecodeModerate(env.Data)
	case TypeVideoSize:
		v, err = DecodeVideoSize(env.Data)
	case TypePing, TypeLeave:
		v = Empty{}
	default:
		err = fmt.Errorf("%w: %q", ErrUnknownType, truncate(env.Type, 32))
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// KnownType reports whether t is a client-to-server type of version 1.
func KnownType(t string) bool {
	switch t {
	case TypeJoin, TypeOffer, TypeAnswer, TypeCandidate, TypeMute, TypePing, TypeLeave, TypeChat, TypeModerate,
		TypeVideoSize:
		return true
	}
	return false
}

// DecodeJoin decodes a join's data. A missing version decodes as 0, which
// the server answers with unsupported_version; an empty token is left for
// the token check (invalid_token).
func DecodeJoin(data json.RawMessage) (Join, error) {
	var w struct {
		Version *int    `json:"version"`
		Room    *string `json:"room"`
		Token   *string `json:"token"`
	}
	if err := unmarshalData(data, &w); err != nil {
		return Join{}, err
	}
	var j Join
	if w.Version != nil {
		j.Version = *w.Version
	}
	if w.Room == nil || *w.Room == "" {
		return Join{}, fmt.Errorf("%w: room is missing", ErrBadMessage)
	}
	if !token.ValidRoomID(*w.Room) {
		return Join{}, fmt.Errorf("%w: room must be 1-64 of A-Z a-z 0-9 _ -", ErrBadMessage)
	}
	j.Room = *w.Room
	if w.Token != nil {
		if len(*w.Token) > maxTokenBytes {
			return Join{}, fmt.Errorf("%w: token is longer than %d bytes", ErrBadMessage, maxTokenBytes)
		}
		j.Token = *w.Token
	}
	return j, nil
}

// DecodeOffer decodes an offer's data and checks the declared sources.
func DecodeOffer(data json.RawMessage) (Offer, error) {
	var w struct {
		SDP     *string            `json:"sdp"`
		Sources map[string]*string `json:"sources"`
	}
	if err := unmarshalData(data, &w); err != nil {
		return Offer{}, err
	}
	sdp, err := requireSDP(w.SDP)
	if err != nil {
		return Offer{}, err
	}
	o := Offer{SDP: sdp}
	if len(w.Sources) > maxSources {
		return Offer{}, fmt.Errorf("%w: more than %d sources", ErrBadMessage, maxSources)
	}
	if len(w.Sources) > 0 {
		o.Sources = make(map[string]string, len(w.Sources))
	}
	for k, v := range w.Sources {
		if k == "" || len(k) > maxSourceKey {
			return Offer{}, fmt.Errorf("%w: a sources key is empty or longer than %d bytes", ErrBadMessage, maxSourceKey)
		}
		if v == nil {
			return Offer{}, fmt.Errorf("%w: sources[%q] is null", ErrBadMessage, truncate(k, 40))
		}
		switch *v {
		case sfu.SourceCamera, sfu.SourceMicrophone, sfu.SourceScreen:
		default:
			return Offer{}, fmt.Errorf("%w: sources[%q] must be camera, microphone or screen", ErrBadMessage, truncate(k, 40))
		}
		o.Sources[k] = *v
	}
	return o, nil
}

// DecodeAnswer decodes an answer's data.
func DecodeAnswer(data json.RawMessage) (Answer, error) {
	var w struct {
		SDP *string `json:"sdp"`
	}
	if err := unmarshalData(data, &w); err != nil {
		return Answer{}, err
	}
	sdp, err := requireSDP(w.SDP)
	if err != nil {
		return Answer{}, err
	}
	return Answer{SDP: sdp}, nil
}

// DecodeCandidate decodes a trickled ICE candidate. An empty candidate
// string is valid: it marks the end of candidates.
func DecodeCandidate(data json.RawMessage) (webrtc.ICECandidateInit, error) {
	var w struct {
		Candidate        *string `json:"candidate"`
		SDPMid           *string `json:"sdpMid"`
		SDPMLineIndex    *uint16 `json:"sdpMLineIndex"`
		UsernameFragment *string `json:"usernameFragment"`
	}
	if err := unmarshalData(data, &w); err != nil {
		return webrtc.ICECandidateInit{}, err
	}
	if w.Candidate == nil {
		return webrtc.ICECandidateInit{}, fmt.Errorf("%w: candidate is missing", ErrBadMessage)
	}
	if len(*w.Candidate) > 1024 {
		return webrtc.ICECandidateInit{}, fmt.Errorf("%w: candidate is longer than 1024 bytes", ErrBadMessage)
	}
	return webrtc.ICECandidateInit{
		Candidate:        *w.Candidate,
		SDPMid:           w.SDPMid,
		SDPMLineIndex:    w.SDPMLineIndex,
		UsernameFragment: w.UsernameFragment,
	}, nil
}

// DecodeMute decodes a mute's data.
func DecodeMute(data json.RawMessage) (Mute, error) {
	var w struct {
		Kind  *string `json:"kind"`
		Muted *bool   `json:"muted"`
	}
	if err := unmarshalData(data, &w); err != nil {
		return Mute{}, err
	}
	if w.Kind == nil || (*w.Kind != "audio" && *w.Kind != "video") {
		return Mute{}, fmt.Errorf("%w: kind must be audio or video", ErrBadMessage)
	}
	if w.Muted == nil {
		return Mute{}, fmt.Errorf("%w: muted is missing", ErrBadMessage)
	}
	return Mute{Kind: *w.Kind, Muted: *w.Muted}, nil
}

// maxVideoDimension bounds video-size: no screen is 16k pixels wide.
const maxVideoDimension = 16384

// DecodeVideoSize decodes a video-size's data.
func DecodeVideoSize(data json.RawMessage) (VideoSize, error) {
	var w struct {
		Track  *string `json:"track"`
		Width  *int    `json:"width"`
		Height *int    `json:"height"`
	}
	if err := unmarshalData(data, &w); err != nil {
		return VideoSize{}, err
	}
	if w.Track == nil || *w.Track == "" || len(*w.Track) > 64 {
		return VideoSize{}, fmt.Errorf("%w: track must be a track id", ErrBadMessage)
	}
	if w.Width == nil || w.Height == nil {
		return VideoSize{}, fmt.Errorf("%w: width and height are required", ErrBadMessage)
	}
	if *w.Width < 0 || *w.Height < 0 || *w.Width > maxVideoDimension || *w.Height > maxVideoDimension {
		return VideoSize{}, fmt.Errorf("%w: width and height must be 0..%d", ErrBadMessage, maxVideoDimension)
	}
	return VideoSize{Track: *w.Track, Width: *w.Width, Height: *w.Height}, nil
}

func requireSDP(s *string) (string, error) {
	if s == nil || *s == "" {
		return "", fmt.Errorf("%w: sdp is missing", ErrBadMessage)
	}
	if len(*s) > maxSDPBytes {
		return "", fmt.Errorf("%w: sdp is too long", ErrBadMessage)
	}
	return *s, nil
}

// unmarshalData decodes a data object; absent data decodes as {} so that
// required fields are reported as missing rather than as a type error.
func unmarshalData(data json.RawMessage, v any) error {
	if len(data) == 0 {
		return nil
	}
	return unmarshalObject(data, v)
}

// unmarshalObject decodes a JSON object into v and turns encoding/json's
// errors, which name Go types, into messages about the wire format.
func unmarshalObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrBadMessage)
	}
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Errorf("%w: field %q has the wrong type or is out of range", ErrBadMessage, truncate(te.Field, 40))
		}
		return fmt.Errorf("%w: wrong JSON type", ErrBadMessage)
	}
	return fmt.Errorf("%w: not valid JSON", ErrBadMessage)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the message stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// DecodeChat decodes a chat: 1..1000 characters of valid text.
func DecodeChat(data json.RawMessage) (Chat, error) {
	var m struct {
		Text *string `json:"text"`
	}
	if err := unmarshalData(data, &m); err != nil {
		return Chat{}, err
	}
	if m.Text == nil {
		return Chat{}, fmt.Errorf("%w: chat needs text", ErrBadMessage)
	}
	n := utf8.RuneCountInString(*m.Text)
	if n == 0 || n > maxChatRunes || strings.TrimSpace(*m.Text) == "" {
		return Chat{}, fmt.Errorf("%w: chat text must be 1 to %d characters", ErrBadMessage, maxChatRunes)
	}
	return Chat{Text: *m.Text}, nil
}

// DecodeModerate decodes a moderation request; which actions exist is the
// conference's business (it answers bad_action).
func DecodeModerate(data json.RawMessage) (Moderate, error) {
	var m struct {
		Action *string `json:"action"`
		Target string  `json:"target"`
	}
	if err := unmarshalData(data, &m); err != nil {
		return Moderate{}, err
	}
	if m.Action == nil || *m.Action == "" || len(*m.Action) > maxActionBytes || len(m.Target) > maxTargetID {
		return Moderate{}, fmt.Errorf("%w: moderate needs an action (and a target id of at most %d bytes)",
			ErrBadMessage, maxTargetID)
	}
	return Moderate{Action: *m.Action, Target: m.Target}, nil
}
