package redisstore

// keys builds every Redis key from the configured prefix. Keys of one session
// share a {session id} hash tag so they land in one Cluster slot, which the
// Lua scripts need.
type keys struct{ p string }

func (k keys) session(id string) string        { return k.p + "session:{" + id + "}" }
func (k keys) sessionsByStart() string         { return k.p + "sessions:by_start" }
func (k keys) sessionsBySup(sup string) string { return k.p + "sessions:by_supervisor:" + sup }
func (k keys) sessionsByStatus(st string) string {
	return k.p + "sessions:by_status:" + st
}

func (k keys) invitation(id string) string        { return k.p + "invitation:" + id }
func (k keys) invitations(sid string) string      { return k.session(sid) + ":invitations" }
func (k keys) participant(sid, pid string) string { return k.session(sid) + ":participant:" + pid }
func (k keys) participants(sid string) string     { return k.session(sid) + ":participants" }
func (k keys) liveMarkerPrefix(sid string) string { return k.session(sid) + ":alive:" }
func (k keys) liveMarker(sid, pid string) string  { return k.liveMarkerPrefix(sid) + pid }
func (k keys) live(sid string) string             { return k.session(sid) + ":live" }
func (k keys) left(sid string) string             { return k.session(sid) + ":left" }
func (k keys) events(sid string) string           { return k.session(sid) + ":events" }
func (k keys) eventIDs(sid string) string         { return k.session(sid) + ":event_ids" }
func (k keys) eventSeq(sid string) string         { return k.session(sid) + ":event_seq" }

func (k keys) account(username string) string { return k.p + "account:" + username }
func (k keys) accountID(id string) string     { return k.p + "account_id:" + id }
func (k keys) accounts() string               { return k.p + "accounts" }

// epoch holds a random value written once; finding it gone after an outage
// means Redis came back without its data.
func (k keys) epoch() string { return k.p + "epoch" }
