package sfu

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestWithDTX(t *testing.T) {
	desc := strings.Join([]string{
		"v=0",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 63",
		"a=rtpmap:111 opus/48000/2",
		"a=fmtp:111 minptime=10;useinbandfec=1",
		"a=rtpmap:63 red/48000/2",
		"a=fmtp:63 111/111",
		"m=video 9 UDP/TLS/RTP/SAVPF 111 96",
		"a=rtpmap:111 VP8/90000", // 111 is not Opus in this section
		"a=fmtp:111 x-google-start-bitrate=800",
		"m=audio 9 UDP/TLS/RTP/SAVPF 109",
		"a=rtpmap:109 OPUS/48000/2",
		"a=fmtp:109 usedtx=0", // the browser's own choice stays
		"m=audio 9 UDP/TLS/RTP/SAVPF 110",
		"a=fmtp:110 useinbandfec=1",
		"a=rtpmap:110 opus/48000/2", // format line before the map
		"",
	}, "\r\n")
	got := withDTX(desc)
	want := strings.NewReplacer(
		"a=fmtp:111 minptime=10;useinbandfec=1", "a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1",
		"a=fmtp:110 useinbandfec=1", "a=fmtp:110 useinbandfec=1;usedtx=1",
	).Replace(desc)
	if got != want {
		t.Fatalf("withDTX:\n%s\nwant:\n%s", got, want)
	}
	if again := withDTX(got); again != got {
		t.Fatalf("not idempotent:\n%s", again)
	}
	noOpus := "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=fmtp:96 x=1\r\n"
	if withDTX(noOpus) != noOpus {
		t.Fatal("a description without Opus changed")
	}
}

// The answer to a publisher asks it for DTX, unless the SFU was told not to.
func TestAnswerAsksForDTX(t *testing.T) {
	for _, noDTX := range []bool{false, true} {
		s, err := New(Config{ListenIP: "127.0.0.1", IncludeLoopback: true, NoDTX: noDTX},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{})
		pub.publish("audio")
		// The answer comes back through the client's event queue, after
		// publish returns.
		var remote *webrtc.SessionDescription
		eventually(t, 10*time.Second, "the server's answer applied", func() bool {
			remote = pub.pc.RemoteDescription()
			return remote != nil && remote.Type == webrtc.SDPTypeAnswer
		})
		if got := strings.Contains(remote.SDP, "usedtx=1"); got == noDTX {
			t.Fatalf("NoDTX=%v: answer says usedtx=1: %v\n%s", noDTX, got, remote.SDP)
		}
		pub.close()
		s.Close()
	}
}

// A speaker who stops sending (DTX, a dropped connection) or whom a
// moderator mutes is no longer named a speaker, whatever its last level was.
func TestSilencedSpeakerIsDropped(t *testing.T) {
	s, err := New(Config{ListenIP: "127.0.0.1", IncludeLoopback: true, MaxSpeakers: 2},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	loud, _ := newTestClient(t, s, "r", "loud", RoleCounty, clientOpts{})
	defer loud.close()
	ear, _ := newTestClient(t, s, "r", "ear", RoleSupervisor, clientOpts{})
	defer ear.close()
	loud.audioLevel.Store(25)
	loud.publish("audio")
	speakers := func(want ...string) func() bool {
		return func() bool {
			ear.mu.Lock()
			defer ear.mu.Unlock()
			return slices.Equal(ear.speakers, want)
		}
	}
	stop := make(chan struct{})
	loud.sendMedia(stop)
	eventually(t, 20*time.Second, "loud is named", speakers(loud.part.info.ID))
	// Muted: its packets still arrive but are dropped before their level
	// is read.
	loud.part.SetModMuted(true)
	eventually(t, 20*time.Second, "the muted speaker is dropped", speakers())
	loud.part.SetModMuted(false)
	eventually(t, 20*time.Second, "named again once unmuted", speakers(loud.part.info.ID))
	// Stops sending, the last packet still loud.
	close(stop)
	eventually(t, 20*time.Second, "a speaker who went quiet on the wire is dropped", speakers())
}
