package main

import (
	"fmt"
	"strings"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/client"
)

// What a participant can expect to receive. The server announces every
// track to everyone (track-published) but does not send every track to
// everyone (PROTOCOL.md "Large rooms"): in a room of more than
// --large-room participants a county gets no other county's video, a
// participant who joined then gets speaker slots instead of everybody's
// audio, and the audio of those who are not among the loudest speakers is
// held back. What the server sends shows in its session description, as
// in a browser: a media section the server sends in. So a receiver expects
// exactly the tracks of its current remote description, speaker slots
// aside, and of those, audio the loudest-speaker policy holds back may
// rightly bring nothing.

// isSlot reports whether a stream id is a speaker slot's ("speaker-0", ...).
func isSlot(streamID string) bool { return strings.HasPrefix(streamID, sfu.SlotPrefix) }

// expectation is one participant's receiving side measured against what
// the server sends it.
type expectation struct {
	offered   int      // tracks of others in the server's description (slots aside)
	receiving int      // of those, the ones that got packets (by the caller's measure)
	gated     int      // of those, audio without packets that the loudest-speaker policy holds back
	missing   []string // of those, the ones without packets and without an excuse
	withheld  int      // tracks of others announced but not in the description
	slots     int      // speaker slots in the description
}

// trackGot says whether a received track counts as getting packets.
type trackGot func(*recvTrack) bool

// everReceived: any packet since the track started.
func everReceived(t *recvTrack) bool { return t.packets.Load() > 0 }

// expect measures what a receives against the server's description.
func (a *agent) expect(largeRoom int, got trackGot) expectation {
	recv := map[string]*recvTrack{}
	for _, t := range a.receiving() {
		recv[t.streamID] = t // a track offered again replaces the old one
	}
	return expectFrom(serverView{
		offered: a.c.Offered(), announced: a.c.Tracks(), self: a.c.Self().ID,
		large: len(a.c.Participants()) > largeRoom, speakers: a.c.Speakers(),
	}, recv, got)
}

// serverView is what the server told one participant.
type serverView struct {
	offered   []client.OfferedStream   // its current description
	announced map[string]sfu.TrackInfo // track-published, by id
	self      string                   // our participant id
	large     bool                     // the room has more than --large-room participants
	speakers  []string                 // the last active-speakers
}

// expectFrom measures the received tracks (by stream id) against v.
//
// Audio counts as held back (not missing) when the room is large and its
// publisher is not among the speakers the server last named: the server
// forwards only their audio then, keeping sequence numbers continuous.
func expectFrom(v serverView, recv map[string]*recvTrack, got trackGot) expectation {
	var e expectation
	speaking := map[string]bool{}
	for _, id := range v.speakers {
		speaking[id] = true
	}
	offered := map[string]bool{}
	for _, o := range v.offered {
		if isSlot(o.StreamID) {
			e.slots++
			continue
		}
		if offered[o.StreamID] {
			continue
		}
		offered[o.StreamID] = true
		e.offered++
		t := recv[o.StreamID]
		info := v.announced[o.StreamID]
		switch {
		case t != nil && got(t):
			e.receiving++
		case o.Kind == "audio" && v.large && !speaking[info.ParticipantID]:
			e.gated++
		default:
			e.missing = append(e.missing, fmt.Sprintf("%s (%s of %s)", o.StreamID, o.Kind, info.ParticipantID))
		}
	}
	for id, t := range v.announced {
		if t.ParticipantID != v.self && !offered[id] {
			e.withheld++
		}
	}
	return e
}

// largeRoomAudio reports whether a's per-participant audio tracks may be
// held back: in a large room a receiver is not meant to get everybody's
// audio, so the publishers' counters cannot tell loss from policy, and
// only sequence numbers (kept continuous by the server) count loss.
func (a *agent) largeRoomAudio(largeRoom int) bool {
	return a.c != nil && len(a.c.Participants()) > largeRoom
}
