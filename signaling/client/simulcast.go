package client

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// The simulcast layers of PROTOCOL.md ("Simulcast"), smallest first.
const (
	RIDQuarter = "q" // 320x180
	RIDHalf    = "h" // 640x360
	RIDFull    = "f" // 1280x720
)

// DefaultRIDs returns the three layers a camera is published with,
// smallest first.
func DefaultRIDs() []string { return []string{RIDQuarter, RIDHalf, RIDFull} }

// LayerSize is the picture size of a standard layer (0x0 for other rids).
func LayerSize(rid string) (width, height int) {
	switch rid {
	case RIDQuarter:
		return 320, 180
	case RIDHalf:
		return 640, 360
	case RIDFull:
		return 1280, 720
	}
	return 0, 0
}

// ErrSimulcast is wrapped around simulcast publishing failures.
var ErrSimulcast = errors.New("client: simulcast")

// Simulcast is one video source published as several layers (encodings
// of one sender, one media section). A Pion sender does not put the
// sdes:mid and sdes:rtp-stream-id header extensions on what it sends, and
// the server's Pion drops an undeclared SSRC whose first packets carry
// neither; so every layer stamps them itself, with the ids the
// negotiation settled on.
type Simulcast struct {
	Sender *webrtc.RTPSender
	mid    string
	layers []*SimulcastLayer

	// ids packs the negotiated extension ids, mid<<8 | rid; 0 until the
	// first negotiation that included this sender.
	ids atomic.Uint32

	mu     sync.Mutex
	active []string // from the last `layers` message; nil before any
	// LayersMessages counts the `layers` messages applied.
	LayersMessages atomic.Int64
}

// SimulcastLayer is one encoding. It is a Synth's LayerWriter: packets
// written while the layer is paused, or before the extension ids are
// known, are dropped.
type SimulcastLayer struct {
	Track    *webrtc.TrackLocalStaticRTP
	sim      *Simulcast
	rid      string
	midBytes []byte // read only: the header extension payloads
	ridBytes []byte
	out      rtpWriter // Track, or a test's capture

	paused   atomic.Bool
	keyframe atomic.Bool

	// Written counts packets handed to the track; Dropped those
	// withheld (paused, or not negotiated yet).
	Written, Dropped atomic.Int64
}

// newSimulcast adds a send-only transceiver with one encoding per rid to
// pc and gives it mid.
func newSimulcast(pc *webrtc.PeerConnection, codec webrtc.RTPCodecCapability, trackID, streamID, mid string,
	rids []string) (*Simulcast, error) {
	if len(rids) == 0 {
		return nil, fmt.Errorf("%w: no rids", ErrSimulcast)
	}
	s := &Simulcast{mid: mid}
	for _, rid := range rids {
		if rid == "" || slices.Contains(rids[:len(s.layers)], rid) {
			return nil, fmt.Errorf("%w: rids %q: empty or repeated", ErrSimulcast, rids)
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(codec, trackID, streamID, webrtc.WithRTPStreamID(rid))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSimulcast, err)
		}
		s.layers = append(s.layers, &SimulcastLayer{Track: tr, sim: s, rid: rid, midBytes: []byte(mid),
			ridBytes: []byte(rid), out: tr})
	}
	tr, err := pc.AddTransceiverFromTrack(s.layers[0].Track,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSimulcast, err)
	}
	fail := func(err error) (*Simulcast, error) {
		_ = pc.RemoveTrack(tr.Sender())
		return nil, fmt.Errorf("%w: %v", ErrSimulcast, err)
	}
	if err := tr.SetMid(mid); err != nil {
		return fail(err)
	}
	s.Sender = tr.Sender()
	if mid, rid := extensionIDs(s.Sender.GetParameters().HeaderExtensions); mid == 0 || rid == 0 {
		return fail(fmt.Errorf("the MediaEngine lacks the sdes:mid or sdes:rtp-stream-id header extension " +
			"(webrtc.ConfigureSimulcastExtensionHeaders)"))
	}
	for _, l := range s.layers[1:] {
		if err := s.Sender.AddEncoding(l.Track); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// Mid is the sender's media section in our SDP (what `layers` names).
func (s *Simulcast) Mid() string { return s.mid }

// Layers returns the layers in the order of the rids given, smallest first
// by convention.
func (s *Simulcast) Layers() []*SimulcastLayer { return s.layers }

// Layer returns the layer of rid, or nil.
func (s *Simulcast) Layer(rid string) *SimulcastLayer {
	for _, l := range s.layers {
		if l.rid == rid {
			return l
		}
	}
	return nil
}

// Active returns the rids the server last said somebody receives (nil
// before any `layers` message: every layer is sent).
func (s *Simulcast) Active() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.active)
}

// Negotiated reports whether the extension ids are known, that is,
// whether packets are being stamped and sent.
func (s *Simulcast) Negotiated() bool { return s.ids.Load() != 0 }

// refreshIDs reads the negotiated sdes:mid and sdes:rtp-stream-id ids from
// the sender; called after every negotiation, on the event loop. The
// first time they are known every layer is asked for a keyframe: whatever
// was written before went nowhere.
func (s *Simulcast) refreshIDs() {
	midID, ridID := extensionIDs(s.Sender.GetParameters().HeaderExtensions)
	if midID == 0 || ridID == 0 {
		return // not negotiated (yet), or the peer refused the extensions
	}
	if s.ids.Swap(uint32(midID)<<8|uint32(ridID)) == 0 {
		for _, l := range s.layers {
			l.keyframe.Store(true)
		}
	}
}

// extensionIDs finds the sdes:mid and sdes:rtp-stream-id ids (0: absent).
func extensionIDs(exts []webrtc.RTPHeaderExtensionParameter) (mid, rid int) {
	for _, e := range exts {
		if e.ID <= 0 || e.ID > 255 {
			continue
		}
		switch e.URI {
		case sdp.SDESMidURI:
			mid = e.ID
		case sdp.SDESRTPStreamIDURI:
			rid = e.ID
		}
	}
	return mid, rid
}

// setActive applies a `layers` message: listed layers are sent, the
// others paused. A layer that comes back starts with a keyframe (the
// Synth sees it resume), so its receivers can decode at once.
func (s *Simulcast) setActive(rids []string) {
	s.mu.Lock()
	s.active = slices.Clone(rids)
	if s.active == nil {
		s.active = []string{}
	}
	s.mu.Unlock()
	for _, l := range s.layers {
		l.paused.Store(!slices.Contains(rids, l.rid))
	}
	s.LayersMessages.Add(1)
}

// watchRTCP reads each layer's RTCP (which also runs the sender's RTCP
// interceptors, the NACK responder among them) and turns PLI and FIR into
// a keyframe on that layer. The readers end when the sender stops.
func (s *Simulcast) watchRTCP() {
	for _, l := range s.layers {
		go func() {
			for {
				pkts, _, err := s.Sender.ReadSimulcastRTCP(l.rid)
				if err != nil {
					return // the sender stopped (as Synth.WatchRTCP)
				}
				for _, p := range pkts {
					switch p.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						l.keyframe.Store(true)
					}
				}
			}
		}()
	}
}

// RID names the layer.
func (l *SimulcastLayer) RID() string { return l.rid }

// Paused reports whether the server said nobody receives this layer.
func (l *SimulcastLayer) Paused() bool { return l.paused.Load() }

// KeyframeRequested reports, once per request, that a receiver asked for
// a keyframe of this layer (PLI or FIR) or that one is needed to start.
func (l *SimulcastLayer) KeyframeRequested() bool { return l.keyframe.Swap(false) }

// WriteRTP stamps the mid and rid extensions on p and sends it, unless
// the layer is paused or not negotiated yet. p's header keeps the
// extensions (a Synth reuses its packet; they are replaced in place, so
// nothing is allocated per packet).
func (l *SimulcastLayer) WriteRTP(p *rtp.Packet) error {
	ids := l.sim.ids.Load()
	if ids == 0 || l.paused.Load() {
		l.Dropped.Add(1)
		return nil
	}
	if err := stampSimulcast(&p.Header, uint8(ids>>8), uint8(ids), l.midBytes, l.ridBytes); err != nil {
		l.Dropped.Add(1)
		return err
	}
	l.Written.Add(1)
	return l.out.WriteRTP(p)
}

// stampSimulcast puts the sdes:mid and sdes:rtp-stream-id extensions on h.
func stampSimulcast(h *rtp.Header, midID, ridID uint8, mid, rid []byte) error {
	if err := h.SetExtension(midID, mid); err != nil {
		return fmt.Errorf("%w: mid extension: %v", ErrSimulcast, err)
	}
	if err := h.SetExtension(ridID, rid); err != nil {
		return fmt.Errorf("%w: rid extension: %v", ErrSimulcast, err)
	}
	return nil
}
