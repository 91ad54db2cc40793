// Package recording records every published track as evidence. The
// Recorder is an SFU TrackObserver: for each track of a room being recorded
// it subscribes like any browser would (the same fan-out, the same packet
// cache), feeds one muxer per participant source (camera with microphone,
// or a screen share), and hands each finished segment to the evidence
// spool, which hashes, chains and uploads it. When a session ends, its
// manifest is sealed.
package recording

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/recording/mux"
	"github.com/ducha-dev/ducha/sfu"
)

// Sessions is what the recorder needs to know about rooms.
type Sessions interface {
	// ShouldRecord reports whether a room is being recorded now.
	ShouldRecord(room string) bool
	// Scheduled reports whether a room is a scheduled session (sealed when
	// it ends) rather than an ad-hoc room (sealed when it empties).
	Scheduled(room string) bool
	// Manifest gathers the facts, participants and event log of a
	// recording. recordingID is the spool's session id for it.
	Manifest(ctx context.Context, room, recordingID string, seen []evidence.Participant) (evidence.ManifestInput, error)
}

// Tracks lists the tracks published in a room (the SFU).
type Tracks interface {
	RoomTracks(room string) []*sfu.UpTrack
}

// Config configures a Recorder.
type Config struct {
	WorkDir    string // where segments are written before the spool takes them
	Spool      *evidence.Spool
	Sessions   Sessions
	MaxSegment time.Duration // default 60 s
	Now        func() time.Time
	Logger     *slog.Logger
}

// Recorder implements sfu.TrackObserver and live.Recording.
type Recorder struct {
	cfg    Config
	log    *slog.Logger
	tracks Tracks
	// buffers is shared by every muxer: what one track's burst borrowed
	// serves the others afterwards.
	buffers *mux.BufferPool

	mu    sync.Mutex
	rooms map[string]*roomRec
}

var _ sfu.TrackObserver = (*Recorder)(nil)

// New checks cfg and prepares the work directory.
func New(cfg Config) (*Recorder, error) {
	if cfg.Spool == nil || cfg.Sessions == nil || cfg.WorkDir == "" {
		return nil, errors.New("recording: WorkDir, Spool and Sessions are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o750); err != nil {
		return nil, fmt.Errorf("recording: work dir: %w", err)
	}
	return &Recorder{cfg: cfg, log: cfg.Logger, rooms: map[string]*roomRec{}, buffers: mux.NewBufferPool()}, nil
}

// Attach gives the recorder the SFU's tracks, so switching recording on
// mid-session can pick up what is already published.
func (r *Recorder) Attach(t Tracks) {
	r.mu.Lock()
	r.tracks = t
	r.mu.Unlock()
}

// roomRec is a room being recorded: one recording id (the spool's session)
// and a muxer per participant source.
type roomRec struct {
	room     string
	recID    string
	sources  map[sourceKey]*sourceRec
	seen     map[string]evidence.Participant
	finished chan struct{} // closed when sealed
}

type sourceKey struct{ participant, group string }

// group puts a camera and its microphone in one file; a screen share is
// its own recording.
func group(source string) string {
	if source == sfu.SourceScreen {
		return sfu.SourceScreen
	}
	return sfu.SourceCamera
}

// TrackPublished implements sfu.TrackObserver.
func (r *Recorder) TrackPublished(room string, publisher sfu.ParticipantInfo, t *sfu.UpTrack) {
	if !r.cfg.Sessions.ShouldRecord(room) {
		return
	}
	r.record(room, publisher, t)
}

func (r *Recorder) record(room string, publisher sfu.ParticipantInfo, t *sfu.UpTrack) {
	info := t.Info()
	r.mu.Lock()
	rr := r.rooms[room]
	if rr == nil {
		rr = &roomRec{room: room, recID: r.recordingID(room), sources: map[sourceKey]*sourceRec{},
			seen: map[string]evidence.Participant{}, finished: make(chan struct{})}
		r.rooms[room] = rr
	}
	if _, ok := rr.seen[publisher.ID]; !ok {
		rr.seen[publisher.ID] = evidence.Participant{ID: publisher.ID, Name: publisher.Name, Role: publisher.Role,
			Organization: publisher.Unit, Joined: r.cfg.Now()}
	}
	key := sourceKey{info.ParticipantID, group(info.Source)}
	src := rr.sources[key]
	if src == nil {
		var err error
		src, err = r.newSource(rr, key)
		if err != nil {
			r.mu.Unlock()
			r.log.Error("cannot record", "room", room, "participant", info.ParticipantID, "err", err)
			return
		}
		rr.sources[key] = src
	}
	r.mu.Unlock()
	if err := src.add(t); err != nil {
		r.log.Error("cannot record track", "room", room, "track", info.ID, "err", err)
	}
}

// recordingID names a recording in the spool and archive: the session id
// for scheduled sessions; for an ad-hoc room, the room and the time it
// started, since the same room name may be used again later.
func (r *Recorder) recordingID(room string) string {
	if r.cfg.Sessions.Scheduled(room) {
		return room
	}
	return room + "-" + r.cfg.Now().UTC().Format("20060102T150405Z")
}

// TrackUnpublished implements sfu.TrackObserver.
func (r *Recorder) TrackUnpublished(room string, t *sfu.UpTrack) {
	info := t.Info()
	r.mu.Lock()
	rr := r.rooms[room]
	var src *sourceRec
	key := sourceKey{info.ParticipantID, group(info.Source)}
	if rr != nil {
		src = rr.sources[key]
	}
	r.mu.Unlock()
	if src == nil {
		return
	}
	if src.remove(t) > 0 {
		return
	}
	src.close()
	r.mu.Lock()
	if rr.sources[key] == src {
		delete(rr.sources, key)
	}
	p := rr.seen[info.ParticipantID]
	p.Left = r.cfg.Now()
	rr.seen[info.ParticipantID] = p
	emptyAdhoc := len(rr.sources) == 0 && !r.cfg.Sessions.Scheduled(room)
	r.mu.Unlock()
	if emptyAdhoc {
		go r.seal(room, rr)
	}
}

// SetRecording implements live.Recording: on subscribes to what the room
// publishes now; off closes the room's recordings (their segments go to
// the spool; the manifest is sealed when the session ends).
func (r *Recorder) SetRecording(room string, on bool) {
	if on {
		r.mu.Lock()
		tracks := r.tracks
		r.mu.Unlock()
		if tracks == nil {
			return
		}
		for _, t := range tracks.RoomTracks(room) {
			r.record(room, sfu.ParticipantInfo{ID: t.Info().ParticipantID}, t)
		}
		return
	}
	r.closeSources(room)
}

// SessionEnded implements live.Recording: everything is closed and the
// manifest sealed.
func (r *Recorder) SessionEnded(room string) {
	r.mu.Lock()
	rr := r.rooms[room]
	r.mu.Unlock()
	if rr == nil {
		return
	}
	r.seal(room, rr)
}

func (r *Recorder) closeSources(room string) []*sourceRec {
	r.mu.Lock()
	rr := r.rooms[room]
	var srcs []*sourceRec
	if rr != nil {
		for k, s := range rr.sources {
			srcs = append(srcs, s)
			delete(rr.sources, k)
		}
	}
	r.mu.Unlock()
	for _, s := range srcs {
		s.close()
	}
	return srcs
}

// seal closes the room's recordings and archives its signed manifest.
func (r *Recorder) seal(room string, rr *roomRec) {
	r.closeSources(room)
	r.mu.Lock()
	if r.rooms[room] != rr {
		r.mu.Unlock()
		return // sealed already
	}
	delete(r.rooms, room)
	seen := make([]evidence.Participant, 0, len(rr.seen))
	for _, p := range rr.seen {
		seen = append(seen, p)
	}
	r.mu.Unlock()
	defer close(rr.finished)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, err := r.cfg.Sessions.Manifest(ctx, room, rr.recID, seen)
	if err != nil {
		r.log.Error("manifest facts unavailable; sealing with what the recorder saw", "room", room, "err", err)
		in = evidence.ManifestInput{Session: evidence.SessionFacts{ID: rr.recID, Title: room}, Participants: seen}
	}
	in.Session.ID = rr.recID
	if err := r.cfg.Spool.CloseSession(ctx, in); err != nil {
		r.log.Error("manifest not sealed", "room", room, "recording", rr.recID, "err", err)
		return
	}
	r.log.Info("recording sealed", "room", room, "recording", rr.recID)
}

// Close seals every room (server shutdown).
func (r *Recorder) Close() {
	r.mu.Lock()
	rooms := make(map[string]*roomRec, len(r.rooms))
	for k, v := range r.rooms {
		rooms[k] = v
	}
	r.mu.Unlock()
	for room, rr := range rooms {
		if r.cfg.Sessions.Scheduled(room) {
			r.closeSources(room) // the session goes on after a restart; sealed when it ends
			continue
		}
		r.seal(room, rr)
	}
}

// Active lists the recordings running now (room -> recording id).
func (r *Recorder) Active() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.rooms))
	for room, rr := range r.rooms {
		out[room] = rr.recID
	}
	return out
}

// Recording reports whether a room is being recorded now, and its id.
func (r *Recorder) Recording(room string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr := r.rooms[room]
	if rr == nil {
		return "", false
	}
	return rr.recID, true
}

// compile-time check that mux's segment carries what the spool needs.
var _ = mux.Segment{}
