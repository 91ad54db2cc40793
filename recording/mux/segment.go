package mux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// maxIndexProbe bounds the search for an unused file name when earlier
// files of the same name exist (a restarted recording): files are never
// overwritten.
const maxIndexProbe = 10000

// partSuffix marks a segment that is still being written, or was never
// finished because the process died: such a file plays up to its last
// synced cluster.
const partSuffix = ".part"

// segment is the open segment file and what is known about it.
type segment struct {
	w        *webmWriter
	info     Segment
	partPath string

	audioNum, videoNum uint8 // track numbers in the file; 0 if absent
	videoCodec         Codec
	needKey            bool // video frames wait for a keyframe
	keyRequested       bool // the keyframe ahead of the boundary was asked for

	lastTS  [2]int64 // per kind, ms; -1 before the first frame
	frameMs [2]int64 // per kind, how long the last frame lasts
	// filler is the Opus packet that conceals 20 ms of missing audio, in
	// the mode of the last audio frame: written from here, no allocation.
	filler [1]byte
}

// writeFrame appends one frame lasting frameDur. Timestamps are
// milliseconds from the segment start and never go backwards within a
// track.
func (s *segment) writeFrame(kind Kind, num uint8, f *queuedFrame, frameDur time.Duration) {
	i := kind - 1
	s.frameMs[i] = min(max(int64(frameDur/time.Millisecond), 1), 1000)
	ms := s.ms(f.t)
	if last := s.lastTS[i]; ms < last {
		ms = last
	}
	s.lastTS[i] = ms
	s.w.writeBlock(num, ms, f.key, f.data())
	if kind == KindAudio {
		s.info.AudioFrames++
		if d := f.data(); len(d) > 0 {
			s.filler[0] = opusFillerTOC(d[0])
		}
	} else {
		s.info.VideoFrames++
	}
}

// ms is t in milliseconds from the segment start, rounded, never negative.
func (s *segment) ms(t time.Time) int64 {
	return max(int64((t.Sub(s.info.Start)+time.Millisecond/2)/time.Millisecond), 0)
}

// fillAudio conceals the hole in the audio track before its next frame,
// at next: one filler every fillerMs from the end of the last audio block
// while a whole one fits before next, written if it starts no later than
// until (the block about to be written: blocks stay in time order).
// Without it a player either plays the audio after a DTX pause or a loss
// early, or handles the hole its own way; with it every player conceals
// the same 20 ms frames and audio stays in step with video. A hole of more
// than maxFrames fillers is left as it is and reported (tooLong). Only a
// hole within this segment is filled: a segment's audio starts where its
// first frame is.
func (s *segment) fillAudio(next, until time.Time, maxFrames int) (n int, tooLong bool) {
	i := KindAudio - 1
	if s.audioNum == 0 || s.lastTS[i] < 0 {
		return 0, false
	}
	ts, nextMs := s.lastTS[i]+s.frameMs[i], s.ms(next)
	if nextMs-ts < fillerMs {
		return 0, false
	}
	if (nextMs-ts)/fillerMs > int64(maxFrames) {
		return 0, true
	}
	if floor := s.w.earliestExact(); ts < floor {
		// The hole's end became known only after video had gone on alone
		// far past its start (audio stopped for over half a minute while
		// video did not): blocks that far back cannot be timed in the open
		// cluster, so the hole's start stays open.
		ts += (floor - ts + fillerMs - 1) / fillerMs * fillerMs
	}
	for untilMs := s.ms(until); ts+fillerMs <= nextMs && ts <= untilMs; ts += fillerMs {
		s.w.writeBlock(s.audioNum, ts, true, s.filler[:])
		s.lastTS[i], s.frameMs[i] = ts, fillerMs
		n++
	}
	s.info.AudioFramesFilled += n
	return n, false
}

// durationMs is the segment length: the end of its last frame.
func (s *segment) durationMs() int64 {
	var d int64
	for i := range s.lastTS {
		if s.lastTS[i] >= 0 {
			d = max(d, s.lastTS[i]+s.frameMs[i])
		}
	}
	return d
}

// durationUntil is the segment length when the next segment starts at next:
// the last frame lasts until then, so consecutive segments meet exactly.
func (s *segment) durationUntil(next time.Time) int64 {
	hint := int64(next.Sub(s.info.Start) / time.Millisecond)
	if hint > max(s.lastTS[0], s.lastTS[1]) && !next.IsZero() {
		return hint
	}
	return s.durationMs()
}

// rotate closes the open segment, if any, and opens the next one.
func (p *pipeline) rotate(start time.Time, withAudio, withVideo, needKey bool, now time.Time) {
	if p.seg != nil {
		p.closeSegment(start)
	}
	if now.Before(p.openRetry) {
		return
	}
	if err := p.openSegment(start, withAudio, withVideo, needKey); err != nil {
		p.lastErr = err
		p.openRetry = now.Add(time.Second)
		p.log.Error("cannot create segment file", "err", err)
	}
}

func (p *pipeline) openSegment(start time.Time, withAudio, withVideo bool, needKey bool) error {
	var tracks []webmTrack
	s := &segment{lastTS: [2]int64{-1, -1}, needKey: needKey && withVideo}
	if withVideo {
		v := p.tracks[KindVideo-1]
		s.videoNum = uint8(len(tracks) + 1)
		s.videoCodec = v.codec
		s.info.VideoCodec = v.codec
		s.info.Width, s.info.Height = v.asm.width, v.asm.height
		tracks = append(tracks, webmTrack{
			number: s.videoNum, codec: v.codec,
			width: v.asm.width, height: v.asm.height,
			private: v.asm.codecPrivate(),
		})
	}
	if withAudio {
		a := p.tracks[KindAudio-1]
		s.audioNum = uint8(len(tracks) + 1)
		s.info.AudioCodec = a.codec
		tracks = append(tracks, webmTrack{number: s.audioNum, codec: a.codec, private: a.asm.codecPrivate()})
	}
	s.info.Start = start

	for probe := 0; ; probe++ {
		if probe == maxIndexProbe {
			return fmt.Errorf("%w: no free file name for %q", ErrWrite, p.cfg.Name)
		}
		p.lastIndex++
		final := filepath.Join(p.cfg.Dir, fmt.Sprintf("%s-%06d.webm", p.cfg.Name, p.lastIndex))
		part := final + partSuffix
		if _, err := os.Lstat(final); err == nil {
			continue
		}
		w, err := createWebM(part, start, tracks, p.wbuf)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		p.wbuf = nil
		s.w, s.partPath = w, part
		s.info.Path, s.info.Index = final, p.lastIndex
		break
	}
	// The new name must survive a crash too.
	syncDir(p.cfg.Dir)
	s.info.PacketsLost, p.pendingLost = p.pendingLost, 0
	s.info.PacketsLate, p.pendingLate = p.pendingLate, 0
	s.info.FramesDropped, p.pendingDropped = p.pendingDropped, 0
	p.seg = s
	p.log.Info("segment started", "index", s.info.Index, "path", s.info.Path,
		"start", start, "audio", string(s.info.AudioCodec), "video", string(s.info.VideoCodec))
	return nil
}

// closeSegment finishes the open segment, renames it to its final name and
// reports it. next is when the following segment starts (zero at the end).
func (p *pipeline) closeSegment(next time.Time) {
	s := p.seg
	p.seg = nil
	d := s.durationUntil(next)
	err := s.w.close(float64(d))
	p.wbuf = s.w.buf[:0]
	s.info.Duration = time.Duration(d) * time.Millisecond
	s.info.End = s.info.Start.Add(s.info.Duration)
	s.info.Bytes = s.w.off
	if err == nil {
		err = os.Rename(s.partPath, s.info.Path)
		if err == nil {
			syncDir(p.cfg.Dir)
		} else {
			err = fmt.Errorf("%w: %w", ErrWrite, err)
		}
	}
	p.report(s, err)
}

// failSegment gives up on the open segment after a write error; the next
// frame that can start a segment opens a new file.
func (p *pipeline) failSegment(err error, now time.Time) {
	s := p.seg
	p.seg = nil
	s.w.abandon()
	p.wbuf = s.w.buf[:0]
	d := s.durationMs()
	s.info.Duration = time.Duration(d) * time.Millisecond
	s.info.End = s.info.Start.Add(s.info.Duration)
	s.info.Bytes = s.w.off
	p.openRetry = now.Add(time.Second)
	p.report(s, err)
}

func (p *pipeline) report(s *segment, err error) {
	p.segments++
	if err != nil {
		s.info.Err = err
		s.info.Path = s.partPath
		p.lastErr = err
		p.log.Error("segment failed", "index", s.info.Index, "path", s.partPath, "err", err)
	} else {
		p.log.Info("segment finished", "index", s.info.Index, "path", s.info.Path,
			"duration", s.info.Duration, "bytes", s.info.Bytes,
			"packets_lost", s.info.PacketsLost, "frames_dropped", s.info.FramesDropped)
	}
	if p.cfg.OnSegment != nil {
		p.cfg.OnSegment(s.info)
	}
}

// syncDir makes a create or rename in dir durable. Errors are ignored: some
// file systems cannot sync directories, and the data itself is synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
