package mux

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtp"
)

const (
	// tickInterval paces the recorder goroutine: packets are processed in
	// batches, which costs less than a wake-up per packet.
	tickInterval = 50 * time.Millisecond
	// Jitter buffer windows in packets: several seconds at WebRTC rates, far
	// more than JitterHold needs, so a stalled disk does not drop packets
	// at once. Memory follows what is held, not the window (see
	// jitterBuffer): a province-wide session records 118 sources.
	videoRingSize = 2048
	audioRingSize = 512
)

// Segment describes a finished segment file.
type Segment struct {
	Path     string        // the file, in the spool directory
	Index    int           // 1, 2, ... in the order this recorder wrote them
	Start    time.Time     // server time of the file's timestamp 0
	End      time.Time     // Start + Duration
	Duration time.Duration // from the first frame to the end of the last

	AudioCodec    Codec // "" when the file has no audio track
	VideoCodec    Codec // "" when the file has no video track
	Width, Height int   // video size in the header (first keyframe)

	Bytes       int64
	AudioFrames int // Opus packets received and written
	VideoFrames int
	// AudioFramesFilled counts the 20 ms concealment frames written into
	// holes of the audio track (DTX pauses, lost packets): audio a player
	// makes up (fading to silence), not what the microphone sent. Not
	// included in AudioFrames.
	AudioFramesFilled int
	// PacketsLost counts sequence numbers given up on while the segment was
	// open (what NACK could not repair); PacketsLate those that came after.
	PacketsLost int
	PacketsLate int
	// FramesDropped counts video frames left out because they could not be
	// decoded (incomplete, or after a loss until the next keyframe).
	FramesDropped int

	// Err is set when writing failed: the file holds what reached the disk
	// before the failure and is left with the .part suffix.
	Err error
}

// Stats are the recorder's running totals.
type Stats struct {
	Packets       uint64 // packets received
	Bytes         uint64 // payload bytes received
	PacketsLost   uint64 // given up on after JitterHold
	PacketsLate   uint64 // arrived after being given up on
	Duplicates    uint64
	Overflow      uint64 // refused because the jitter buffer was full
	Frames        uint64 // frames written (received ones: fillers not included)
	FramesDropped uint64
	// AudioFramesFilled counts the concealment frames written into audio
	// holes (see Segment.AudioFramesFilled).
	AudioFramesFilled uint64
	Segments          int // segments finished
}

// Recorder writes one participant source's tracks into segment files.
type Recorder struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex // guards inputs and closed
	inputs [2]*Track  // current input per kind (index kind-1)
	closed bool

	statsMu sync.Mutex
	stats   Stats

	running   bool // the goroutine runs (New); tests step by hand
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	p pipeline // owned by the recorder goroutine
}

// Track is the input for one published track. It satisfies the SFU's
// subscriber contract (WriteRTP, Resync).
type Track struct {
	kind  Kind
	codec Codec
	now   func() time.Time

	mu      sync.Mutex // guards everything below
	jb      *jitterBuffer
	removed bool
	closed  bool
	srSet   bool
	srNTP   uint64
	srTS    uint32
}

// New starts a recorder. Add tracks with AddTrack; Close finishes the last
// segment.
func New(cfg Config) (*Recorder, error) {
	r, err := newRecorder(cfg)
	if err != nil {
		return nil, err
	}
	r.running = true
	go r.run()
	return r, nil
}

// newRecorder builds a recorder without its goroutine; tests drive it with
// step and finish.
func newRecorder(cfg Config) (*Recorder, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Recorder{
		cfg:  cfg,
		log:  cfg.Logger.With("recording", cfg.Name),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	r.p.init(cfg, r.log)
	return r, nil
}

// AddTrack starts recording a track with the given WebRTC MIME type. A
// recorder holds one audio and one video track; adding a kind that is
// already there fails with ErrTrackExists. Adding a track while a segment
// runs starts a new segment that includes it (at the next keyframe).
func (r *Recorder) AddTrack(mimeType string) (*Track, error) {
	c, err := ParseMimeType(mimeType)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	i := c.Kind() - 1
	if r.inputs[i] != nil {
		return nil, fmt.Errorf("%w: %s", ErrTrackExists, c.Kind())
	}
	size := audioRingSize
	if c.Kind() == KindVideo {
		size = videoRingSize
	}
	t := &Track{kind: c.Kind(), codec: c, now: r.cfg.Now, jb: newJitterBuffer(size, r.cfg.JitterHold, r.cfg.Buffers)}
	r.inputs[i] = t
	r.log.Info("recording track added", "kind", c.Kind().String(), "codec", string(c))
	return t, nil
}

// RemoveTrack stops recording the track of the given kind (unpublished).
// Packets already received are still written.
func (r *Recorder) RemoveTrack(kind Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind != KindAudio && kind != KindVideo {
		return
	}
	t := r.inputs[kind-1]
	if t == nil {
		return
	}
	r.inputs[kind-1] = nil
	t.mu.Lock()
	t.removed = true
	t.mu.Unlock()
	r.log.Info("recording track removed", "kind", kind.String())
}

// SetSenderReport gives the NTP<->RTP timestamp mapping from the latest
// RTCP sender report of the track of the given kind. With reports for both
// tracks, audio and video are aligned by the sender's clock instead of by
// arrival.
func (r *Recorder) SetSenderReport(kind Kind, ntp uint64, rtpTS uint32) {
	r.mu.Lock()
	var t *Track
	if kind == KindAudio || kind == KindVideo {
		t = r.inputs[kind-1]
	}
	r.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	t.srSet, t.srNTP, t.srTS = true, ntp, rtpTS
	t.mu.Unlock()
}

// Stats returns the running totals.
func (r *Recorder) Stats() Stats {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	return r.stats
}

// Close stops accepting packets, writes out what is buffered, finishes the
// open segment (OnSegment is called for it) and stops the goroutine. It
// returns the first write error of the last segment.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		for _, t := range r.inputs {
			if t != nil {
				t.mu.Lock()
				t.closed = true
				t.mu.Unlock()
			}
		}
		r.mu.Unlock()
		if r.running {
			close(r.stop)
		} else {
			r.finish()
		}
	})
	<-r.done
	return r.closeErr
}

func (r *Recorder) run() {
	tick := time.NewTicker(tickInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			r.finish()
			return
		case <-tick.C:
			r.step()
		}
	}
}

// step processes what arrived, on the recorder goroutine.
func (r *Recorder) step() {
	r.mu.Lock()
	inputs := r.inputs
	r.mu.Unlock()
	r.p.step(inputs, r.cfg.Now(), false)
	r.publishStats()
}

// finish drains everything and closes the open segment.
func (r *Recorder) finish() {
	r.closeErr = r.p.finish(r.cfg.Now())
	r.publishStats()
	close(r.done)
}

func (r *Recorder) publishStats() {
	s := r.p.stats()
	r.statsMu.Lock()
	r.stats = s
	r.statsMu.Unlock()
}

// Kind is the kind of the track.
func (t *Track) Kind() Kind { return t.kind }

// Codec is the codec of the track.
func (t *Track) Codec() Codec { return t.codec }

// WriteRTP copies the packet into the track's jitter buffer. It never
// blocks on disk and does not keep p.
func (t *Track) WriteRTP(p *rtp.Packet) error {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if t.removed {
		return ErrTrackRemoved
	}
	t.jb.insert(p, now)
	return nil
}

// Resync tells the track that packets were dropped before the next one on
// purpose (the SFU's queue overflowed): the gap is counted lost at once
// instead of being waited for.
func (t *Track) Resync() {
	t.mu.Lock()
	t.jb.markResync()
	t.mu.Unlock()
}
