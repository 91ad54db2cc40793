package sfu

// This file documents the calls signaling makes on the SFU. The
// implementation lives in room.go / participant.go.
//
//	func New(cfg Config, log *slog.Logger) (*SFU, error)
//	func (s *SFU) Join(roomID string, info ParticipantInfo, n Notifier) (*Participant, JoinResult, error)
//	func (s *SFU) Close() error
//	func (p *Participant) HandleOffer(sdp string, sources map[string]string) error // answer goes out via Notifier.Answer
//	func (p *Participant) HandleAnswer(sdp string) error
//	func (p *Participant) AddCandidate(c webrtc.ICECandidateInit) error
//	func (p *Participant) SetMuted(kind string, muted bool) error               // kind "audio" | "video"
//	func (p *Participant) Leave(reason string)                                  // idempotent
//
// Errors are sentinels from errors.go wrapped with %w: ErrForbidden (an
// observer offered to send), ErrBadSDP, ErrClosed, ErrBadKind.

// JoinResult is what a new participant learns on join.
type JoinResult struct {
	Self         ParticipantState   `json:"self"`
	Participants []ParticipantState `json:"participants"` // the others
	Tracks       []TrackInfo        `json:"tracks"`       // everything published in the room
}
