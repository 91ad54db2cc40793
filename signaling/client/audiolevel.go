package client

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Audio levels (RFC 6464). Browsers stamp every audio packet with the
// level of the microphone, in -dBov (0 loudest, 127 silence), and the
// server picks the loudest speakers by it (louder than -50 dBov speaks):
// they are named in `active-speakers` and, in large rooms, are the only
// audio forwarded. A Pion sender stamps nothing by itself.
const (
	// LevelSilence is digital silence.
	LevelSilence = 127
	// LevelSpeech is a talker close to the microphone (-25 dBov).
	LevelSpeech = 25
)

// ErrAudioLevel is wrapped around audio publishing failures.
var ErrAudioLevel = errors.New("client: audio level")

// RegisterAudioLevel adds the audio level header extension to a
// MediaEngine, so that it is negotiated (Pion does not register it by
// default).
func RegisterAudioLevel(me *webrtc.MediaEngine) error {
	return me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio)
}

// AudioSender is a published audio track whose packets carry the audio
// level header extension, with the id the negotiation settled on. It is a
// Synth's Writer; one goroutine writes.
type AudioSender struct {
	Track  *webrtc.TrackLocalStaticRTP
	Sender *webrtc.RTPSender
	out    rtpWriter // Track, or a test's capture

	id    atomic.Uint32 // negotiated extension id; 0 before it is known
	level atomic.Uint32 // the extension byte: V flag and level
	dtx   atomic.Bool   // the server's description asks for Opus DTX
	ext   [1]byte       // the writer's copy, so stamping allocates nothing
}

// PublishAudio publishes an audio track (as Publish does) whose packets
// will carry the audio level set by SetLevel (silence until then).
func (c *Client) PublishAudio(track *webrtc.TrackLocalStaticRTP, source string) (*AudioSender, error) {
	var a *AudioSender
	// Registered before the offer goes out: an answer applied before the
	// sender was in c.audios left its DTX flag unset (a rare failure of
	// the load tool's smoke test, "2 audio tracks asked for DTX, want 3").
	_, err := c.publish(track, source, func(sender *webrtc.RTPSender) error {
		if levelID(sender.GetParameters().HeaderExtensions) == 0 {
			return fmt.Errorf("%w: the MediaEngine lacks the audio level header extension (RegisterAudioLevel)",
				ErrAudioLevel)
		}
		a = &AudioSender{Track: track, Sender: sender, out: track}
		a.SetLevel(LevelSilence, false)
		c.mu.Lock()
		c.audios = append(c.audios, a)
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// SetLevel sets the level stamped from now on: -dBov, 0 (loudest) to 127
// (silence); voice sets the RFC 6464 voice activity flag.
func (a *AudioSender) SetLevel(dBov int, voice bool) {
	b := uint32(min(max(dBov, 0), LevelSilence))
	if voice {
		b |= 0x80
	}
	a.level.Store(b)
}

// Level returns the level being stamped (-dBov) and the voice flag.
func (a *AudioSender) Level() (dBov int, voice bool) {
	b := a.level.Load()
	return int(b & 0x7f), b&0x80 != 0
}

// ExtensionID is the negotiated id of the audio level extension (0: not
// known yet; nothing is stamped then).
func (a *AudioSender) ExtensionID() int { return int(a.id.Load()) }

// refreshID reads the negotiated id, after each remote description.
func (a *AudioSender) refreshID() {
	if id := levelID(a.Sender.GetParameters().HeaderExtensions); id != 0 {
		a.id.Store(uint32(id))
	}
}

// DTX reports whether the server's description asks this track for Opus
// DTX.
func (a *AudioSender) DTX() bool { return a.dtx.Load() }

// Discontinuous reports whether a browser would now send this track
// discontinuously: the server asked for Opus DTX (usedtx=1) and the
// microphone is silent. Synth.DTX takes it.
func (a *AudioSender) Discontinuous() bool {
	return a.dtx.Load() && a.level.Load()&0x7f == LevelSilence
}

// remoteWantsDTX reports whether media section mid of a remote description
// says usedtx=1 on an Opus format line (RFC 7587 section 6.1): the sender
// follows what the receiving end asks for.
func remoteWantsDTX(desc *sdp.SessionDescription, mid string) bool {
	for _, md := range desc.MediaDescriptions {
		if m, _ := md.Attribute(sdp.AttrKeyMID); m != mid {
			continue
		}
		opus := map[string]bool{}
		for _, at := range md.Attributes {
			if at.Key != "rtpmap" {
				continue
			}
			pt, codec, _ := strings.Cut(at.Value, " ")
			if strings.HasPrefix(strings.ToLower(codec), "opus/") {
				opus[pt] = true
			}
		}
		for _, at := range md.Attributes {
			pt, params, _ := strings.Cut(at.Value, " ")
			if at.Key != "fmtp" || !opus[pt] {
				continue
			}
			for _, kv := range strings.Split(params, ";") {
				if strings.TrimSpace(kv) == "usedtx=1" {
					return true
				}
			}
		}
		return false
	}
	return false
}

func levelID(exts []webrtc.RTPHeaderExtensionParameter) int {
	for _, e := range exts {
		if e.URI == sdp.AudioLevelURI && e.ID > 0 && e.ID < 15 {
			return e.ID
		}
	}
	return 0
}

// WriteRTP stamps the level on p (in place: a Synth reuses its packet, so
// nothing is allocated per packet) and sends it.
func (a *AudioSender) WriteRTP(p *rtp.Packet) error {
	if id := a.id.Load(); id != 0 {
		a.ext[0] = byte(a.level.Load())
		if err := p.Header.SetExtension(uint8(id), a.ext[:]); err != nil {
			return fmt.Errorf("%w: extension %s: %v", ErrAudioLevel, strconv.Itoa(int(id)), err)
		}
	}
	return a.out.WriteRTP(p)
}
