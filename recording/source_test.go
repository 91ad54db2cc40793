package recording

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/recording/mux"
)

// scheduled is a room that is a scheduled session being recorded.
type scheduled struct{}

func (scheduled) ShouldRecord(string) bool { return true }
func (scheduled) Scheduled(string) bool    { return true }
func (scheduled) Manifest(_ context.Context, _, id string, _ []evidence.Participant) (evidence.ManifestInput, error) {
	return evidence.ManifestInput{Session: evidence.SessionFacts{ID: id}}, nil
}

func newTestRecorder(t *testing.T) (*Recorder, *evidence.Spool) {
	t.Helper()
	sp, err := evidence.OpenSpool(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{WorkDir: t.TempDir(), Spool: sp, Sessions: scheduled{}})
	if err != nil {
		t.Fatal(err)
	}
	return r, sp
}

func counts(r evidence.Record) string {
	if r.AudioFrames == nil || r.AudioFramesFilled == nil {
		return fmt.Sprintf("%v/%v", r.AudioFrames, r.AudioFramesFilled)
	}
	return fmt.Sprintf("%d/%d", *r.AudioFrames, *r.AudioFramesFilled)
}

// A source hands the muxer's audio counts to the spool with the segment:
// Opus packets around a DTX pause of 19 frames give 20 frames received and
// 19 filled, and the chain record says so.
func TestSourcePassesAudioCounts(t *testing.T) {
	r, sp := newTestRecorder(t)
	rr := &roomRec{room: "room", recID: "rec-1"}
	s, err := r.newSource(rr, sourceKey{"county-7", "camera"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := s.m.AddTrack("audio/opus")
	if err != nil {
		t.Fatal(err)
	}
	// One 20 ms CELT frame per packet (TOC config 31, code 0); frames 10-28
	// are not sent (DTX), without a sequence number of their own.
	seq := uint16(100)
	for i := range 48 {
		if i >= 10 && i < 29 {
			continue
		}
		seq++
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq,
			Timestamp: 5000 + uint32(i)*960, SSRC: 7}, Payload: []byte{0xfc, 0xff, 0xfe, byte(i)}}
		if err := tr.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	// The muxer takes packets in on its own steps; one that never ran would
	// close with nothing to write.
	deadline := time.Now().Add(60 * time.Second)
	for s.m.Stats().Packets < 29 {
		if time.Now().After(deadline) {
			t.Fatalf("the muxer took %d packets of 29", s.m.Stats().Packets)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.close()

	recs := sp.Records("rec-1")
	if len(recs) != 1 || recs[0].Kind != evidence.KindSegment {
		t.Fatalf("spool holds %+v, want one segment", recs)
	}
	if got := counts(recs[0]); got != "29/19" {
		t.Fatalf("segment counts (received/filled) = %s, want 29/19", got)
	}
}

// A segment whose write failed holds less than the muxer counted: its counts
// are left unknown rather than overstated.
func TestSourceLeavesCountsOfFailedSegmentUnknown(t *testing.T) {
	r, sp := newTestRecorder(t)
	rr := &roomRec{room: "room", recID: "rec-1"}
	s, err := r.newSource(rr, sourceKey{"county-7", "camera"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	write := func(name string) string {
		p := filepath.Join(r.cfg.WorkDir, name)
		if err := os.WriteFile(p, []byte("cluster bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	start := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s.onSegment(mux.Segment{Path: write("a.webm"), Start: start, End: start.Add(time.Second), AudioCodec: mux.CodecOpus,
		AudioFrames: 50, AudioFramesFilled: 3})
	s.onSegment(mux.Segment{Path: write("b.webm.part"), Start: start.Add(time.Second), End: start.Add(2 * time.Second),
		AudioCodec: mux.CodecOpus, AudioFrames: 50, AudioFramesFilled: 3, Err: errors.New("no space left on device")})
	var got []string
	for _, r := range sp.Records("rec-1") {
		got = append(got, counts(r))
	}
	if fmt.Sprint(got) != "[50/3 <nil>/<nil>]" {
		t.Fatalf("segment counts %v, want 50/3 then unknown", got)
	}
}

// A segment recovered after a crash has no counts in the spool: unknown, not
// zero.
func TestRecoveredSegmentHasNoAudioCounts(t *testing.T) {
	r, sp := newTestRecorder(t)
	started := time.Now().Add(-time.Minute).UTC()
	st := sourceState{Room: "room", Recording: "rec-1", Participant: "county-7", Source: "camera",
		Name: "rec-1_county-7_camera", Started: started}
	if err := st.save(r.cfg.WorkDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.cfg.WorkDir, st.Name+"-1.webm.part"), []byte("clusters up to the last sync"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := sp.Records("rec-1")
	if len(recs) != 2 || recs[0].Kind != evidence.KindSegment || recs[1].Kind != evidence.KindGap {
		t.Fatalf("records after recovery: %+v", recs)
	}
	if got := counts(recs[0]); got != "<nil>/<nil>" {
		t.Fatalf("recovered segment counts %s, want unknown", got)
	}
}
