package mux

import (
	"log/slog"
	"time"
)

const (
	// keyframeRetry throttles keyframe requests: one PLI per second at most.
	keyframeRetry = time.Second
	// videoStartWait is how long audio waits for the first video keyframe
	// before an audio-only segment is started instead.
	videoStartWait = 3 * time.Second
	// trackSettle is how long the first audio waits for a video track to
	// be added, so a camera published just after the microphone lands in
	// the same first segment.
	trackSettle = time.Second
	// mergeSlack is added to JitterHold to get how long a frame waits for
	// the other track before it is written anyway: a frame of the other
	// track with an earlier time cannot arrive later than that.
	mergeSlack = 250 * time.Millisecond
	// maxFillSpan caps how much missing audio one hole may be filled with,
	// on top of 2*MaxSegment (the longest a segment with audio runs, so
	// the longest hole one can hold). Frame times stay within maxSkew of
	// arrival, so a bogus RTP timestamp cannot make a hole more than 20 s
	// longer than the packets' real pause; what the cap guards against is
	// a configured MaxSegment of hours turning a real pause into hundreds
	// of thousands of blocks. A smaller cap would buy nothing: a filler
	// costs 7 bytes in the file and well under a microsecond, and a hole
	// left open puts the audio after it out of step with the video for the
	// rest of the segment. 2 min is the default MaxSegment's own bound
	// (6000 fillers, 42 KB).
	maxFillSpan = 2 * time.Minute
)

// trackState is the recorder goroutine's side of one track.
type trackState struct {
	in    *Track
	kind  Kind
	codec Codec
	asm   *assembler
	clock trackClock
	q     frameQueue
	// watermark is the time of the newest frame: later frames of this track
	// cannot be earlier.
	watermark time.Time
	// frameDur is the shortest step between RTP timestamps of consecutive
	// frames, lost ones included: how long the last frame lasts. Video
	// only: an Opus packet says how long it lasts, and with DTX the step
	// can be 400 ms.
	frameDur  time.Duration
	lastPktTS uint32
	havePkt   bool
	j         jitterStats // last snapshot of the jitter buffer's counters
	asmDrops  uint64      // last snapshot of the assembler's dropped frames
	gone      bool        // input removed; queued frames are still written
}

type action uint8

const (
	actWrite action = iota
	actDrop
	actHold  // audio waits for a video keyframe
	actRetry // the segment changed: pick again
)

// pipeline is everything the recorder goroutine owns: per-track assembly,
// interleaving, and the open segment.
type pipeline struct {
	cfg       Config
	log       *slog.Logger
	mergeWait time.Duration

	tl      timeline
	tracks  [2]*trackState // index kind-1
	maxFill int            // most fillers one audio hole gets (see maxFillSpan)

	seg        *segment
	wbuf       []byte // the write buffer of the last segment, for the next
	lastIndex  int
	lastFlush  time.Time
	lastKeyReq time.Time
	openRetry  time.Time // no new segment before this after a failed create

	// Counters not yet attributed to a segment (none was open).
	pendingLost, pendingLate, pendingDropped int

	retired  Stats // totals of tracks that were removed
	frames   uint64
	filled   uint64 // audio fillers written
	dropped  uint64
	segments int
	lastErr  error
}

func (p *pipeline) init(cfg Config, log *slog.Logger) {
	p.cfg = cfg
	p.log = log
	p.mergeWait = cfg.JitterHold + mergeSlack
	p.maxFill = int(min(2*cfg.MaxSegment, maxFillSpan) / (fillerMs * time.Millisecond))
}

func (p *pipeline) step(inputs [2]*Track, now time.Time, final bool) {
	p.syncTracks(inputs, now)
	for _, st := range p.tracks {
		if st != nil && !st.gone {
			p.pull(st, now, final)
		}
	}
	p.merge(now, final)
	p.maintain(now)
}

// finish drains all tracks and closes the open segment.
func (p *pipeline) finish(now time.Time) error {
	for _, st := range p.tracks {
		if st != nil && !st.gone {
			p.pull(st, now, true)
			st.gone = true
		}
	}
	p.merge(now, true)
	if p.seg != nil {
		p.closeSegment(time.Time{})
	}
	return p.lastErr
}

// syncTracks follows AddTrack/RemoveTrack: a removed input is drained at
// once and its frames still go through the merge; a new input of the same
// kind takes over when they are out.
func (p *pipeline) syncTracks(inputs [2]*Track, now time.Time) {
	for i := range p.tracks {
		st, in := p.tracks[i], inputs[i]
		if st != nil && !st.gone && st.in != in {
			p.pull(st, now, true)
			st.gone = true
		}
		if st != nil && st.gone && st.q.len() == 0 {
			p.retire(st)
			p.tracks[i], st = nil, nil
		}
		if st == nil && in != nil {
			st = &trackState{in: in, kind: in.kind, codec: in.codec, asm: newAssembler(in.codec, p.cfg.Buffers)}
			st.q.pool = p.cfg.Buffers
			st.clock.rate = in.codec.clockRate()
			p.tracks[i] = st
			if in.kind == KindVideo {
				p.wantKeyframe(now)
			}
		}
	}
}

// pull moves released packets of one track through its assembler into its
// frame queue.
func (p *pipeline) pull(st *trackState, now time.Time, force bool) {
	in := st.in
	in.mu.Lock()
	if in.srSet {
		st.clock.setSenderReport(in.srNTP, in.srTS)
		in.srSet = false
	}
	for {
		s, ev := in.jb.pop(now, force)
		if ev == popNone {
			break
		}
		if ev == popGap {
			st.asm.gap()
			continue
		}
		if len(s.payload()) == 0 {
			// Padding-only packet (bandwidth probing): part of no frame.
			in.jb.advance()
			continue
		}
		if st.kind == KindVideo {
			st.noteTimestamp(s.ts)
		}
		done, key := st.asm.push(s.payload(), s.ts, s.marker, s.arrival)
		in.jb.advance()
		if done {
			t := p.tl.frameTime(&st.clock, st.asm.ts, st.asm.arrival)
			st.q.push(t, key, st.asm.take())
			st.watermark = t
		}
	}
	in.jb.trim(now)
	js := in.jb.stats
	in.mu.Unlock()
	lost, late := int(js.Lost-st.j.Lost), int(js.Late-st.j.Late)
	drops := int(st.asm.stats.FramesDropped - st.asmDrops)
	st.j, st.asmDrops = js, st.asm.stats.FramesDropped
	if p.seg != nil {
		p.seg.info.PacketsLost += lost
		p.seg.info.PacketsLate += late
		p.seg.info.FramesDropped += drops
	} else {
		p.pendingLost += lost
		p.pendingLate += late
		p.pendingDropped += drops
	}
}

func (st *trackState) noteTimestamp(ts uint32) {
	if st.havePkt && ts != st.lastPktTS {
		if d := int32(ts - st.lastPktTS); d > 0 {
			if iv := st.clock.ticks(int64(d)); st.frameDur == 0 || iv < st.frameDur {
				st.frameDur = iv
			}
		}
	}
	st.lastPktTS, st.havePkt = ts, true
}

// merge writes queued frames in time order across the tracks.
func (p *pipeline) merge(now time.Time, final bool) {
	skipAudio := false
	for {
		st := p.pick(now, final, skipAudio)
		if st == nil {
			return
		}
		f := st.q.peek()
		switch p.place(st, f, now, final) {
		case actWrite:
			p.write(st, f)
			st.q.pop()
		case actDrop:
			p.countDropped()
			st.q.pop()
		case actHold:
			skipAudio = true
		case actRetry:
			skipAudio = false
		}
	}
}

// pick chooses the track whose head frame goes next, or nil to wait.
func (p *pipeline) pick(now time.Time, final, skipAudio bool) *trackState {
	a, v := p.tracks[0], p.tracks[1]
	var fa, fv *queuedFrame
	if a != nil && !skipAudio {
		fa = a.q.peek()
	}
	if v != nil {
		fv = v.q.peek()
	}
	switch {
	case fa != nil && fv != nil:
		if fa.t.Before(fv.t) {
			return a
		}
		return v
	case fa != nil:
		if p.mayGoAlone(fa, v, now, final) {
			return a
		}
	case fv != nil:
		if skipAudio || p.mayGoAlone(fv, a, now, final) {
			return v
		}
	}
	return nil
}

// mayGoAlone reports whether f can be written while the other track has
// nothing queued: no earlier frame of the other track can still come.
func (p *pipeline) mayGoAlone(f *queuedFrame, other *trackState, now time.Time, final bool) bool {
	if final || other == nil || other.gone {
		return true
	}
	if !f.t.After(other.watermark) {
		return true
	}
	return now.Sub(f.t) >= p.mergeWait
}

func (p *pipeline) videoOn() bool {
	v := p.tracks[KindVideo-1]
	return v != nil && !v.gone
}

func (p *pipeline) audioOn() bool {
	a := p.tracks[KindAudio-1]
	return a != nil && !a.gone
}

// place decides what happens to the head frame f of track st: written
// (possibly into a new segment), dropped, or held (audio waiting for a video
// keyframe to start a segment with).
func (p *pipeline) place(st *trackState, f *queuedFrame, now time.Time, final bool) action {
	seg := p.seg
	maxSeg := p.cfg.MaxSegment
	if st.kind == KindVideo {
		if seg != nil && seg.videoNum != 0 && seg.videoCodec == st.codec {
			if seg.needKey {
				if !f.key {
					p.wantKeyframe(now)
					return actDrop
				}
				seg.needKey = false
				return actWrite
			}
			if f.key && (f.t.Sub(seg.info.Start) >= maxSeg || p.audioOn() && seg.audioNum == 0) {
				return p.startOnKeyframe(f, now)
			}
			return actWrite
		}
		// No segment, or one without this video track: a segment with
		// video can only start on a keyframe.
		if !f.key {
			p.wantKeyframe(now)
			return actDrop
		}
		return p.startOnKeyframe(f, now)
	}

	if seg != nil && seg.audioNum != 0 {
		dur := f.t.Sub(seg.info.Start)
		noCut := seg.videoNum == 0 || !p.videoOn()
		if dur >= maxSeg && noCut || dur >= 2*maxSeg {
			// Nothing to cut at on a keyframe (audio only, or the video
			// stopped sending keyframes): cut here.
			withVideo := p.videoOn() && p.tracks[KindVideo-1].asm.ready()
			p.rotate(f.t, true, withVideo, withVideo, now)
		}
		return actWrite
	}
	if p.videoOn() && !final && now.Sub(f.t) < videoStartWait {
		p.wantKeyframe(now)
		return actHold
	}
	if seg == nil && !final && now.Sub(f.t) < trackSettle {
		return actHold
	}
	withVideo := p.videoOn() && p.tracks[KindVideo-1].asm.ready()
	p.rotate(f.t, true, withVideo, withVideo, now)
	return actWrite
}

// startOnKeyframe starts a segment with video (and audio, if recorded) on
// the keyframe f.
func (p *pipeline) startOnKeyframe(f *queuedFrame, now time.Time) action {
	start := f.t
	heldAudio := false
	if p.audioOn() && (p.seg == nil || p.seg.audioNum == 0) {
		// Audio held from before the keyframe opens the segment.
		if h := p.tracks[KindAudio-1].q.peek(); h != nil && h.t.Before(start) {
			start, heldAudio = h.t, true
		}
	}
	p.rotate(start, p.audioOn(), true, false, now)
	if heldAudio && p.seg != nil {
		// The held audio goes in first, in time order; the keyframe
		// follows when its turn comes.
		return actRetry
	}
	return actWrite
}

// maintain trims the frame queues, requests keyframes ahead of a boundary
// or while one is needed, and syncs the open segment to disk every
// FlushInterval.
func (p *pipeline) maintain(now time.Time) {
	for _, st := range p.tracks {
		if st != nil {
			st.q.trim(now)
		}
	}
	if v := p.tracks[KindVideo-1]; v != nil && !v.gone {
		seg := p.seg
		switch {
		case v.asm.waitKey, seg == nil, seg.videoNum == 0, seg.needKey,
			p.audioOn() && seg.audioNum == 0:
			p.wantKeyframe(now)
		default:
			dur := v.watermark.Sub(seg.info.Start)
			if dur >= p.cfg.MaxSegment-p.cfg.KeyframeLead && !seg.keyRequested {
				seg.keyRequested = p.wantKeyframe(now)
			} else if dur >= p.cfg.MaxSegment {
				p.wantKeyframe(now)
			}
		}
	}
	if p.seg != nil && now.Sub(p.lastFlush) >= p.cfg.FlushInterval {
		p.lastFlush = now
		if err := p.seg.w.flush(float64(p.seg.durationMs())); err != nil {
			p.failSegment(err, now)
		}
	}
}

// wantKeyframe asks the publisher for a keyframe unless one was asked for
// less than keyframeRetry ago; it reports whether the request went out.
func (p *pipeline) wantKeyframe(now time.Time) bool {
	if p.cfg.RequestKeyframe == nil || now.Sub(p.lastKeyReq) < keyframeRetry {
		return false
	}
	p.lastKeyReq = now
	p.cfg.RequestKeyframe()
	return true
}

func (p *pipeline) countDropped() {
	p.dropped++
	if p.seg != nil {
		p.seg.info.FramesDropped++
	} else {
		p.pendingDropped++
	}
}

// write appends f to the open segment.
func (p *pipeline) write(st *trackState, f *queuedFrame) {
	seg := p.seg
	if seg == nil {
		p.countDropped()
		return
	}
	num := seg.audioNum
	if st.kind == KindVideo {
		num = seg.videoNum
	}
	if num == 0 {
		p.countDropped()
		return
	}
	p.fillAudio(seg, st, f)
	dur := st.frameDur
	if st.kind == KindAudio {
		dur = opusDuration(f.data())
	}
	seg.writeFrame(st.kind, num, f, dur)
	p.frames++
	if err := seg.w.err; err != nil {
		p.failSegment(err, f.t)
	}
}

// fillAudio fills the hole in the open segment's audio (DTX, lost
// packets) that ends at the audio track's next frame, up to f, the frame
// about to be written. Video frames inside the hole are preceded by the
// fillers before them, so audio and video stay interleaved in time order;
// that takes the next audio frame being queued already, as it is after a
// DTX pause (a packet every 400 ms, within mergeWait). When video had to
// go on alone first (a longer hole), the fillers follow it, just ahead of
// the audio frame that ends the hole.
func (p *pipeline) fillAudio(seg *segment, st *trackState, f *queuedFrame) {
	next := f
	if st.kind != KindAudio {
		a := p.tracks[KindAudio-1]
		if seg.audioNum == 0 || a == nil {
			return
		}
		if next = a.q.peek(); next == nil {
			return // where the hole ends is not known yet
		}
	}
	n, tooLong := seg.fillAudio(next.t, f.t, p.maxFill)
	p.filled += uint64(n)
	if tooLong && next == f {
		p.log.Warn("audio gap too long to fill, left open", "index", seg.info.Index,
			"gap_end", next.t, "max", time.Duration(p.maxFill)*fillerMs*time.Millisecond)
	}
}

// stats sums the counters of all tracks, past and present.
func (p *pipeline) stats() Stats {
	s := p.retired
	for _, st := range p.tracks {
		if st != nil {
			addTrackStats(&s, st)
		}
	}
	s.Frames = p.frames
	s.AudioFramesFilled = p.filled
	s.FramesDropped += p.dropped
	s.Segments = p.segments
	return s
}

func (p *pipeline) retire(st *trackState) {
	addTrackStats(&p.retired, st)
	p.cfg.Buffers.put(st.asm.take())
}

func addTrackStats(s *Stats, st *trackState) {
	s.Packets += st.j.Received
	s.Bytes += st.j.Bytes
	s.PacketsLost += st.j.Lost
	s.PacketsLate += st.j.Late
	s.Duplicates += st.j.Duplicate
	s.Overflow += st.j.Overflow
	s.FramesDropped += st.asm.stats.FramesDropped
}
