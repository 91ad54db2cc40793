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

// Synth sends synthetic media on a TrackLocalStaticRTP: VP8-framed video
// (valid payload descriptors and key/inter frame headers, so the SFU's
// keyframe logic and a recorder see real frame boundaries) or Opus-sized
// audio. Each payload carries the send time (Unix nanoseconds) after its
// headers, so a receiver can measure forwarding delay.
type Synth struct {
	Track       *webrtc.TrackLocalStaticRTP
	Video       bool
	FPS         int // video frames per second (default 30)
	FrameBytes  int // video bytes per frame (default 4000: ~1 Mbit/s at 30 fps)
	PacketBytes int // max payload per packet (default 1100)
	KeyEvery    int // periodic keyframe interval in frames (default 100)

	keyframeWanted atomic.Bool
	Sent           atomic.Int64 // packets
}

// WatchRTCP reads the sender's RTCP and requests a keyframe on PLI/FIR.
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

// Run sends until ctx ends.
func (s *Synth) Run(ctx context.Context) {
	fps, frameBytes, pktBytes, keyEvery := s.FPS, s.FrameBytes, s.PacketBytes, s.KeyEvery
	if fps <= 0 {
		fps = 30
	}
	if frameBytes <= 0 {
		frameBytes = 4000
	}
	if pktBytes <= 0 {
		pktBytes = 1100
	}
	if keyEvery <= 0 {
		keyEvery = 100
	}
	period, tsStep := time.Second/time.Duration(fps), uint32(90000/fps)
	if !s.Video {
		period, tsStep = 20*time.Millisecond, 960
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	payload := make([]byte, pktBytes)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2}}
	var ts uint32
	for frame := 0; ; frame++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ts += tsStep
		if !s.Video {
			n := 80
			binary.BigEndian.PutUint64(payload[0:8], uint64(time.Now().UnixNano()))
			pkt.Timestamp, pkt.Marker, pkt.Payload = ts, true, payload[:n]
			pkt.SequenceNumber++
			_ = s.Track.WriteRTP(pkt)
			s.Sent.Add(1)
			continue
		}
		key := frame%keyEvery == 0 || s.keyframeWanted.Swap(false)
		size := frameBytes
		if key {
			size *= 3
		}
		for off := 0; off < size; off += pktBytes - 11 {
			n := min(pktBytes, size-off+11)
			payload[0] = 0
			if off == 0 {
				payload[0] = 0x10 // S: start of partition 0
			}
			payload[1] = 0x01 // VP8 payload header: P=1 inter frame
			if key {
				payload[1] = 0x00
			}
			payload[2] = 0
			binary.BigEndian.PutUint64(payload[3:11], uint64(time.Now().UnixNano()))
			pkt.SequenceNumber++
			pkt.Timestamp = ts
			pkt.Marker = off+pktBytes-11 >= size
			pkt.Payload = payload[:n]
			_ = s.Track.WriteRTP(pkt)
			s.Sent.Add(1)
		}
	}
}

// SendTime reads the embedded send time from a received payload (0 if the
// payload is too short).
func SendTime(payload []byte, video bool) time.Time {
	off := 0
	if video {
		off = 3
	}
	if len(payload) < off+8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(payload[off:off+8])))
}
