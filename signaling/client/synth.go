package client

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TrailerLen is the size of the trailer Synth writes at the end of a
// payload: a magic number, the send time (Unix nanoseconds) and the
// publisher's packet counter, all big-endian.
const TrailerLen = 16

// trailerMagic marks a trailer ("DUCH"); it tells trailers from the VP8
// data of packets that carry the start of a large frame and have none.
const trailerMagic = 0x44554348

// Synth sends synthetic media on a TrackLocalStaticRTP.
//
// Video is real VP8 that a decoder accepts (a libvpx keyframe and inter
// frame of a grey picture, padded to FrameBytes; keyframes are three times
// larger), packetised per RFC 7741, with keyframes on PLI/FIR and every
// KeyEvery frames. Audio is Opus-sized: one 20 ms packet with a CELT TOC.
//
// Every packet whose end lies in a frame's padding (all of them but the
// first one or two of a large keyframe, and every audio packet) ends with a
// trailer (see ReadTrailer), so a receiver can measure the forwarding delay
// and count what the publisher sent.
type Synth struct {
	Track       *webrtc.TrackLocalStaticRTP
	Video       bool
	FPS         int // video frames per second (default 30)
	FrameBytes  int // video bytes per inter frame (default 4000: ~1 Mbit/s at 30 fps)
	PacketBytes int // max payload per packet (default 1100)
	KeyEvery    int // periodic keyframe interval in frames (default 100)
	// Width and Height choose the picture size: the largest of 320x180,
	// 640x360 and 1280x720 that fits (default 640x360).
	Width, Height int
	AudioBytes    int              // audio payload per packet (default 80)
	Now           func() time.Time // time written into trailers (default time.Now)

	keyframeWanted atomic.Bool
	err            atomic.Pointer[error]
	Sent           atomic.Int64 // packets
	SentBytes      atomic.Int64 // payload bytes
	Keyframes      atomic.Int64 // keyframes sent
}

// WatchRTCP reads the sender's RTCP and requests a keyframe on PLI/FIR.
// Reading also runs the sender's RTCP interceptors (the NACK responder).
func (s *Synth) WatchRTCP(sender *webrtc.RTPSender) {
	go func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				switch p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					s.keyframeWanted.Store(true)
				}
			}
		}
	}()
}

// Err reports why Run stopped early (nil if it ran until ctx ended).
func (s *Synth) Err() error {
	if e := s.err.Load(); e != nil {
		return *e
	}
	return nil
}

// synthFrames is a video Synth's two frames, padded, built once per Run.
type synthFrames struct {
	key, inter       []byte
	keyLen, interLen int // VP8 data before the padding
}

func (s *Synth) defaults() (fps, frameBytes, pktBytes, keyEvery, audioBytes int, now func() time.Time) {
	fps, frameBytes, pktBytes, keyEvery, audioBytes, now = s.FPS, s.FrameBytes, s.PacketBytes, s.KeyEvery, s.AudioBytes, s.Now
	if fps <= 0 {
		fps = 30
	}
	if frameBytes <= 0 {
		frameBytes = 4000
	}
	if pktBytes <= TrailerLen+1 {
		pktBytes = 1100
	}
	if keyEvery <= 0 {
		keyEvery = 100
	}
	if audioBytes <= 0 {
		audioBytes = 80
	}
	if now == nil {
		now = time.Now
	}
	return
}

// rtpWriter is where packets go: the track, or a test's capture.
type rtpWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// Run sends until ctx ends.
func (s *Synth) Run(ctx context.Context) {
	period := 20 * time.Millisecond
	if s.Video {
		fps, _, _, _, _, _ := s.defaults()
		period = time.Second / time.Duration(fps)
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	s.run(ctx, s.Track, tick.C)
}

// run sends one frame (or audio packet) per tick.
func (s *Synth) run(ctx context.Context, w rtpWriter, ticks <-chan time.Time) {
	fps, frameBytes, pktBytes, keyEvery, audioBytes, now := s.defaults()
	var fr synthFrames
	if s.Video {
		vp8, err := pickVP8(s.Width, s.Height)
		if err != nil {
			s.err.Store(&err)
			return
		}
		fr = synthFrames{
			key: pad(vp8.key, 3*frameBytes), inter: pad(vp8.inter, frameBytes),
			keyLen: len(vp8.key), interLen: len(vp8.inter),
		}
	}
	tsStep := uint32(90000 / fps)
	if !s.Video {
		tsStep = 960
	}
	payload := make([]byte, max(pktBytes, audioBytes))
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2}}
	var ts uint32
	for frame := 0; ; frame++ {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		ts += tsStep
		if !s.Video {
			p := payload[:audioBytes]
			clear(p)
			p[0] = 0xf8 // Opus TOC: CELT fullband 20 ms, mono, one frame
			s.send(w, pkt, p, ts, true, true, now)
			continue
		}
		if frame%keyEvery == 0 || s.keyframeWanted.Swap(false) {
			s.Keyframes.Add(1)
			s.sendFrame(w, pkt, payload, fr.key, fr.keyLen, ts, pktBytes-1, now)
		} else {
			s.sendFrame(w, pkt, payload, fr.inter, fr.interLen, ts, pktBytes-1, now)
		}
	}
}

// sendFrame splits a frame into packets of nearly equal size (as browsers
// do), each with the one-byte VP8 payload descriptor.
func (s *Synth) sendFrame(w rtpWriter, pkt *rtp.Packet, payload, frame []byte, dataLen int, ts uint32, chunk int, now func() time.Time) {
	n := (len(frame) + chunk - 1) / chunk
	base, extra := len(frame)/n, len(frame)%n
	off := 0
	for i := 0; i < n; i++ {
		size := base
		if i < extra {
			size++
		}
		payload[0] = 0
		if i == 0 {
			payload[0] = 0x10 // S: start of partition 0
		}
		copy(payload[1:], frame[off:off+size])
		off += size
		// Trailers go only over padding: VP8 data must stay intact.
		s.send(w, pkt, payload[:1+size], ts, i == n-1, off-TrailerLen >= dataLen, now)
	}
}

func (s *Synth) send(w rtpWriter, pkt *rtp.Packet, p []byte, ts uint32, marker, trailer bool, now func() time.Time) {
	count := s.Sent.Add(1)
	if trailer && len(p) >= TrailerLen+1 {
		t := p[len(p)-TrailerLen:]
		binary.BigEndian.PutUint32(t[0:4], trailerMagic)
		binary.BigEndian.PutUint64(t[4:12], uint64(now().UnixNano()))
		binary.BigEndian.PutUint32(t[12:16], uint32(count))
	}
	pkt.SequenceNumber++
	pkt.Timestamp, pkt.Marker, pkt.Payload = ts, marker, p
	_ = w.WriteRTP(pkt)
	s.SentBytes.Add(int64(len(p)))
}

// pad returns a copy of b grown with zeros to at least n bytes.
func pad(b []byte, n int) []byte {
	out := make([]byte, max(n, len(b)))
	copy(out, b)
	return out
}

// ReadTrailer reads the trailer Synth wrote at the end of a payload: the
// send time in Unix nanoseconds and the publisher's packet counter (which
// counts every packet, with or without a trailer). ok is false when the
// payload has none.
func ReadTrailer(payload []byte) (sendUnixNano int64, counter uint32, ok bool) {
	if len(payload) < TrailerLen {
		return 0, 0, false
	}
	t := payload[len(payload)-TrailerLen:]
	if binary.BigEndian.Uint32(t[0:4]) != trailerMagic {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(t[4:12])), binary.BigEndian.Uint32(t[12:16]), true
}

// SendTime reads the embedded send time from a received payload (zero if
// the payload has no trailer). video is kept for compatibility: audio and
// video now carry the same trailer.
func SendTime(payload []byte, video bool) time.Time {
	_ = video
	ns, _, ok := ReadTrailer(payload)
	if !ok {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
