package sfu

import (
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"github.com/ducha-dev/ducha/internal/arrival"
)

// rtcpSink is an interceptor.RTCPWriter that hands on what is written.
type rtcpSink chan []rtcp.Packet

func (s rtcpSink) Write(p []rtcp.Packet, _ interceptor.Attributes) (int, error) {
	s <- p
	return len(p), nil
}

// packetReader is an interceptor.RTPReader that returns the given raw
// packets one by one.
type packetReader [][]byte

func (r *packetReader) Read(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	n := copy(b, (*r)[0])
	*r = (*r)[1:]
	return n, a, nil
}

func twccPacket(t *testing.T, ssrc uint32, seq, tseq uint16) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, SSRC: ssrc}, Payload: []byte{1}}
	if err := p.SetExtension(4, []byte{byte(tseq >> 8), byte(tseq)}); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The feedback reports a packet at the time the socket took, not at the
// read; a packet the socket did not time is reported at the read.
func TestFeedbackTakesSocketTimes(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	now := t0 // the connection starts at t0; its packets are read at t0+40ms
	sock := newSocketTimes()
	var ring arrival.Ring
	sock.register(0xa1, &ring)
	sock.observe(twccPacket(t, 0xa1, 500, 10), t0)
	sock.observe(twccPacket(t, 0xa1, 501, 11), t0.Add(5*time.Millisecond))
	f := feedbackFactory{now: func() time.Time { return now }, socket: sock, interval: time.Millisecond}
	ic, err := f.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	now = t0.Add(40 * time.Millisecond)
	pkts := packetReader{twccPacket(t, 0xa1, 500, 10), twccPacket(t, 0xa1, 501, 11), twccPacket(t, 0xb2, 7, 12)}
	rd := ic.BindRemoteStream(&interceptor.StreamInfo{SSRC: 0xa1,
		RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: 4}}}, &pkts)
	buf := make([]byte, 1500)
	for range 3 {
		if _, _, err := rd.Read(buf, nil); err != nil {
			t.Fatal(err)
		}
	}
	sink := make(rtcpSink, 8)
	ic.BindRTCPWriter(sink)
	var fb []rtcp.Packet
	select {
	case fb = <-sink:
	case <-time.After(10 * time.Second):
		t.Fatal("no feedback sent")
	}
	cc, ok := fb[0].(*rtcp.TransportLayerCC)
	if !ok || cc.BaseSequenceNumber != 10 || len(cc.RecvDeltas) != 3 {
		t.Fatalf("feedback %+v, want packets 10-12 received", fb[0])
	}
	at := time.Duration(cc.ReferenceTime)*64*time.Millisecond + time.Duration(cc.RecvDeltas[0].Delta)*time.Microsecond
	if at != 0 {
		t.Errorf("packet 10 reported %v after the start, want 0 (the socket's time)", at)
	}
	for i, want := range []time.Duration{5 * time.Millisecond, 35 * time.Millisecond} {
		if got := time.Duration(cc.RecvDeltas[i+1].Delta) * time.Microsecond; got != want {
			t.Errorf("packet %d: %v after the one before, want %v", 11+i, got, want)
		}
	}
}

// Close stops the feedback loop (it waits for it, so a loop that did not
// stop would hang the test), and a connection bound after Close starts
// none.
func TestFeedbackCloses(t *testing.T) {
	f := feedbackFactory{now: time.Now, interval: time.Millisecond}
	ic, _ := f.NewInterceptor("")
	sink := make(rtcpSink, 1)
	ic.BindRTCPWriter(sink)
	ic.(*feedbackInterceptor).fb.Record(1, 1, time.Now())
	select {
	case <-sink:
	case <-time.After(10 * time.Second):
		t.Fatal("no feedback sent")
	}
	closed := make(chan struct{})
	go func() {
		_ = ic.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: the feedback loop did not stop")
	}
	ic2, _ := f.NewInterceptor("")
	_ = ic2.Close()
	ic2.BindRTCPWriter(make(rtcpSink))
	if ic2.(*feedbackInterceptor).running {
		t.Error("a connection bound after Close started a feedback loop")
	}
}

// A publisher that numbers its packets (as browsers do) gets the server's
// transport-wide feedback for them, over a real connection.
func TestPublisherGetsTransportFeedback(t *testing.T) {
	s := newTestSFU(t)
	defer s.Close()
	pub, _ := newTestClient(t, s, "r", "pub", RoleSupervisor, clientOpts{stampTWCC: true})
	defer pub.close()
	pub.publish("video")
	pub.publish("audio")
	stop := make(chan struct{})
	defer close(stop)
	pub.sendMedia(stop)
	eventually(t, 30*time.Second, "feedback on 300 of the publisher's packets", func() bool {
		return pub.twccAcked.Load() >= 300
	})
}
