package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling"
	"github.com/ducha-dev/ducha/signaling/client"
)

// layerSpec is one simulcast layer a camera sends.
type layerSpec struct {
	RID           string
	Kbps          int
	Width, Height int
}

// tilePlan says at which size a participant shows the videos it receives,
// by the role of their publisher (PROTOCOL.md: video-size).
type tilePlan struct {
	Supervisor tileSize // videos of a supervisor
	Others     tileSize // everyone else's
}

func (p tilePlan) forRole(role string) tileSize {
	if role == sfu.RoleSupervisor {
		return p.Supervisor
	}
	return p.Others
}

// layerName names a received video's layer for the report: the rid of
// the trailer's layer index (publishers send DefaultRIDs, smallest first),
// "single" for a stream that is not simulcast, "unknown" before a trailer.
func layerName(layer int64) string {
	rids := client.DefaultRIDs()
	switch {
	case layer == layerPlain:
		return "single"
	case layer >= 0 && int(layer) < len(rids):
		return rids[layer]
	case layer >= 0:
		return fmt.Sprintf("layer%d", layer)
	}
	return "unknown"
}

// Layer states of a recvTrack besides the layer index.
const (
	layerUnknown = -2 // no trailer yet
	layerPlain   = -1 // the publisher sends one stream
)

// publishSimulcast publishes the camera as layers and starts its Synth.
func (a *agent) publishSimulcast(ctx context.Context, v *videoSpec) error {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	rids := make([]string, len(v.Layers))
	for i, l := range v.Layers {
		rids[i] = l.RID
	}
	sim, err := a.c.PublishSimulcast(codec, "video", a.spec.Identity, sfu.SourceCamera, rids)
	if err != nil {
		return fmt.Errorf("%w: %s: publish simulcast video: %v", ErrJoin, a.spec.Identity, err)
	}
	s := &client.Synth{Video: true, FPS: v.FPS, PacketBytes: a.spec.PacketBytes}
	for i, l := range v.Layers {
		s.Layers = append(s.Layers, client.SynthLayer{Out: sim.Layers()[i], Width: l.Width, Height: l.Height,
			FrameBytes: frameBytes(l.Kbps, v.FPS)})
	}
	a.sims = append(a.sims, sim)
	a.startSynth(ctx, s)
	return nil
}

// frameBytes is the inter frame size that gives kbps at fps.
func frameBytes(kbps, fps int) int { return max(kbps*1000/8/max(fps, 1), 200) }

// Pacing of video-size messages: the server allows 50 messages a second
// with a burst of 200 per connection, and a supervisor of a large S2 room
// receives hundreds of videos at once.
const (
	sizeBurst    = 100
	sizeInterval = 40 * time.Millisecond // 25 a second after the burst
)

// onMessage sees every server message: announcements and descriptions
// restart waitQuiet's pause.
func (a *agent) onMessage(typ string, data json.RawMessage) {
	a.twcc.learnID(typ, data)
	switch typ {
	case signaling.TypeJoined, signaling.TypeTrackPublished, signaling.TypeTrackRemoved, signaling.TypeOffer,
		signaling.TypeAnswer, signaling.TypeParticipantJoined:
		a.lastSignal.Store(a.env.now().UnixNano())
	}
}

// sizeLoop sends a video-size for every video the server's description
// sends us, as a browser's tile does once the transceiver is there (a Pion
// OnTrack waits for the first packet, which the server may hold back
// until it knows the size), paced under the server's rate limit, until
// ctx ends. Announced videos the server does not send us (large rooms)
// get none: there is no tile for them.
func (a *agent) sizeLoop(ctx context.Context) {
	defer a.bgDone.Done()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var pending []string
	done := map[string]bool{}
	var gen uint64
	sent := 0
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if g := a.c.OfferedGen(); g != gen {
			gen = g
			for _, o := range a.c.Offered() {
				if o.Kind == "video" && !isSlot(o.StreamID) && !done[o.StreamID] {
					done[o.StreamID] = true
					pending = append(pending, o.StreamID)
				}
			}
		}
		keep := pending[:0]
		for _, id := range pending {
			size, state := a.tileFor(id)
			switch state {
			case tileWait:
				keep = append(keep, id) // the publisher is not known yet
				continue
			case tileSkip:
				continue
			}
			if sent >= sizeBurst {
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				next = time.Now().Add(sizeInterval)
			}
			if err := a.c.SetVideoSize(id, size.W, size.H); err == nil {
				sent++
				a.sizesSent.Add(1)
			}
		}
		pending = keep
	}
}

// What tileFor found.
const (
	tileReady = iota
	tileWait  // the publisher is not known yet
	tileSkip  // our own track, or one already removed
)

// tileFor is the size at which the agent shows the video of a track.
func (a *agent) tileFor(trackID string) (tileSize, int) {
	info, ok := a.c.Tracks()[trackID]
	if !ok {
		return tileSize{}, tileSkip
	}
	if info.ParticipantID == a.c.Self().ID {
		return tileSize{}, tileSkip
	}
	p, ok := a.c.Participants()[info.ParticipantID]
	if !ok {
		return tileSize{}, tileWait
	}
	return a.spec.Tiles.forRole(p.Role), tileReady
}

// LayerResult is what simulcast did, as the participants saw it.
type LayerResult struct {
	// Videos counts received video tracks by the layer their newest
	// packet came from at the end of the window: q, h, f; single (the
	// publisher sent one stream); unknown (nothing with a trailer yet).
	Videos map[string]int `json:"videos"`
	// KeyframeSizes counts them by the picture size of their newest
	// keyframe, "WxH" ("none" before one).
	KeyframeSizes map[string]int `json:"keyframe_sizes"`
	// Switches: layer changes receivers saw during the window;
	// TracksSwitched: videos that changed at least once in it.
	Switches       int64 `json:"switches"`
	TracksSwitched int   `json:"tracks_switched"`
	// VideoSizesSent: video-size messages sent since the start.
	VideoSizesSent int64 `json:"video_sizes_sent"`
	// Publisher side at the end: simulcast layers published, those the
	// server's `layers` messages left paused, and the messages.
	PublishedLayers int            `json:"published_layers"`
	PausedLayers    int            `json:"paused_layers"`
	PausedByRID     map[string]int `json:"paused_by_rid"`
	LayersMessages  int64          `json:"layers_messages"`
}

// layerResult sums the layers of every received video over the window.
func layerResult(agents []*agent, start, end *snapshot) LayerResult {
	lr := LayerResult{Videos: map[string]int{}, KeyframeSizes: map[string]int{}, PausedByRID: map[string]int{}}
	for _, a := range agents {
		lr.VideoSizesSent += a.sizesSent.Load()
		for _, s := range a.sims {
			lr.LayersMessages += s.LayersMessages.Load()
			for _, l := range s.Layers() {
				lr.PublishedLayers++
				if l.Paused() {
					lr.PausedLayers++
					lr.PausedByRID[l.RID()]++
				}
			}
		}
		for _, t := range a.receiving() {
			if !t.video {
				continue
			}
			e, s := end.tracks[t], start.tracks[t]
			lr.Videos[layerName(e.layer)]++
			lr.KeyframeSizes[keyframeSize(e)]++
			if d := e.layerSwitches - s.layerSwitches; d > 0 {
				lr.Switches += d
				lr.TracksSwitched++
			}
		}
	}
	return lr
}

func keyframeSize(c trackCounts) string {
	if c.keyWidth == 0 {
		return "none"
	}
	return fmt.Sprintf("%dx%d", c.keyWidth, c.keyHeight)
}

// receiverLayers is one participant's share of layerResult.
func receiverLayers(a *agent, start, end *snapshot) (videos map[string]int, switches int64) {
	for _, t := range a.receiving() {
		if !t.video {
			continue
		}
		if videos == nil {
			videos = map[string]int{}
		}
		e := end.tracks[t]
		videos[layerName(e.layer)]++
		switches += e.layerSwitches - start.tracks[t].layerSwitches
	}
	return videos, switches
}
