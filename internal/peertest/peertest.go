// Package peertest holds what several packages' tests need: connecting two
// Pion PeerConnections without a signaling server (the offer/answer
// exchange of the client's, the link shaper's and the load tool's tests),
// and RTP packets with header extensions as they are on the wire.
package peertest

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

// Negotiate makes offerer's offer, has answerer answer it, and waits for
// the ICE candidates to be in the descriptions (no trickle).
func Negotiate(t testing.TB, offerer, answerer *webrtc.PeerConnection) {
	t.Helper()
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		t.Fatal(err)
	}
}
