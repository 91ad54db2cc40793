package client

import (
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// OfferedStream is a media section in which the server sends us media:
// what a browser gets a receiving transceiver (and, once packets come, a
// track) for. The server decides what it offers (PROTOCOL.md "Large
// rooms": it does not send every announced track to everyone), so this,
// not `track-published`, is what a receiver can expect.
type OfferedStream struct {
	StreamID string // msid stream id: the track id ("T..."), or a speaker slot ("speaker-0")
	TrackID  string // msid track id
	Kind     string // "audio" or "video"
	Mid      string
}

// offeredStreams lists the media sections of a remote description in
// which the remote side sends (sendonly or sendrecv, sendrecv being the
// default), skipping rejected sections (port 0) and those without an msid.
func offeredStreams(raw string) ([]OfferedStream, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return nil, err
	}
	var out []OfferedStream
	for _, m := range sd.MediaDescriptions {
		kind := m.MediaName.Media
		if (kind != "audio" && kind != "video") || m.MediaName.Port.Value == 0 {
			continue
		}
		dir, mid, msid, ssrcMsid := "sendrecv", "", "", ""
		for _, a := range m.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = a.Key
			case "mid":
				mid = a.Value
			case "msid":
				msid = a.Value
			case "ssrc":
				// Plan B style "a=ssrc:1 msid:stream track", for offers
				// without a media-level msid.
				if _, v, ok := strings.Cut(a.Value, " msid:"); ok && ssrcMsid == "" {
					ssrcMsid = v
				}
			}
		}
		if dir != "sendonly" && dir != "sendrecv" {
			continue
		}
		if msid == "" {
			msid = ssrcMsid
		}
		stream, track, _ := strings.Cut(strings.TrimSpace(msid), " ")
		if stream == "" || stream == "-" {
			continue
		}
		out = append(out, OfferedStream{StreamID: stream, TrackID: track, Kind: kind, Mid: mid})
	}
	return out, nil
}

// refreshOffered re-reads what the server sends us from the remote
// description; called after each one is applied, on the event loop.
func (c *Client) refreshOffered() {
	rd := c.pc.RemoteDescription()
	if rd == nil {
		return
	}
	streams, err := offeredStreams(rd.SDP)
	if err != nil {
		c.log.Warn("cannot read the remote description", "err", err)
		return
	}
	c.mu.Lock()
	c.offered = streams
	c.mu.Unlock()
	c.offeredGen.Add(1)
}

// Offered returns the media the server's current description sends us,
// speaker slots included (their stream ids start with sfu.SlotPrefix),
// in the order of their sections.
func (c *Client) Offered() []OfferedStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.offered)
}

// OfferedGen changes whenever Offered may have changed: a cheap way to
// poll for new media sections.
func (c *Client) OfferedGen() uint64 { return c.offeredGen.Load() }

// Negotiating reports whether an offer or answer exchange is under way or
// a received description waits to be applied: a client built on Pion must
// not offer then (see WaitPublished).
func (c *Client) Negotiating() bool {
	return c.sdpPending.Load() > 0 || c.pc.SignalingState() != webrtc.SignalingStateStable
}
