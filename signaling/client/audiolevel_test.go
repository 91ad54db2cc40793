package client

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/internal/peertest"
)

// What the server's slots need to tell speakers apart, and what its
// speaker selection reads: the source in the payload and the level in the
// header extension, stamped in place on the Synth's reused packet.
func TestAudioSenderStampsLevelAndSource(t *testing.T) {
	c := &capture{}
	a := &AudioSender{out: c}
	a.SetLevel(LevelSpeech, true)
	// No id negotiated yet: packets go out unstamped.
	runWriter(t, &Synth{Source: 7}, 2, a)
	for i, p := range c.pkts {
		if p.Extension {
			t.Errorf("packet %d stamped before the id was known: %+v", i, p.Header)
		}
	}
	a.id.Store(3)
	c.pkts = nil
	runWriter(t, &Synth{Source: 7}, 3, a)
	pkts := c.pkts
	for i, p := range pkts {
		ext := p.GetExtension(3)
		if len(ext) != 1 || ext[0] != 0x80|LevelSpeech {
			t.Errorf("packet %d: level extension %#x, want %#x", i, ext, 0x80|LevelSpeech)
		}
		if src, ok := AudioSource(p.Payload); !ok || src != 7 {
			t.Errorf("packet %d: source %d (%v), want 7", i, src, ok)
		}
		if _, cnt, ok := ReadTrailer(p.Payload); !ok || cnt != uint32(i+1) {
			t.Errorf("packet %d: trailer %v counter %d", i, ok, cnt)
		}
	}
	a.SetLevel(300, false) // clamped to silence
	if l, v := a.Level(); l != LevelSilence || v {
		t.Errorf("level %d voice %v, want %d false", l, v, LevelSilence)
	}
	// Without a Source, nothing claims one; video has none.
	for _, p := range runTicks(t, &Synth{}, 2) {
		if src, ok := AudioSource(p.Payload); ok {
			t.Errorf("source %d in a Synth without one", src)
		}
	}
	if _, ok := AudioSource(make([]byte, 80)); ok {
		t.Error("a source read from a payload without a trailer")
	}
}

// runWriter drives s for n ticks on w without sleeping.
func runWriter(t *testing.T, s *Synth, n int, w rtpWriter) {
	t.Helper()
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, w, ticks) }()
	for i := 0; i < n; i++ {
		select {
		case ticks <- time.Time{}:
		case <-time.After(10 * time.Second):
			t.Fatal("synth stopped taking ticks")
		}
	}
	cancel()
	<-done
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

// With real Pion peers: the level arrives in the extension the receiver
// negotiated (the id is read from the sender after negotiation).
func TestAudioLevelPionLoopback(t *testing.T) {
	pub := publisherPC(t)
	subAPI := func() *webrtc.API {
		me := &webrtc.MediaEngine{}
		if err := me.RegisterDefaultCodecs(); err != nil {
			t.Fatal(err)
		}
		// A receiver that numbers the extension differently: the
		// answer's id is not necessarily the one we registered.
		for _, uri := range []string{"urn:example:pad1", "urn:example:pad2", sdp.AudioLevelURI} {
			if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri},
				webrtc.RTPCodecTypeAudio); err != nil {
				t.Fatal(err)
			}
		}
		se := webrtc.SettingEngine{}
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me),
			webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	}()
	sub, err := subAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	type seen struct {
		level  byte
		source uint32
	}
	got := make(chan seen, 1)
	var readers sync.WaitGroup
	sub.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		readers.Add(1)
		defer readers.Done()
		id := 0
		for _, e := range recv.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI {
				id = e.ID
			}
		}
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			ext := p.GetExtension(uint8(id))
			src, _ := AudioSource(p.Payload)
			if id != 0 && len(ext) == 1 {
				select {
				case got <- seen{ext[0], src}:
				default:
				}
			}
		}
	})

	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2}, "audio", "pub")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pub.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	a := &AudioSender{Track: track, Sender: sender, out: track}
	a.SetLevel(30, true)
	// The receiver offers, so the ids are the receiver's.
	if _, err := sub.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	peertest.Negotiate(t, sub, pub)
	a.refreshID()
	if a.ExtensionID() == 0 {
		t.Fatalf("no audio level id after negotiation: %+v", sender.GetParameters().HeaderExtensions)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); (&Synth{Writer: a, Source: 42}).Run(ctx) }()
	select {
	case s := <-got:
		if s.level != 0x80|30 || s.source != 42 {
			t.Errorf("received level byte %#x source %d, want %#x and 42", s.level, s.source, 0x80|30)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no stamped audio packet arrived")
	}
	cancel()
	<-done
	_ = pub.Close()
	_ = sub.Close()
	readers.Wait()
}

// levelID finds the negotiated audio level id, and only a one-byte id (a
// two-byte one is not what browsers or the server use for it).
func TestLevelID(t *testing.T) {
	for _, c := range []struct {
		exts []webrtc.RTPHeaderExtensionParameter
		want int
	}{
		{[]webrtc.RTPHeaderExtensionParameter{{URI: sdp.SDESMidURI, ID: 1}}, 0},
		{[]webrtc.RTPHeaderExtensionParameter{{URI: sdp.SDESMidURI, ID: 1}, {URI: sdp.AudioLevelURI, ID: 5}}, 5},
		{[]webrtc.RTPHeaderExtensionParameter{{URI: sdp.AudioLevelURI, ID: 15}}, 0},
	} {
		if got := levelID(c.exts); got != c.want {
			t.Errorf("levelID(%+v) = %d, want %d", c.exts, got, c.want)
		}
	}
}

// A silent microphone with DTX negotiated sends one frame in 20, with the
// timestamps of the frames it skipped, and continuous sequence numbers; it
// sends every frame again as soon as it speaks.
func TestSynthDTX(t *testing.T) {
	c := &capture{}
	a := &AudioSender{out: c}
	a.SetLevel(LevelSilence, false)
	a.dtx.Store(true)
	speakAt := 3*dtxEvery + 5
	// The microphone starts speaking as frame speakAt is asked about, from
	// the sending goroutine itself: switching it from the ticking
	// goroutine would race with the frame before. Synth asks about every
	// frame that is not a multiple of dtxEvery.
	askSpeech := 0
	for f := 1; f <= speakAt; f++ {
		if f%dtxEvery != 0 {
			askSpeech++
		}
	}
	asked := 0
	s := &Synth{Writer: a, DTX: func() bool {
		if asked++; asked == askSpeech {
			a.SetLevel(LevelSpeech, true)
		}
		return a.Discontinuous()
	}}
	runWriter(t, s, speakAt+10, a)
	// Frames 0, 20, 40, 60 while silent (tick i sends frame i), then the
	// 10 frames from speakAt on.
	var frames []int
	for i, p := range c.pkts {
		frames = append(frames, int((p.Timestamp-c.pkts[0].Timestamp)/960))
		if i > 0 && p.SequenceNumber != c.pkts[i-1].SequenceNumber+1 {
			t.Errorf("sequence numbers jump at packet %d: %d after %d", i, p.SequenceNumber, c.pkts[i-1].SequenceNumber)
		}
	}
	want := []int{0, 20, 40, 60}
	for f := speakAt; f < speakAt+10; f++ {
		want = append(want, f)
	}
	if !slices.Equal(frames, want) {
		t.Fatalf("frames sent %v, want %v", frames, want)
	}
	// Not negotiated: every frame, silent or not.
	a.dtx.Store(false)
	a.SetLevel(LevelSilence, false)
	if n := len(runTicks(t, &Synth{Writer: a, DTX: a.Discontinuous}, 30)); n != 30 {
		t.Fatalf("%d of 30 frames sent without DTX negotiated", n)
	}
}

// The sender follows usedtx=1 on an Opus format line of its own media
// section only.
func TestRemoteWantsDTX(t *testing.T) {
	desc := strings.Join([]string{
		"v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:0",
		"a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:1",
		"a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;usedtx=0",
		"m=audio 9 UDP/TLS/RTP/SAVPF 96 111", "c=IN IP4 0.0.0.0", "a=mid:2",
		"a=rtpmap:96 red/48000/2", "a=fmtp:96 usedtx=1", "a=rtpmap:111 opus/48000/2",
		"",
	}, "\r\n")
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(desc); err != nil {
		t.Fatal(err)
	}
	for mid, want := range map[string]bool{"0": true, "1": false, "2": false, "3": false} {
		if got := remoteWantsDTX(&sd, mid); got != want {
			t.Errorf("mid %s: %v, want %v", mid, got, want)
		}
	}
}
