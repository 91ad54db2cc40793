package sfu

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// pionPrflxWait is pion/ice's default wait before a controlling agent
// nominates a pair with a peer-reflexive candidate.
const pionPrflxWait = time.Second

// A county office behind NAT: its own candidates are private addresses of
// no use to the server, which learns the county's address from the
// county's connectivity checks (a peer-reflexive candidate). The server
// offers to a county that only receives, so its ICE agent is the
// controlling one, and Pion's waits 1 s by default before nominating such
// a pair (500 ms for a server-reflexive one) in case a better pair turns
// up. Every pair ends at the server's one address, so the wait only
// delayed the county's first frame. The county's ICE agent reports
// "connected" when the server nominates; with the default wait that can
// never come sooner than 1 s after its checks began. One fast join of
// three is asked for, so that a slow test machine cannot make it fail.
func TestNATedCountyNominatedWithoutWait(t *testing.T) {
	s := newTestSFU(t)
	t.Cleanup(func() { s.Close() })
	pub := sendingSupervisor(t, s, "r")
	var took []time.Duration
	for attempt := range 3 {
		d := natedJoin(t, s, pub, attempt)
		if d < pionPrflxWait {
			t.Logf("checking to connected: %v", d)
			return
		}
		took = append(took, d)
	}
	t.Fatalf("checking to connected took %v: the server waited before nominating", took)
}

// natedJoin joins a county that hides its candidates and returns how long
// its ICE agent took from checking to connected.
func natedJoin(t *testing.T, s *SFU, pub *testClient, attempt int) time.Duration {
	t.Helper()
	var mu sync.Mutex
	var checking, connected time.Time
	up := make(chan struct{})
	onState := func(st webrtc.ICEConnectionState) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case st == webrtc.ICEConnectionStateChecking && checking.IsZero():
			checking = time.Now()
		case st == webrtc.ICEConnectionStateConnected && connected.IsZero():
			connected = time.Now()
			close(up)
		}
	}
	name := "nat" + string(rune('a'+attempt))
	c, _ := newTestClient(t, s, "r", name, RoleCounty, clientOpts{hideCandidates: true, onICEState: onState})
	defer c.close()
	select {
	case <-up:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not connected", name)
	}
	eventually(t, 30*time.Second, name+" receives the supervisor's video", func() bool {
		r := c.track(publishedBy(s, "r", pub.part.info.ID, "video"))
		return r != nil && r.packets.Load() > 10
	})
	pair, err := c.part.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("%s: no selected pair on the server: %v", name, err)
	}
	if pair.Remote.Typ != webrtc.ICECandidateTypePrflx {
		t.Fatalf("%s: the server's remote candidate is %s, want prflx (the test must look like NAT)", name, pair.Remote.Typ)
	}
	mu.Lock()
	defer mu.Unlock()
	return connected.Sub(checking)
}

// The server answers a browser's DTLS ClientHello with its ServerHello at
// once, not with a HelloVerifyRequest that costs a round trip: ICE has
// proved the client's address already.
func TestDTLSWithoutHelloVerify(t *testing.T) {
	s := newTestSFU(t)
	t.Cleanup(func() { s.Close() })
	pub := sendingSupervisor(t, s, "r")
	// The county only receives: the server offers and is the DTLS server.
	c, conn := newTestClient(t, s, "r", "county", RoleCounty, clientOpts{})
	defer c.close()
	eventually(t, 30*time.Second, "the county receives the supervisor's video", func() bool {
		r := c.track(publishedBy(s, "r", pub.part.info.ID, "video"))
		return r != nil && r.packets.Load() > 10
	})
	const helloVerifyRequest, serverHello = 3, 2
	if got := conn.firstHandshake.Load(); got != serverHello {
		t.Fatalf("first DTLS handshake message from the server: type %d, want %d (ServerHello; %d is HelloVerifyRequest)",
			got, serverHello, helloVerifyRequest)
	}
}
