package recording

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/recording/mux"
	"github.com/ducha-dev/ducha/sfu"
)

// sourceRec is one participant source being recorded: a muxer and the
// tracks feeding it.
type sourceRec struct {
	r    *Recorder
	rr   *roomRec
	key  sourceKey
	m    *mux.Recorder
	mu   sync.Mutex
	subs map[*sfu.UpTrack]*trackSub
	// video is the current video track, asked for keyframes at segment
	// boundaries.
	video atomic.Pointer[sfu.UpTrack]
	// state (touched only on the muxer's goroutine after creation) places
	// an unfinished segment after a crash.
	state sourceState
}

func (r *Recorder) newSource(rr *roomRec, key sourceKey) (*sourceRec, error) {
	s := &sourceRec{r: r, rr: rr, key: key, subs: map[*sfu.UpTrack]*trackSub{}}
	name := fmt.Sprintf("%s_%s_%s", rr.recID, key.participant, key.group)
	s.state = sourceState{Room: rr.room, Recording: rr.recID, Participant: key.participant, Source: key.group,
		Name: name, Started: r.cfg.Now()}
	if err := s.state.save(r.cfg.WorkDir); err != nil {
		return nil, fmt.Errorf("recording: state file: %w", err)
	}
	m, err := mux.New(mux.Config{
		Dir: r.cfg.WorkDir, Name: name, MaxSegment: r.cfg.MaxSegment, Now: r.cfg.Now,
		Logger: r.log.With("room", rr.room, "participant", key.participant, "source", key.group),
		RequestKeyframe: func() {
			if v := s.video.Load(); v != nil {
				v.RequestKeyframe()
			}
		},
		OnSegment: s.onSegment,
		Buffers:   r.buffers,
	})
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// onSegment hands a finished file to the spool. It runs on the muxer's
// goroutine; hashing a minute of video there is fine (packets wait in the
// muxer's jitter buffers, never in the SFU).
func (s *sourceRec) onSegment(seg mux.Segment) {
	if seg.Err != nil {
		s.r.log.Error("segment write failed", "room", s.rr.room, "path", seg.Path, "err", seg.Err)
	}
	var codecs []string
	for _, c := range []mux.Codec{seg.VideoCodec, seg.AudioCodec} {
		if c != "" {
			codecs = append(codecs, string(c))
		}
	}
	in := evidence.Segment{
		SessionID: s.rr.recID, ParticipantID: s.key.participant, Source: s.key.group,
		Path: seg.Path, Start: seg.Start, End: seg.End, Codecs: codecs,
	}
	// After a write error the file holds less than was counted, so the
	// counts would overstate it: the manifest says "not known" instead.
	if seg.Err == nil {
		in.AudioFrames, in.AudioFramesFilled = new(seg.AudioFrames), new(seg.AudioFramesFilled)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.r.cfg.Spool.AddSegment(ctx, in)
	if err != nil {
		s.r.log.Error("segment not spooled; it stays in the work directory", "path", seg.Path, "err", err)
	}
	s.state.LastEnd = seg.End
	if err := s.state.save(s.r.cfg.WorkDir); err != nil {
		s.r.log.Warn("recording state not saved", "name", s.state.Name, "err", err)
	}
}

func (s *sourceRec) add(t *sfu.UpTrack) error {
	mt, err := s.m.AddTrack(t.Info().MimeType)
	if err != nil {
		return err
	}
	sub := &trackSub{up: t, t: mt, m: s.m}
	s.mu.Lock()
	s.subs[t] = sub
	s.mu.Unlock()
	if t.Info().Kind == "video" {
		s.video.Store(t)
	}
	t.Subscribe(sub)
	return nil
}

// remove detaches t and returns how many tracks remain.
func (s *sourceRec) remove(t *sfu.UpTrack) int {
	s.mu.Lock()
	sub := s.subs[t]
	delete(s.subs, t)
	n := len(s.subs)
	s.mu.Unlock()
	if sub == nil {
		return n
	}
	t.Unsubscribe(sub)
	s.m.RemoveTrack(sub.t.Kind())
	if s.video.Load() == t {
		s.video.Store(nil)
	}
	return n
}

func (s *sourceRec) close() {
	s.mu.Lock()
	subs := s.subs
	s.subs = map[*sfu.UpTrack]*trackSub{}
	s.mu.Unlock()
	for t, sub := range subs {
		t.Unsubscribe(sub)
	}
	if err := s.m.Close(); err != nil {
		s.r.log.Warn("recording closed with an error", "room", s.rr.room, "err", err)
	}
	// Closed cleanly: every segment is in the spool, nothing to recover.
	if err := os.Remove(statePath(s.r.cfg.WorkDir, s.state.Name)); err != nil && !os.IsNotExist(err) {
		s.r.log.Warn("recording state not removed", "name", s.state.Name, "err", err)
	}
}

// trackSub is the recorder's sfu.Subscriber for one track.
type trackSub struct {
	up     *sfu.UpTrack
	t      *mux.Track
	m      *mux.Recorder
	lastSR *sfu.SenderReport
}

// WriteRTP copies the packet into the muxer's jitter buffer and passes on
// a new sender report when one arrived (for lip sync).
func (s *trackSub) WriteRTP(p *rtp.Packet) error {
	if sr := s.up.LastSenderReport(); sr != nil && sr != s.lastSR {
		s.lastSR = sr
		s.m.SetSenderReport(s.t.Kind(), sr.NTPTime, sr.RTPTime)
	}
	return s.t.WriteRTP(p)
}

// Resync implements sfu.Subscriber.
func (s *trackSub) Resync() { s.t.Resync() }
