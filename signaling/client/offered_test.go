package client

import (
	"reflect"
	"testing"
)

// What the server sends is what its description sends: sendonly and
// sendrecv sections with an msid; not what it receives, not inactive or
// rejected sections, not sections without a stream.
func TestOfferedStreams(t *testing.T) {
	const raw = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		// The server receives our camera here: not offered to us.
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:c0\r\na=recvonly\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=msid:Tvideo1 Tvideo1\r\na=sendonly\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=msid:speaker-0 speaker-0\r\na=sendonly\r\n" +
		// Unsubscribed: Pion leaves the section, without a sender.
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:3\r\na=msid:Tgone Tgone\r\na=inactive\r\n" +
		// Rejected.
		"m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:4\r\na=msid:Trejected Trejected\r\na=sendonly\r\n" +
		// No direction: sendrecv. The msid only on the ssrc line.
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:5\r\na=ssrc:1234 msid:Taudio5 Taudio5\r\n" +
		// Sending without a stream: nothing a receiver can name.
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:6\r\na=sendonly\r\n" +
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:7\r\n"
	got, err := offeredStreams(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []OfferedStream{
		{StreamID: "Tvideo1", TrackID: "Tvideo1", Kind: "video", Mid: "1"},
		{StreamID: "speaker-0", TrackID: "speaker-0", Kind: "audio", Mid: "2"},
		{StreamID: "Taudio5", TrackID: "Taudio5", Kind: "audio", Mid: "5"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("offered\n got %+v\nwant %+v", got, want)
	}
	if _, err := offeredStreams("not sdp"); err == nil {
		t.Error("garbage parsed")
	}
}
