package client

import "testing"

// A client that hides its candidates (as behind NAT) sends descriptions
// without them, whatever Pion put in; everything else stays, in order.
func TestWithoutCandidates(t *testing.T) {
	in := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=mid:0\r\na=candidate:1 1 udp 2130706431 192.168.1.20 50000 typ host\r\n" +
		"a=candidate:2 1 udp 1694498815 203.0.113.7 50000 typ srflx raddr 192.168.1.20 rport 50000\r\n" +
		"a=end-of-candidates\r\na=rtpmap:96 VP8/90000\r\n"
	want := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=mid:0\r\na=rtpmap:96 VP8/90000\r\n"
	if got := withoutCandidates(in); got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}
