package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
)

func testInvitations(t *testing.T, st rooms.Store) {
	c := ctx(t)
	s := mustCreate(t, st, newSession("sup-1", base))
	other := mustCreate(t, st, newSession("sup-1", base))
	var made []rooms.Invitation
	for i, code := range []string{"370102", "370103", "370102"} {
		inv, err := rooms.NewInvitation(s, code, rooms.DefaultEarlyWindow, base.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.CreateInvitation(c, inv)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, got)
	}
	if _, err := st.CreateInvitation(c, made[0]); !errors.Is(err, rooms.ErrExists) {
		t.Fatalf("duplicate invitation: %v", err)
	}
	orphan := made[0]
	orphan.ID, orphan.SessionID = rooms.NewID(), "no-such"
	if _, err := st.CreateInvitation(c, orphan); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("invitation for unknown session: %v", err)
	}
	invOther, _ := rooms.NewInvitation(other, "370102", 0, base)
	if _, err := st.CreateInvitation(c, invOther); err != nil {
		t.Fatal(err)
	}

	got, err := st.GetInvitation(c, made[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UnitCode != "370103" || !sameTime(got.ValidFrom, base.Add(-30*time.Minute)) || !sameTime(got.ValidUntil, base.Add(time.Hour)) {
		t.Fatalf("read back %+v", got)
	}
	if _, err := st.GetInvitation(c, "no-such"); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("unknown invitation: %v", err)
	}
	list, err := st.ListInvitations(c, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].ID != made[0].ID || list[2].ID != made[2].ID {
		t.Fatalf("list %+v", list)
	}

	revokedAt := base.Add(10 * time.Minute)
	r, err := st.RevokeInvitation(c, made[1].ID, revokedAt)
	if err != nil || !sameTime(r.RevokedAt, revokedAt) {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	r, err = st.RevokeInvitation(c, made[1].ID, revokedAt.Add(time.Hour))
	if err != nil || !sameTime(r.RevokedAt, revokedAt) {
		t.Fatalf("second revoke changed the time: %+v, %v", r, err)
	}
	if _, err := st.RevokeInvitation(c, "no-such", revokedAt); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}

	// Removing unit 370102 revokes both its invitations in this session only.
	n, err := st.RevokeUnitInvitations(c, s.ID, "370102", revokedAt)
	if err != nil || n != 2 {
		t.Fatalf("revoke unit: %d, %v", n, err)
	}
	if n, err := st.RevokeUnitInvitations(c, s.ID, "370102", revokedAt); err != nil || n != 0 {
		t.Fatalf("revoke unit again: %d, %v", n, err)
	}
	for _, inv := range made {
		got, err := st.GetInvitation(c, inv.ID)
		if err != nil || !got.Revoked() {
			t.Fatalf("%s not revoked: %+v, %v", inv.UnitCode, got, err)
		}
		cur, _ := st.GetSession(c, s.ID)
		if err := rooms.CheckInvitation(got, cur, base); !errors.Is(err, rooms.ErrRevoked) {
			t.Fatalf("check revoked: %v", err)
		}
	}
	if got, _ := st.GetInvitation(c, invOther.ID); got.Revoked() {
		t.Fatal("revoking a unit in one session revoked it in another")
	}
}

func participant(sessionID, id, unit string) rooms.Participant {
	p := rooms.Participant{ID: id, SessionID: sessionID, Identity: "inv-" + id, Name: "参会人 " + id, Role: rooms.RoleCounty, UnitCode: unit, Node: "node-1"}
	if unit == "" {
		p.Role = rooms.RoleSupervisor
	}
	return p
}

func testParticipants(t *testing.T, st rooms.Store) {
	c := ctx(t)
	s := mustCreate(t, st, newSession("sup-1", base))
	const ttl = time.Minute
	joined := base.Add(time.Minute)
	p := participant(s.ID, "p1", "370102")
	p.JoinedAt = joined
	p.InLobby = true
	got, err := st.UpsertParticipant(c, p, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.LastSeen.IsZero() || !sameTime(got.JoinedAt, joined) || !got.InLobby {
		t.Fatalf("upserted %+v", got)
	}
	if _, err := st.UpsertParticipant(c, participant("no-such", "p1", "370102"), ttl); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("participant of unknown session: %v", err)
	}
	bad := participant(s.ID, "p9", "")
	bad.Role = rooms.RoleAuditor
	if _, err := st.UpsertParticipant(c, bad, ttl); !errors.Is(err, rooms.ErrInvalid) {
		t.Fatalf("auditor as participant: %v", err)
	}
	sup := participant(s.ID, "p0", "")
	sup.JoinedAt = base
	if _, err := st.UpsertParticipant(c, sup, ttl); err != nil {
		t.Fatal(err)
	}

	// Admitted by the supervisor, muted by the supervisor: fn updates.
	up, err := st.UpdateParticipant(c, s.ID, "p1", func(p *rooms.Participant) error {
		p.InLobby, p.ModMuted, p.AudioMuted = false, true, true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != 2 || up.InLobby || !up.ModMuted {
		t.Fatalf("updated %+v", up)
	}
	if _, err := st.UpdateParticipant(c, s.ID, "nobody", func(*rooms.Participant) error { return nil }); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("update unknown participant: %v", err)
	}
	read, err := st.GetParticipant(c, s.ID, "p1")
	if err != nil || !read.ModMuted || read.Version != 2 {
		t.Fatalf("get: %+v, %v", read, err)
	}

	live, err := st.ListLive(c, s.ID)
	if err != nil || describe(live) != "[p0 p1]" {
		t.Fatalf("live %s, %v", describe(live), err)
	}

	left := base.Add(20 * time.Minute)
	lp, err := st.LeaveParticipant(c, s.ID, "p1", left)
	if err != nil || !sameTime(lp.LeftAt, left) {
		t.Fatalf("leave: %+v, %v", lp, err)
	}
	if err := st.Heartbeat(c, s.ID, "p1", ttl); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("heartbeat after leave: %v", err)
	}
	live, _ = st.ListLive(c, s.ID)
	if describe(live) != "[p0]" {
		t.Fatalf("live after leave %s", describe(live))
	}
	all, err := st.ListParticipants(c, s.ID)
	if err != nil || describe(all) != "[p0 p1]" || all[1].LeftAt.IsZero() {
		t.Fatalf("all participants %+v, %v", all, err)
	}

	// Rejoining with the same participant ID keeps JoinedAt and clears
	// LeftAt.
	re := participant(s.ID, "p1", "370102")
	back, err := st.UpsertParticipant(c, re, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if !back.LeftAt.IsZero() || !sameTime(back.JoinedAt, joined) || back.Version <= lp.Version {
		t.Fatalf("rejoined %+v", back)
	}
	live, _ = st.ListLive(c, s.ID)
	if describe(live) != "[p0 p1]" {
		t.Fatalf("live after rejoin %s", describe(live))
	}
	if err := st.Heartbeat(c, s.ID, "ghost", ttl); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("heartbeat of unknown: %v", err)
	}
	if _, err := st.LeaveParticipant(c, s.ID, "ghost", left); !errors.Is(err, rooms.ErrNotFound) {
		t.Fatalf("leave unknown: %v", err)
	}
}

// testHeartbeatExpiry is what a crashed node looks like: its participants
// stop heartbeating and must drop out of ListLive on their own.
func testHeartbeatExpiry(t *testing.T, st rooms.Store) {
	c := ctx(t)
	s := mustCreate(t, st, newSession("sup-1", base))
	const ttl = time.Second
	before := time.Now()
	for _, id := range []string{"alive", "crashed"} {
		if _, err := st.UpsertParticipant(c, participant(s.ID, id, "370102"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	first, err := st.GetParticipant(c, s.ID, "alive")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() string {
		if err := st.Heartbeat(c, s.ID, "alive", ttl); err != nil {
			return "heartbeat: " + err.Error()
		}
		live, err := st.ListLive(c, s.ID)
		if err != nil {
			return err.Error()
		}
		if describe(live) != "[alive]" {
			return "live participants " + describe(live) + ", want [alive]"
		}
		return ""
	})
	// Expiry cannot come before the TTL; a slow machine only makes it later.
	if waited := time.Since(before); waited < ttl*9/10 {
		t.Fatalf("crashed participant expired after %v, TTL is %v", waited, ttl)
	}
	got, err := st.GetParticipant(c, s.ID, "alive")
	if err != nil || !got.LastSeen.After(first.LastSeen) {
		t.Fatalf("heartbeat did not move LastSeen: %v -> %+v, %v", first.LastSeen, got, err)
	}
	// The expired participant is still on record, it is just not live.
	all, err := st.ListParticipants(c, s.ID)
	if err != nil || len(all) != 2 {
		t.Fatalf("all participants %+v, %v", all, err)
	}
	// A heartbeat revives an expired participant that has not left: its
	// connection may have outlived a slow node.
	if err := st.Heartbeat(c, s.ID, "crashed", ttl); err != nil {
		t.Fatal(err)
	}
	live, _ := st.ListLive(c, s.ID)
	if describe(live) != "[alive crashed]" {
		t.Fatalf("after revival %s", describe(live))
	}
}
