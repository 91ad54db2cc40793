// Package sfu is ducha's selective forwarding unit: one PeerConnection per
// participant carrying both directions, published tracks fanned out to
// subscribers through a shared packet cache and bounded queues.
//
// The contract at the centre is small: an UpTrack is a published track; a
// Subscriber receives its packets. Browser subscribers (downTrack) and the
// recorder implement the same Subscriber interface.
package sfu

import (
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Roles a participant can have. They mirror the join token's role claim.
const (
	RoleSupervisor = "supervisor"
	RoleCounty     = "county"
	RoleObserver   = "observer"
)

// Track sources, as the client declares them when it publishes.
const (
	SourceCamera     = "camera"
	SourceMicrophone = "microphone"
	SourceScreen     = "screen"
)

// ParticipantInfo is who a participant is; it comes from the verified join token.
type ParticipantInfo struct {
	ID       string `json:"id"`       // server-assigned, unique per connection
	Identity string `json:"identity"` // stable identity from the token (user or unit code)
	Name     string `json:"name"`
	Role     string `json:"role"`
	Unit     string `json:"unit,omitempty"` // county unit code, for supervision sessions
	// Invitation is the invitation id a county joined with; never sent to clients.
	Invitation string `json:"-"`
}

// CanPublish reports whether the role may send media.
func (p ParticipantInfo) CanPublish() bool { return p.Role != RoleObserver }

// ParticipantState is a participant as other participants see it.
type ParticipantState struct {
	ParticipantInfo
	AudioMuted bool `json:"audioMuted"`
	VideoMuted bool `json:"videoMuted"`
	// ModMuted: the supervisor muted this participant; its audio is not forwarded.
	ModMuted bool `json:"modMuted"`
}

// Quality is a participant's link as RTCP receiver reports describe it.
type Quality struct {
	RTT         time.Duration // mean over its subscriptions; 0 when unknown
	LossPercent float64       // worst fraction lost over its subscriptions, in percent
	Known       bool          // at least one receiver report arrived
	// DownlinkBps is the bandwidth estimate toward the participant (from its
	// transport-wide feedback), which caps the video layers it is sent; 0
	// until its first feedback arrived.
	DownlinkBps int
}

// TrackInfo describes a published track.
type TrackInfo struct {
	ID            string `json:"id"`            // server-assigned; also the msid stream id subscribers see
	ParticipantID string `json:"participantId"` // publisher
	Kind          string `json:"kind"`          // "audio" or "video"
	Source        string `json:"source"`        // camera, microphone, screen
	MimeType      string `json:"mimeType"`
	Muted         bool   `json:"muted"`
}

// Notifier is how the SFU talks to one participant's client. signaling
// implements it. Every method is called from SFU goroutines and must not
// block: the implementation queues and returns.
type Notifier interface {
	Offer(sdp string)
	Answer(sdp string)
	Candidate(c webrtc.ICECandidateInit)
	ParticipantJoined(p ParticipantState)
	ParticipantLeft(id, reason string)
	ParticipantUpdated(p ParticipantState)
	TrackPublished(t TrackInfo)
	TrackRemoved(t TrackInfo)
	// ActiveSpeakers names the participants speaking now, loudest first
	// (sent when the set changes).
	ActiveSpeakers(participantIDs []string)
	// Layers tells a publisher which simulcast layers (by rid) of one of its
	// tracks somebody receives; it may pause the others and must resume a
	// layer as soon as it is listed again. mid is the track's media section
	// in the publisher's own SDP, so the client finds its sender.
	Layers(trackID, mid string, active []string)
	// Closed tells the client its media session ended on the server side
	// (for example, the same identity joined again elsewhere).
	Closed(reason string)
}

// Subscriber receives the packets of one published track. It is the
// contract shared by browser subscribers and the recorder.
//
// WriteRTP is called from a fan-out goroutine (never the publisher's reader)
// with a packet that is only valid during the call: copy what you keep.
// It must not block for long; a slow subscriber slows only the others on its
// fan-out goroutine, never the publisher.
type Subscriber interface {
	WriteRTP(p *rtp.Packet) error
	// Resync is called after packets were dropped for this subscriber
	// (queue overflow): the next packet passed to WriteRTP is a keyframe
	// start for video, and sequence numbers jump.
	Resync()
}

// TrackObserver hears about every track published on this node, in every
// room. The recorder implements it and subscribes to what it records.
// Calls come from SFU goroutines and must not block.
type TrackObserver interface {
	TrackPublished(room string, publisher ParticipantInfo, t *UpTrack)
	TrackUnpublished(room string, t *UpTrack)
}
