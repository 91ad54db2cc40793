package sfu

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ducha-dev/ducha/internal/bwe"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Speaker slots carry the audio of large rooms. A participant who joins a
// room of more than LargeRoom participants does not subscribe to every
// other participant's microphone (117 audio tracks per county, and one
// renegotiation of every county for each county that joins): it gets
// MaxSpeakers audio tracks, the slots, and the server puts the loudest
// speakers' audio on them as speakers change. Clients play every slot and
// learn who speaks from `active-speakers` (PROTOCOL.md, "Large rooms").
//
// A slot is a webrtc.TrackLocal (its own SSRC toward the client) and a
// Subscriber of the speaker's audio stream it carries now. Sequence numbers
// and timestamps run on across speaker changes.

// SlotPrefix starts the msid stream and track ids of speaker slots
// ("speaker-0", "speaker-1", ...).
const SlotPrefix = "speaker-"

type speakerSlot struct {
	idx   int
	ctr   *counters
	clock Clock
	ready *atomic.Bool

	mu     sync.Mutex
	bound  bool
	closed bool
	rtpOut
	src     *UpTrack
	srcSSRC uint32
	mung    munger
}

func newSpeakerSlot(idx int, ctr *counters, clock Clock, ready *atomic.Bool, tw *bwe.Estimator, eg *atomic.Pointer[egress]) *speakerSlot {
	return &speakerSlot{idx: idx, ctr: ctr, clock: clock, ready: ready, rtpOut: rtpOut{tw: tw, eg: eg}}
}

func (s *speakerSlot) ID() string       { return SlotPrefix + strconv.Itoa(s.idx) }
func (s *speakerSlot) StreamID() string { return s.ID() }
func (s *speakerSlot) RID() string      { return "" }
func (s *speakerSlot) Kind() webrtc.RTPCodecType {
	return webrtc.RTPCodecTypeAudio
}

// Bind picks Opus, the one audio codec ducha forwards.
func (s *speakerSlot) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) {
			s.mu.Lock()
			s.bound = true
			s.bindOut(ctx, uint8(c.PayloadType), c.ClockRate)
			s.mu.Unlock()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

func (s *speakerSlot) Unbind(webrtc.TrackLocalContext) error {
	s.mu.Lock()
	s.bound = false
	s.mu.Unlock()
	return nil
}

// WriteRTP implements Subscriber: packets of the speaker the slot carries.
func (s *speakerSlot) WriteRTP(p *rtp.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A packet in flight from the previous speaker is dropped.
	if !s.bound || s.closed || !s.ready.Load() || p.SSRC != s.srcSSRC {
		return nil
	}
	now := s.clock.Now()
	seq, ts, ok := s.mung.rewrite(p.SequenceNumber, p.Timestamp, now, 48000)
	if !ok {
		return nil
	}
	return s.send(p, seq, ts, now, s.ctr)
}

// Resync implements Subscriber.
func (s *speakerSlot) Resync() {
	s.mu.Lock()
	s.mung.requestResync()
	s.mu.Unlock()
}

// carry makes the slot forward up's audio (nil: nothing).
func (s *speakerSlot) carry(up *UpTrack) {
	s.mu.Lock()
	if s.closed || s.src == up {
		s.mu.Unlock()
		return
	}
	old := s.src
	s.src = up
	s.srcSSRC = 0
	var l *upLayer
	if up != nil {
		if l = up.base(); l != nil {
			s.srcSSRC = l.ssrc
		}
	}
	s.mung.requestResync()
	s.mu.Unlock()
	if old != nil {
		if ol := old.base(); ol != nil {
			ol.unsubscribe(s)
		}
	}
	if l != nil {
		l.subscribe(s)
	}
}

func (s *speakerSlot) source() *UpTrack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src
}

func (s *speakerSlot) close() {
	s.carry(nil)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// rtcpLoop reads the slot's RTCP: Pion's interceptors see the receiver
// reports, and the connection's transport-wide feedback may name this
// slot's SSRC. Audio has no NACK or keyframes to answer.
func (s *speakerSlot) rtcpLoop(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			if fb, ok := pkt.(*rtcp.TransportLayerCC); ok && s.tw != nil {
				s.tw.Feedback(fb, s.clock.Now())
			}
		}
	}
}

// addSlotsLocked gives p its speaker slots (once); the caller sends the
// offer.
func (p *Participant) addSlotsLocked(n int) {
	if len(p.slots) > 0 {
		return
	}
	for i := 0; i < n; i++ {
		s := newSpeakerSlot(i, &p.room.sfu.ctr, p.room.sfu.cfg.Clock, &p.ready, p.bwe, &p.egress)
		tr, err := p.pc.AddTransceiverFromTrack(s, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			p.log.Warn("cannot add speaker slot", "err", err)
			return
		}
		go s.rtcpLoop(tr.Sender())
		p.slots = append(p.slots, s)
	}
}

// assignSlots puts the selected speakers (loudest first) on p's slots,
// leaving a speaker on the slot it already has so its audio does not jump
// between tracks; p's own audio is never sent back to it.
func (p *Participant) assignSlots(selected []*UpTrack) {
	p.mu.Lock()
	slots := p.slots
	p.mu.Unlock()
	if len(slots) == 0 {
		return
	}
	want := make([]*UpTrack, 0, len(selected))
	for _, t := range selected {
		if t.info.ParticipantID != p.info.ID && len(want) < len(slots) {
			want = append(want, t)
		}
	}
	placed := make(map[*UpTrack]bool, len(want))
	free := make([]*speakerSlot, 0, len(slots))
	for _, s := range slots {
		src := s.source()
		keep := false
		for _, t := range want {
			if t == src {
				keep = true
			}
		}
		if keep {
			placed[src] = true
		} else {
			free = append(free, s)
		}
	}
	for _, t := range want {
		if placed[t] {
			continue
		}
		free[0].carry(t)
		free = free[1:]
	}
	for _, s := range free {
		s.carry(nil)
	}
}

// writesInline implements inliner, as downTrack's does.
func (s *speakerSlot) writesInline() bool { return true }
