package sfu

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Room is one conference on this node: its participants and published
// tracks. The mutex guards only the maps; notifications and negotiation
// happen after it is released, so a slow participant never holds the room.
type Room struct {
	id  string
	sfu *SFU
	log *slog.Logger

	mu          sync.Mutex
	parts       map[string]*Participant // by participant id
	byIdentity  map[string]*Participant
	tracks      map[string]*UpTrack // by track id
	order       uint64
	dead        bool // dropped from the SFU; a join must go to a new room
	spkTimer    Timer
	allocTimer  Timer
	reportTimer Timer
	spk         *speakerSelector // used by the speaker tick only
}

// errRoomGone: the room was dropped between lookup and join.
var errRoomGone = errors.New("sfu: room gone")

func newRoom(s *SFU, id string) *Room {
	r := &Room{
		id: id, sfu: s, log: s.log.With("room", id),
		parts: map[string]*Participant{}, byIdentity: map[string]*Participant{}, tracks: map[string]*UpTrack{},
		spk: newSpeakerSelector(s.cfg.MaxSpeakers, speakingLoudness, 2*time.Second),
	}
	r.spkTimer = s.cfg.Clock.AfterFunc(s.cfg.SpeakerInterval, r.tickSpeakers)
	r.allocTimer = s.cfg.Clock.AfterFunc(s.cfg.AllocInterval, r.tickLayers)
	r.reportTimer = s.cfg.Clock.AfterFunc(senderReportInterval, r.tickReports)
	return r
}

// speakingLoudness: louder than -50 dBov counts as speaking (speech is
// typically -20 to -40; a quiet office's noise floor -60 or below).
const speakingLoudness = 127 - 50

// levelStale: a track whose packets carried no audio level for this long is
// silent, whatever its last level said. Its publisher stopped sending (Opus
// DTX sends a packet every 400 ms of silence), or a moderator muted it and
// its packets are dropped before their level is read.
const levelStale = time.Second

// loudnessAt is the track's smoothed loudness, or 0 once it is stale.
func (u *UpTrack) loudnessAt(now time.Time) int32 {
	if now.UnixNano()-u.levelAt.Load() > int64(levelStale) {
		return 0
	}
	return u.loudness.Load()
}

// tickSpeakers chooses the loudest speakers, tells everyone when they
// change, and in large rooms holds back the others' audio from browsers.
func (r *Room) tickSpeakers() {
	r.mu.Lock()
	if r.dead {
		r.mu.Unlock()
		return
	}
	now := r.sfu.cfg.Clock.Now()
	var levels []trackLevel
	var audio []*UpTrack
	for _, t := range r.tracks {
		if t.info.Kind == "audio" && t.levelExt != 0 {
			levels = append(levels, trackLevel{track: t.info.ID, participant: t.info.ParticipantID, loudness: t.loudnessAt(now)})
			audio = append(audio, t)
		}
	}
	all := r.othersLocked(nil)
	large := len(r.parts) > r.sfu.cfg.LargeRoom
	r.mu.Unlock()

	speakers, selected, changed := r.spk.update(levels, now)
	var loudest []*UpTrack
	loudness := map[*UpTrack]int32{}
	for i, t := range audio {
		t.gated.Store(large && !selected[t.info.ID])
		if selected[t.info.ID] {
			loudest = append(loudest, t)
			loudness[t] = levels[i].loudness
		}
	}
	sort.SliceStable(loudest, func(i, j int) bool { return loudness[loudest[i]] > loudness[loudest[j]] })
	for _, p := range all {
		p.assignSlots(loudest)
	}
	if changed {
		for _, p := range all {
			p.n.ActiveSpeakers(speakers)
		}
	}
	r.mu.Lock()
	if !r.dead {
		r.spkTimer = r.sfu.cfg.Clock.AfterFunc(r.sfu.cfg.SpeakerInterval, r.tickSpeakers)
	}
	r.mu.Unlock()
}

// ID is the room id.
func (r *Room) ID() string { return r.id }

func (r *Room) size() (participants, tracks int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.parts), len(r.tracks)
}

// Tracks returns the published tracks, oldest first.
func (r *Room) Tracks() []*UpTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*UpTrack, 0, len(r.tracks))
	for _, t := range r.tracks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

func (r *Room) join(info ParticipantInfo, n Notifier) (*Participant, JoinResult, error) {
	r.mu.Lock()
	old := r.byIdentity[info.Identity]
	r.mu.Unlock()
	if old != nil {
		// The same identity again (a reconnect, a second window): the new
		// connection wins, the old one is told why it ended.
		old.closeWith("replaced")
	}

	p, err := newParticipant(r, info, n)
	if err != nil {
		return nil, JoinResult{}, err
	}
	r.mu.Lock()
	if r.dead {
		r.mu.Unlock()
		_ = p.pc.Close()
		return nil, JoinResult{}, errRoomGone
	}
	r.parts[p.info.ID] = p
	r.byIdentity[p.info.Identity] = p
	others := r.othersLocked(p)
	tracks := r.tracksLocked()
	large := len(r.parts) > r.sfu.cfg.LargeRoom
	r.mu.Unlock()

	res := JoinResult{Self: p.state()}
	for _, o := range others {
		res.Participants = append(res.Participants, o.state())
		o.n.ParticipantJoined(res.Self)
	}
	for _, t := range tracks {
		res.Tracks = append(res.Tracks, t.info)
	}
	r.log.Info("participant joined", "participant", p.info.ID, "identity", p.info.Identity, "role", p.info.Role)
	// The first offer may reach the notifier before Join returns: signaling
	// holds notifications until it has sent `joined`.
	wanted := tracks[:0:0]
	for _, t := range tracks {
		if wants(p.info.Role, t, large, large) {
			wanted = append(wanted, t)
		}
	}
	slots := 0
	if large {
		slots = r.sfu.cfg.MaxSpeakers
	}
	p.subscribe(wanted, slots)
	return p, res, nil
}

// wants is the subscription policy. In a large room (a province-wide
// session) a county receives the supervisor's and observers' video but not
// the other counties': 117 counties each receiving 116 videos is neither
// watchable nor carriable. Supervisors and observers receive every video
// (the supervisor watches the grid); everyone receives audio, of which only
// the loudest speakers are forwarded in large rooms.
//
// A participant that hears the room through speaker slots (it joined a large
// room) subscribes to no audio track.
func wants(role string, t *UpTrack, large, slotMode bool) bool {
	if t.info.Kind == "audio" {
		return !slotMode
	}
	return !large || role != RoleCounty || t.pubRole != RoleCounty
}

func (r *Room) othersLocked(p *Participant) []*Participant {
	out := make([]*Participant, 0, len(r.parts))
	for _, o := range r.parts {
		if o != p {
			out = append(out, o)
		}
	}
	return out
}

func (r *Room) tracksLocked() []*UpTrack {
	out := make([]*UpTrack, 0, len(r.tracks))
	for _, t := range r.tracks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// leave removes p and everything it published. It is idempotent.
func (r *Room) leave(p *Participant, reason string) {
	r.mu.Lock()
	if r.parts[p.info.ID] != p {
		r.mu.Unlock()
		return
	}
	delete(r.parts, p.info.ID)
	if r.byIdentity[p.info.Identity] == p {
		delete(r.byIdentity, p.info.Identity)
	}
	var pubs []*UpTrack
	for id, t := range r.tracks {
		if t.info.ParticipantID == p.info.ID {
			pubs = append(pubs, t)
			delete(r.tracks, id)
		}
	}
	others := r.othersLocked(p)
	r.mu.Unlock()

	for _, t := range pubs {
		r.retract(t, others)
	}
	for _, o := range others {
		o.n.ParticipantLeft(p.info.ID, reason)
	}
	r.log.Info("participant left", "participant", p.info.ID, "reason", reason)
	r.sfu.dropRoomIfEmpty(r)
}

// publish makes a new track visible and subscribes everyone else to it.
func (r *Room) publish(p *Participant, t *UpTrack) bool {
	r.mu.Lock()
	if r.parts[p.info.ID] != p {
		r.mu.Unlock()
		return false
	}
	r.order++
	t.seq = r.order
	r.tracks[t.info.ID] = t
	all := r.othersLocked(nil)
	large := len(r.parts) > r.sfu.cfg.LargeRoom
	r.mu.Unlock()

	for _, o := range all {
		o.n.TrackPublished(t.info)
	}
	for _, o := range all {
		if o != p && wants(o.info.Role, t, large, o.slotMode()) {
			o.subscribe([]*UpTrack{t}, 0)
		}
	}
	if obs := r.sfu.cfg.Observer; obs != nil {
		obs.TrackPublished(r.id, p.info, t)
	}
	r.log.Info("track published", "participant", p.info.ID, "track", t.info.ID, "kind", t.info.Kind,
		"source", t.info.Source, "codec", t.info.MimeType)
	return true
}

// unpublish retracts a track whose publisher stopped sending it.
func (r *Room) unpublish(t *UpTrack) {
	r.mu.Lock()
	if r.tracks[t.info.ID] != t {
		r.mu.Unlock()
		return
	}
	delete(r.tracks, t.info.ID)
	all := r.othersLocked(nil)
	r.mu.Unlock()
	r.retract(t, all)
}

func (r *Room) retract(t *UpTrack, audience []*Participant) {
	for _, o := range audience {
		o.n.TrackRemoved(t.info)
		if o.info.ID != t.info.ParticipantID {
			o.unsubscribe(t)
		}
	}
	if obs := r.sfu.cfg.Observer; obs != nil {
		obs.TrackUnpublished(r.id, t)
	}
	t.close()
	r.log.Info("track removed", "track", t.info.ID, "participant", t.info.ParticipantID)
}

// updated tells everyone (the participant included) its new state.
func (r *Room) updated(p *Participant) {
	r.mu.Lock()
	all := r.othersLocked(nil)
	r.mu.Unlock()
	st := p.state()
	for _, o := range all {
		o.n.ParticipantUpdated(st)
	}
}

func (r *Room) closeAll(reason string) {
	r.mu.Lock()
	all := r.othersLocked(nil)
	r.mu.Unlock()
	for _, p := range all {
		p.closeWith(reason)
	}
}
