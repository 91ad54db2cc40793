package signaling

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/token"
)

var participantIDRe = regexp.MustCompile(`^P[A-Z2-7]{12}$`)

func TestJoinOK(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.ICEServers = append(c.ICEServers, webrtc.ICEServer{URLs: []string{"turn:127.0.0.1:3478?transport=tcp"}, Username: "u", Credential: "p"})
	})
	other := sfu.ParticipantState{ParticipantInfo: sfu.ParticipantInfo{ID: "Pother", Identity: "sup-1", Name: "督查员", Role: sfu.RoleSupervisor}, AudioMuted: true}
	track := sfu.TrackInfo{ID: "T1", ParticipantID: "Pother", Kind: "video", Source: sfu.SourceCamera, MimeType: "video/VP8"}
	e.conf.result = sfu.JoinResult{Participants: []sfu.ParticipantState{other}, Tracks: []sfu.TrackInfo{track}}

	c := e.dial()
	c.send(TypeJoin, "j1", Join{Version: 1, Room: "room-1", Token: e.token("room-1", "county-3205", sfu.RoleCounty)})
	m, err := c.read()
	if err != nil || m.Type != TypeJoined {
		t.Fatalf("got %+v %v", m, err)
	}
	// The wire names are the contract with the browser.
	for _, field := range []string{`"version":1`, `"room":"room-1"`, `"identity":"county-3205"`, `"role":"county"`,
		`"audioMuted":false`, `"videoMuted":false`, `"participantId":"Pother"`, `"mimeType":"video/VP8"`,
		`"iceServers":[{"urls":["stun:127.0.0.1:3478"]},{"urls":["turn:127.0.0.1:3478?transport=tcp"],"username":"u","credential":"p"}]`} {
		if !strings.Contains(string(m.Data), field) {
			t.Errorf("joined lacks %s: %s", field, m.Data)
		}
	}
	var j Joined
	if err := json.Unmarshal(m.Data, &j); err != nil {
		t.Fatal(err)
	}
	if !participantIDRe.MatchString(j.Self.ID) {
		t.Errorf("participant id %q does not match %v", j.Self.ID, participantIDRe)
	}
	if j.Self.Name != "名字 county-3205" || j.Self.Role != sfu.RoleCounty {
		t.Errorf("self %+v", j.Self)
	}
	if len(j.Participants) != 1 || j.Participants[0] != other || len(j.Tracks) != 1 || j.Tracks[0] != track {
		t.Errorf("participants %+v tracks %+v", j.Participants, j.Tracks)
	}
	s := <-e.conf.joined
	if s.room != "room-1" || s.info != j.Self.ParticipantInfo {
		t.Errorf("conference got room %q info %+v; client told %+v", s.room, s.info, j.Self.ParticipantInfo)
	}
	c.ping("p")
	st := e.h.Stats()
	if st.Joins != 1 || st.ConnectionsOpen != 1 || st.ConnectionsTotal != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestJoinEmptyRoomHasEmptyLists(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ICEServers = nil })
	c := e.dial()
	c.send(TypeJoin, "", Join{Version: 1, Room: "r", Token: e.token("r", "u", sfu.RoleObserver)})
	m, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"participants":[]`, `"tracks":[]`, `"iceServers":[]`, `"role":"observer"`} {
		if !strings.Contains(string(m.Data), field) {
			t.Errorf("joined lacks %s: %s", field, m.Data)
		}
	}
}

func TestParticipantIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id, err := newParticipantID()
		if err != nil {
			t.Fatal(err)
		}
		if !participantIDRe.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

// Events the SFU sends while Join runs must reach the client after
// `joined`, in order.
func TestEventsDuringJoinFollowJoined(t *testing.T) {
	e := newEnv(t, nil)
	e.conf.onJoin = func(info sfu.ParticipantInfo, n sfu.Notifier) {
		n.ParticipantJoined(sfu.ParticipantState{ParticipantInfo: sfu.ParticipantInfo{ID: "Pb"}})
		n.Offer("server-offer")
	}
	c, _, _ := e.joinAs("r", "u", sfu.RoleCounty)
	var pj ParticipantEvent
	c.expect(TypeParticipantJoined, &pj)
	var o SDP
	c.expect(TypeOffer, &o)
	if pj.Participant.ID != "Pb" || o.SDP != "server-offer" {
		t.Fatalf("got %+v %+v", pj, o)
	}
}

func TestNotifierEventsReachClient(t *testing.T) {
	e := newEnv(t, nil)
	c, _, s := e.joinAs("r", "u", sfu.RoleCounty)
	p := sfu.ParticipantState{ParticipantInfo: sfu.ParticipantInfo{ID: "Pb", Identity: "b", Name: "B", Role: sfu.RoleCounty}, VideoMuted: true}
	tr := sfu.TrackInfo{ID: "T9", ParticipantID: "Pb", Kind: "audio", Source: sfu.SourceMicrophone, MimeType: "audio/opus", Muted: true}
	mid, idx := "0", uint16(0)
	s.n.Offer("o-sdp")
	s.n.Answer("a-sdp")
	s.n.Candidate(webrtc.ICECandidateInit{Candidate: "candidate:x", SDPMid: &mid, SDPMLineIndex: &idx})
	s.n.ParticipantJoined(p)
	s.n.ParticipantUpdated(p)
	s.n.TrackPublished(tr)
	s.n.TrackRemoved(tr)
	s.n.ParticipantLeft("Pb", ReasonReplaced)

	want := []struct{ typ, data string }{
		{TypeOffer, `{"sdp":"o-sdp"}`},
		{TypeAnswer, `{"sdp":"a-sdp"}`},
		{TypeCandidate, `{"candidate":"candidate:x","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}`},
		{TypeParticipantJoined, `{"participant":{"id":"Pb","identity":"b","name":"B","role":"county","audioMuted":false,"videoMuted":true,"modMuted":false}}`},
		{TypeParticipantUpdated, `{"participant":{"id":"Pb","identity":"b","name":"B","role":"county","audioMuted":false,"videoMuted":true,"modMuted":false}}`},
		{TypeTrackPublished, `{"track":{"id":"T9","participantId":"Pb","kind":"audio","source":"microphone","mimeType":"audio/opus","muted":true}}`},
		{TypeTrackRemoved, `{"track":{"id":"T9","participantId":"Pb","kind":"audio","source":"microphone","mimeType":"audio/opus","muted":true}}`},
		{TypeParticipantLeft, `{"id":"Pb","reason":"replaced"}`},
	}
	for _, w := range want {
		m, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		if m.Type != w.typ || string(m.Data) != w.data {
			t.Fatalf("got %s %s\nwant %s %s", m.Type, m.Data, w.typ, w.data)
		}
	}
}

func TestSessionCallsPassThrough(t *testing.T) {
	e := newEnv(t, nil)
	c, _, s := e.joinAs("r", "u", sfu.RoleCounty)
	c.send(TypeOffer, "1", map[string]any{"sdp": "v=0 offer", "sources": map[string]string{"tr1": "screen"}})
	c.send(TypeAnswer, "2", map[string]any{"sdp": "v=0 answer"})
	c.send(TypeCandidate, "3", map[string]any{"candidate": "candidate:1", "sdpMid": "0", "sdpMLineIndex": 0})
	c.send(TypeCandidate, "4", map[string]any{"candidate": ""})
	c.send(TypeMute, "5", map[string]any{"kind": "video", "muted": true})
	c.send(TypeVideoSize, "6", map[string]any{"track": "T1", "width": 320, "height": 180})
	c.ping("7") // the reader handles messages in order: all calls are done
	want := []string{"offer v=0 offer map[tr1:screen]", "answer v=0 answer", "candidate candidate:1", "candidate ",
		"mute video true", "video-size T1 320x180"}
	if got := s.Calls(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
}

func TestJoinTokenErrors(t *testing.T) {
	e := newEnv(t, nil)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := token.NewIssuer(otherKey, nil).Issue(token.Claims{Room: "r", Identity: "u", Role: sfu.RoleSupervisor, ExpiresAt: time.Now().Add(time.Hour)})
	past := time.Now().Add(-3 * time.Hour)
	expired, _ := token.NewIssuer(e.key, func() time.Time { return past }).Issue(token.Claims{Room: "r", Identity: "u", Role: sfu.RoleCounty, ExpiresAt: past.Add(time.Hour)})
	future := time.Now().Add(time.Hour)
	notYet, _ := e.iss.Issue(token.Claims{Room: "r", Identity: "u", Role: sfu.RoleCounty, NotBefore: future, ExpiresAt: future.Add(time.Hour)})

	tests := []struct {
		name, tok, code string
	}{
		{"forged", forged, CodeInvalidToken},
		{"expired", expired, CodeTokenExpired},
		{"not yet valid", notYet, CodeTokenExpired},
		{"wrong room", e.token("other-room", "u", sfu.RoleCounty), CodeWrongRoom},
		{"garbage", "abc.def.ghi", CodeInvalidToken},
		{"missing", "", CodeInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial()
			c.send(TypeJoin, "j-"+tc.name, Join{Version: 1, Room: "r", Token: tc.tok})
			c.expectError(tc.code, "j-"+tc.name)
			c.expectClose(CloseBadToken)
		})
	}
	if n := e.conf.joinCount(); n != 0 {
		t.Fatalf("conference saw %d joins with bad tokens", n)
	}
}

func TestUnsupportedVersion(t *testing.T) {
	e := newEnv(t, nil)
	for _, data := range []string{`{"version":2,"room":"r","token":"x"}`, `{"room":"r","token":"x"}`} {
		c := e.dial()
		c.sendRaw(`{"type":"join","id":"v","data":` + data + `}`)
		c.expectError(CodeUnsupportedVersion, "v")
		c.expectClose(CloseProtocol)
	}
}

func TestNotJoinedThenJoin(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	for _, typ := range []string{TypeOffer, TypeAnswer, TypeCandidate, TypeMute, TypeLeave} {
		c.send(typ, "x-"+typ, map[string]any{})
		c.expectError(CodeNotJoined, "x-"+typ)
	}
	c.ping("p") // allowed before join
	c.send(TypeJoin, "j", Join{Version: 1, Room: "r", Token: e.token("r", "u", sfu.RoleCounty)})
	c.expect(TypeJoined, nil)
}

func TestSecondJoin(t *testing.T) {
	e := newEnv(t, nil)
	c, _, _ := e.joinAs("r", "u", sfu.RoleCounty)
	c.send(TypeJoin, "again", Join{Version: 1, Room: "r", Token: e.token("r", "u", sfu.RoleCounty)})
	c.expectError(CodeAlreadyJoined, "again")
	c.ping("still-alive")
	if n := e.conf.joinCount(); n != 1 {
		t.Fatalf("conference saw %d joins", n)
	}
}

func TestMalformedMessagesKeepConnection(t *testing.T) {
	e := newEnv(t, nil)
	c, _, _ := e.joinAs("r", "u", sfu.RoleCounty)
	cases := []struct{ raw, ref string }{
		{`hello`, ""},
		{`{"type":"ping"`, ""},
		{`[1,2]`, ""},
		{`{"type":7,"id":"a"}`, ""},
		{`{"type":"offer","id":"b","data":{"sdp":5}}`, "b"},
		{`{"type":"mute","id":"c","data":{"kind":"smell","muted":true}}`, "c"},
		{`{"type":"offer","id":"d","data":"sdp"}`, "d"},
		{`{"type":"video-size","id":"e","data":{"track":"T1","width":-1,"height":10}}`, "e"},
		{`{"type":"video-size","id":"f","data":{"track":"T1","width":99999,"height":10}}`, "f"},
		{`{"type":"video-size","id":"g","data":{"width":10,"height":10}}`, "g"},
		{`{"type":"ping","id":"` + strings.Repeat("x", 65) + `"}`, ""},
	}
	for _, tc := range cases {
		c.sendRaw(tc.raw)
		c.expectError(CodeBadMessage, tc.ref)
	}
	if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	c.expectError(CodeBadMessage, "")
	c.ping("alive")
}

func TestUnknownType(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	c.send("subscribe", "u1", map[string]any{})
	c.expectError(CodeUnknownType, "u1")
	c.send(TypeJoined, "u2", map[string]any{}) // server-to-client only
	c.expectError(CodeUnknownType, "u2")
	c.ping("alive")
}

// bad_message closes only after MaxBadMessages in a row.
func TestTooManyBadMessagesInARow(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	for i := 0; i < 19; i++ {
		c.sendRaw("nope")
		c.expectError(CodeBadMessage, "")
	}
	c.ping("reset")
	for i := 0; i < 19; i++ {
		c.sendRaw("nope")
		c.expectError(CodeBadMessage, "")
	}
	c.sendRaw("nope")
	c.expectError(CodeBadMessage, "")
	c.expectClose(CloseProtocol)
}

func TestSessionErrorMapping(t *testing.T) {
	tests := []struct {
		method string
		err    error
		code   string
		close  int
	}{
		{"offer", fmt.Errorf("observer offer: %w", sfu.ErrForbidden), CodeForbidden, 0},
		{"offer", fmt.Errorf("parse: %w", sfu.ErrBadSDP), CodeBadSDP, 0},
		{"answer", sfu.ErrBadSDP, CodeBadSDP, 0},
		{"candidate", fmt.Errorf("x: %w", sfu.ErrBadCandidate), CodeBadCandidate, 0},
		{"mute", errors.New("db password hunter2 rejected"), CodeInternal, websocket.CloseInternalServerErr},
		{"offer", sfu.ErrClosed, CodeInternal, websocket.CloseInternalServerErr},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.code, func(t *testing.T) {
			e := newEnv(t, nil)
			e.conf.errFor = func(m string) error {
				if m == tc.method {
					return tc.err
				}
				return nil
			}
			c, _, s := e.joinAs("r", "u", sfu.RoleObserver)
			data := map[string]any{"sdp": "v=0", "candidate": "c", "kind": "audio", "muted": true}
			c.send(tc.method, "m1", data)
			em := c.expectError(tc.code, "m1")
			if strings.Contains(em.Message, "hunter2") || strings.Contains(em.Message, "sfu:") {
				t.Fatalf("error message leaks server detail: %q", em.Message)
			}
			if tc.close == 0 {
				c.ping("alive")
				return
			}
			c.expectClose(tc.close)
			if r := s.waitLeave(t); r != ReasonDisconnected {
				t.Fatalf("Leave(%q)", r)
			}
		})
	}
}

func TestConferenceRefusesJoin(t *testing.T) {
	e := newEnv(t, nil)
	e.conf.joinErr = fmt.Errorf("room locked: %w", sfu.ErrForbidden)
	c := e.dial()
	c.send(TypeJoin, "j", Join{Version: 1, Room: "r", Token: e.token("r", "u", sfu.RoleCounty)})
	c.expectError(CodeForbidden, "j")
	c.send(TypeOffer, "o", map[string]any{"sdp": "v=0"})
	c.expectError(CodeNotJoined, "o")
	// The client may try again once the conference lets it in.
	e.conf.mu.Lock()
	e.conf.joinErr = nil
	e.conf.mu.Unlock()
	c.send(TypeJoin, "j2", Join{Version: 1, Room: "r", Token: e.token("r", "u", sfu.RoleCounty)})
	c.expect(TypeJoined, nil)
}

func TestLeaveCallsSessionLeave(t *testing.T) {
	e := newEnv(t, nil)
	c, _, s := e.joinAs("r", "u", sfu.RoleCounty)
	c.send(TypeLeave, "bye", map[string]any{})
	c.expectClose(websocket.CloseNormalClosure)
	if r := s.waitLeave(t); r != ReasonLeft {
		t.Fatalf("Leave(%q), want %q", r, ReasonLeft)
	}
	s.noMoreLeaves(t)
}

func TestDisconnectCallsSessionLeave(t *testing.T) {
	e := newEnv(t, nil)
	t.Run("abrupt", func(t *testing.T) {
		c, _, s := e.joinAs("r", "a", sfu.RoleCounty)
		c.ws.NetConn().Close()
		if r := s.waitLeave(t); r != ReasonDisconnected {
			t.Fatalf("Leave(%q)", r)
		}
		s.noMoreLeaves(t)
	})
	t.Run("close frame", func(t *testing.T) {
		c, _, s := e.joinAs("r", "b", sfu.RoleCounty)
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.expectClose(websocket.CloseNormalClosure) // the server echoes the close
		if r := s.waitLeave(t); r != ReasonDisconnected {
			t.Fatalf("Leave(%q)", r)
		}
	})
	waitFor(t, "connections to close", func() bool { return e.h.Stats().ConnectionsOpen == 0 })
}

func TestClosedByConference(t *testing.T) {
	e := newEnv(t, nil)
	c, _, s := e.joinAs("r", "u", sfu.RoleCounty)
	s.n.TrackPublished(sfu.TrackInfo{ID: "T1"})
	s.n.Closed(ReasonReplaced)
	s.n.Offer("after close") // must not reach the client
	c.expect(TypeTrackPublished, nil)
	var cl Closed
	c.expect(TypeClosed, &cl)
	if cl.Reason != ReasonReplaced {
		t.Fatalf("closed %+v", cl)
	}
	c.expectClose(websocket.CloseNormalClosure)
	s.waitLeave(t) // idempotent on the SFU side
}

func TestConferenceJoinFailureIsInternal(t *testing.T) {
	e := newEnv(t, nil)
	e.conf.joinErr = errors.New("pion: ice agent exploded at 10.0.0.7")
	c := e.dial()
	c.send(TypeJoin, "j", Join{Version: 1, Room: "r", Token: e.token("r", "u", sfu.RoleCounty)})
	em := c.expectError(CodeInternal, "j")
	if strings.Contains(em.Message, "10.0.0.7") {
		t.Fatalf("message leaks detail: %q", em.Message)
	}
	c.expectClose(websocket.CloseInternalServerErr)
}

// Chat and moderation reach the session; a conference's refusals carry
// their codes.
func TestChatAndModerate(t *testing.T) {
	e := newEnv(t, nil)
	c, _, sess := e.joinAs("r", "u", "supervisor")
	c.send(TypeChat, "1", map[string]any{"text": "请汇报进展"})
	c.send(TypeModerate, "2", map[string]any{"action": "mute", "target": "P1"})
	c.ping("p")
	if got, want := sess.Calls(), []string{"chat 请汇报进展", "moderate mute P1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("calls %q, want %q", got, want)
	}

	c.send(TypeChat, "3", map[string]any{"text": ""})
	c.expectError(CodeBadMessage, "3")
	c.send(TypeChat, "4", map[string]any{"text": strings.Repeat("长", 1001)})
	c.expectError(CodeBadMessage, "4")
	c.send(TypeModerate, "5", map[string]any{"target": "P1"})
	c.expectError(CodeBadMessage, "5")

	e.conf.mu.Lock()
	e.conf.errFor = func(m string) error {
		switch m {
		case "chat":
			return fmt.Errorf("in lobby: %w", ErrNotAdmitted)
		case "moderate":
			return fmt.Errorf("nope: %w", ErrBadAction)
		}
		return nil
	}
	e.conf.mu.Unlock()
	c.send(TypeChat, "6", map[string]any{"text": "hi"})
	c.expectError(CodeNotAdmitted, "6")
	c.send(TypeModerate, "7", map[string]any{"action": "fly"})
	c.expectError(CodeBadAction, "7")
}

// A conference that refuses the session closes the connection with 4003.
func TestJoinRefusedBySession(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{ErrSessionEnded, CodeSessionEnded},
		{ErrInvitationRevoked, CodeInvitationRevoked},
		{ErrInvitationNotYetValid, CodeInvitationNotYetValid},
	} {
		t.Run(tc.code, func(t *testing.T) {
			e := newEnv(t, nil)
			e.conf.mu.Lock()
			e.conf.joinErr = fmt.Errorf("refused: %w", tc.err)
			e.conf.mu.Unlock()
			c := e.dial()
			c.send(TypeJoin, "j", map[string]any{"version": 1, "room": "r", "token": e.token("r", "u", "county")})
			c.expectError(tc.code, "j")
			c.expectClose(closeSessionRefused)
		})
	}
}

// A participant in the lobby hears nothing of the call until `admitted`,
// then gets the held events after it; session events pass meanwhile.
func TestLobbyHoldsCallEventsUntilAdmitted(t *testing.T) {
	e := newEnv(t, nil)
	e.conf.mu.Lock()
	e.conf.result = sfu.JoinResult{}
	e.conf.lobby = true
	e.conf.mu.Unlock()
	c, j, sess := e.joinAs("r", "u", sfu.RoleCounty)
	if !j.Lobby {
		t.Fatal("joined without lobby")
	}
	n := sess.n
	n.Offer("v=0 early")
	n.Candidate(webrtc.ICECandidateInit{Candidate: "candidate:early"})
	n.SessionUpdated(SessionState{ID: "r", Status: "lobby"})
	var su SessionUpdated
	c.expect(TypeSessionUpdated, &su) // session events are not held
	n.Admitted(JoinResult{})
	var adm Joined
	c.expect(TypeAdmitted, &adm)
	var off SDP
	c.expect(TypeOffer, &off)
	if off.SDP != "v=0 early" {
		t.Fatalf("held offer %q", off.SDP)
	}
	var cand webrtc.ICECandidateInit
	c.expect(TypeCandidate, &cand)
}
