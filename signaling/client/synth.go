package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TrailerLen is the size of the trailer Synth writes at the end of a
// payload: a magic number, the send time (Unix nanoseconds) and the
// stream's packet counter, all big-endian.
const TrailerLen = 16

// trailerMagic marks a trailer: "DUC" and a tag, 'H' for a plain stream or
// '0'+i for simulcast layer i. It tells trailers from the VP8 data of
// packets that carry the start of a large frame and have none.
const (
	trailerMagic    = 0x44554300 // "DUC\0"
	trailerTagPlain = 'H'
	trailerTagLayer = '0'
	maxSynthLayers  = 10
)

// Synth sends synthetic media on a TrackLocalStaticRTP, or as simulcast
// layers.
//
// Video is real VP8 that a decoder accepts (a libvpx keyframe and inter
// frame of a grey picture, padded to FrameBytes; keyframes are three times
// larger), packetised per RFC 7741, with keyframes on PLI/FIR and every
// KeyEvery frames. Audio is Opus-sized: one 20 ms packet with a CELT TOC.
//
// Every packet whose end lies in a frame's padding (all of them but the
// first one or two of a large keyframe, and every audio packet) ends with a
// trailer (see ParseTrailer), so a receiver can measure the forwarding
// delay, count what the publisher sent and tell which layer it receives.
type Synth struct {
	Track *webrtc.TrackLocalStaticRTP
	// Writer, if set, is where a plain (not simulcast) Synth writes
	// instead of Track: an *AudioSender stamps the audio level.
	Writer      RTPWriter
	Video       bool
	FPS         int // video frames per second (default 30)
	FrameBytes  int // video bytes per inter frame (default 4000: ~1 Mbit/s at 30 fps)
	PacketBytes int // max payload per packet (default 1100)
	KeyEvery    int // periodic keyframe interval in frames (default 100)
	// Width and Height choose the picture size: the largest of 320x180,
	// 640x360 and 1280x720 that fits (default 640x360).
	Width, Height int
	// Layers, if set, makes a video Synth send simulcast instead of on
	// Track: every frame on every layer that is not paused, same RTP
	// timestamp, each layer with its own sequence numbers, picture size
	// and frame size. Smallest first: the index is the layer number in
	// the trailer.
	Layers     []SynthLayer
	AudioBytes int              // audio payload per packet (default 80)
	Now        func() time.Time // time written into trailers (default time.Now)
	// Source, if not 0, is written into every audio packet (see
	// AudioSource): the server's speaker slots carry different speakers'
	// audio on one track, and a receiver tells them apart by it.
	Source uint32
	// DTX, if set, is asked before every audio frame whether the source
	// sends discontinuously now (AudioSender.Discontinuous: Opus DTX
	// negotiated, microphone silent). Then only every dtxEvery-th frame
	// goes out, as with libopus's DTX in a browser; the RTP timestamp
	// still advances over the frames not sent, sequence numbers stay
	// continuous.
	DTX func() bool

	keyframeWanted atomic.Bool
	err            atomic.Pointer[error]
	Sent           atomic.Int64 // packets
	SentBytes      atomic.Int64 // payload bytes
	Keyframes      atomic.Int64 // keyframes sent (each layer's count)
}

// SynthLayer is one simulcast layer of a video Synth.
type SynthLayer struct {
	Out LayerWriter
	// Width and Height pick the VP8 picture as Synth.Width/Height do: the
	// keyframes carry that size (the SFU reads it).
	Width, Height int
	FrameBytes    int // inter frame bytes (default: the Synth's)
}

// LayerWriter is where one simulcast layer's packets go; *SimulcastLayer
// is one.
type LayerWriter interface {
	WriteRTP(p *rtp.Packet) error
	// Paused: send nothing of this layer now. The next frame after a
	// pause is a keyframe.
	Paused() bool
	// KeyframeRequested reports (and forgets) a receiver's request.
	KeyframeRequested() bool
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

// dtxEvery: libopus in DTX mode sends one 20 ms frame in 20 while the
// input is silent (a comfort noise update every 400 ms).
const dtxEvery = 20

// synthFrames is a video stream's two frames, padded, built once per Run.
type synthFrames struct {
	key, inter       []byte
	keyLen, interLen int // VP8 data before the padding
}

func buildFrames(w, h, frameBytes int) (synthFrames, error) {
	vp8, err := pickVP8(w, h)
	if err != nil {
		return synthFrames{}, err
	}
	return synthFrames{
		key: pad(vp8.key, 3*frameBytes), inter: pad(vp8.inter, frameBytes),
		keyLen: len(vp8.key), interLen: len(vp8.inter),
	}, nil
}

// synthStream is one RTP stream a Synth sends: the plain track, or one
// simulcast layer.
type synthStream struct {
	w      rtpWriter
	ctl    LayerWriter // nil for a plain stream
	tag    byte        // trailer tag
	fr     synthFrames
	pkt    rtp.Packet
	count  uint32 // packets of this stream, for the trailer
	paused bool
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

// RTPWriter is where packets go: a track, an AudioSender, or a test's
// capture.
type RTPWriter interface {
	WriteRTP(p *rtp.Packet) error
}

type rtpWriter = RTPWriter

// Run sends until ctx ends.
func (s *Synth) Run(ctx context.Context) {
	period := 20 * time.Millisecond
	if s.Video {
		fps, _, _, _, _, _ := s.defaults()
		period = time.Second / time.Duration(fps)
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	var w rtpWriter
	switch {
	case s.Writer != nil:
		w = s.Writer
	case s.Track != nil:
		w = s.Track
	}
	s.run(ctx, w, tick.C)
}

// streams builds what run sends on: w alone, or the layers.
func (s *Synth) streams(w rtpWriter, frameBytes int) ([]*synthStream, error) {
	if !s.Video {
		return []*synthStream{{w: w, tag: trailerTagPlain}}, nil
	}
	if len(s.Layers) == 0 {
		fr, err := buildFrames(s.Width, s.Height, frameBytes)
		return []*synthStream{{w: w, tag: trailerTagPlain, fr: fr}}, err
	}
	if len(s.Layers) > maxSynthLayers {
		return nil, fmt.Errorf("%w: %d layers, at most %d", ErrSimulcast, len(s.Layers), maxSynthLayers)
	}
	out := make([]*synthStream, 0, len(s.Layers))
	for i, l := range s.Layers {
		if l.Out == nil {
			return nil, fmt.Errorf("%w: layer %d has no writer", ErrSimulcast, i)
		}
		fb := l.FrameBytes
		if fb <= 0 {
			fb = frameBytes
		}
		fr, err := buildFrames(l.Width, l.Height, fb)
		if err != nil {
			return nil, err
		}
		out = append(out, &synthStream{w: l.Out, ctl: l.Out, tag: byte(trailerTagLayer + i), fr: fr})
	}
	return out, nil
}

// run sends one frame (or audio packet) per tick.
func (s *Synth) run(ctx context.Context, w rtpWriter, ticks <-chan time.Time) {
	fps, frameBytes, pktBytes, keyEvery, audioBytes, now := s.defaults()
	streams, err := s.streams(w, frameBytes)
	if err == nil && len(s.Layers) == 0 && w == nil {
		err = errors.New("client: Synth has no Track or Writer")
	}
	if err != nil {
		s.err.Store(&err)
		return
	}
	for _, st := range streams {
		st.pkt.Version = 2
	}
	tsStep := uint32(90000 / fps)
	if !s.Video {
		tsStep = 960
	}
	payload := make([]byte, max(pktBytes, audioBytes))
	var ts uint32
	for frame := 0; ; frame++ {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		ts += tsStep
		if !s.Video {
			if s.DTX != nil && frame%dtxEvery != 0 && s.DTX() {
				continue
			}
			p := payload[:audioBytes]
			clear(p)
			p[0] = 0xf8 // Opus TOC: CELT fullband 20 ms, mono, one frame
			if s.Source != 0 && len(p) >= audioSourceEnd+TrailerLen {
				binary.BigEndian.PutUint32(p[1:audioSourceEnd], s.Source)
			}
			s.send(streams[0], p, ts, true, true, now)
			continue
		}
		wanted := s.keyframeWanted.Swap(false)
		for _, st := range streams {
			key := frame%keyEvery == 0 || wanted
			if st.ctl != nil {
				if st.ctl.Paused() {
					st.paused = true
					continue
				}
				// A layer coming back starts with a keyframe: its
				// receivers have nothing to decode from.
				key = key || st.paused || st.ctl.KeyframeRequested()
				st.paused = false
			}
			if key {
				s.Keyframes.Add(1)
				s.sendFrame(st, payload, st.fr.key, st.fr.keyLen, ts, pktBytes-1, now)
			} else {
				s.sendFrame(st, payload, st.fr.inter, st.fr.interLen, ts, pktBytes-1, now)
			}
		}
	}
}

// sendFrame splits a frame into packets of nearly equal size (as browsers
// do), each with the one-byte VP8 payload descriptor.
func (s *Synth) sendFrame(st *synthStream, payload, frame []byte, dataLen int, ts uint32, chunk int, now func() time.Time) {
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
		s.send(st, payload[:1+size], ts, i == n-1, off-TrailerLen >= dataLen, now)
	}
}

func (s *Synth) send(st *synthStream, p []byte, ts uint32, marker, trailer bool, now func() time.Time) {
	st.count++
	s.Sent.Add(1)
	if trailer && len(p) >= TrailerLen+1 {
		t := p[len(p)-TrailerLen:]
		binary.BigEndian.PutUint32(t[0:4], trailerMagic|uint32(st.tag))
		binary.BigEndian.PutUint64(t[4:12], uint64(now().UnixNano()))
		binary.BigEndian.PutUint32(t[12:16], st.count)
	}
	pkt := &st.pkt
	pkt.SequenceNumber++
	pkt.Timestamp, pkt.Marker, pkt.Payload = ts, marker, p
	_ = st.w.WriteRTP(pkt)
	s.SentBytes.Add(int64(len(p)))
}

// pad returns a copy of b grown with zeros to at least n bytes.
func pad(b []byte, n int) []byte {
	out := make([]byte, max(n, len(b)))
	copy(out, b)
	return out
}

// Trailer is what Synth writes at the end of a payload.
type Trailer struct {
	SendUnixNano int64
	// Counter counts every packet of the stream (with or without a
	// trailer); each simulcast layer counts its own.
	Counter uint32
	// Layer is the simulcast layer's index in Synth.Layers (0 smallest),
	// or -1 for a plain stream.
	Layer int
}

// ParseTrailer reads the trailer Synth wrote at the end of a payload; ok
// is false when the payload has none.
func ParseTrailer(payload []byte) (t Trailer, ok bool) {
	if len(payload) < TrailerLen {
		return Trailer{}, false
	}
	b := payload[len(payload)-TrailerLen:]
	magic := binary.BigEndian.Uint32(b[0:4])
	tag := byte(magic)
	switch {
	case magic&^0xff != trailerMagic:
		return Trailer{}, false
	case tag == trailerTagPlain:
		t.Layer = -1
	case tag >= trailerTagLayer && tag < trailerTagLayer+maxSynthLayers:
		t.Layer = int(tag - trailerTagLayer)
	default:
		return Trailer{}, false
	}
	t.SendUnixNano, t.Counter = int64(binary.BigEndian.Uint64(b[4:12])), binary.BigEndian.Uint32(b[12:16])
	return t, true
}

// audioSourceEnd: Synth.Source sits right after the Opus TOC byte.
const audioSourceEnd = 5

// AudioSource reads the Synth.Source of an audio packet's payload (ok is
// false when the payload has no trailer or no source).
func AudioSource(payload []byte) (source uint32, ok bool) {
	t, ok := ParseTrailer(payload)
	if !ok || t.Layer != -1 || len(payload) < audioSourceEnd+TrailerLen {
		return 0, false
	}
	source = binary.BigEndian.Uint32(payload[1:audioSourceEnd])
	return source, source != 0
}

// ReadTrailer reads the trailer Synth wrote at the end of a payload: the
// send time in Unix nanoseconds and the stream's packet counter (which
// counts every packet, with or without a trailer). ok is false when the
// payload has none.
func ReadTrailer(payload []byte) (sendUnixNano int64, counter uint32, ok bool) {
	t, ok := ParseTrailer(payload)
	return t.SendUnixNano, t.Counter, ok
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
