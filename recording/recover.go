package recording

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/evidence"
)

// sourceState is kept beside a running recording so that after a crash the
// unfinished segment can be placed on the timeline: it began where the
// previous one ended, and it ends at its file's last sync.
type sourceState struct {
	Room        string    `json:"room"`
	Recording   string    `json:"recording"`
	Participant string    `json:"participant"`
	Source      string    `json:"source"`
	Name        string    `json:"name"`
	Started     time.Time `json:"started"`
	LastEnd     time.Time `json:"lastEnd,omitzero"`
}

func statePath(dir, name string) string { return filepath.Join(dir, name+".state.json") }

// save writes the state atomically (temp file, fsync, rename).
func (st sourceState) save(dir string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := statePath(dir, st.Name) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(dir, st.Name))
}

// Recover hands what a crashed process left in the work directory to the
// spool: each unfinished segment (readable up to its last one-second sync)
// and a gap record from there to now, so the manifest says what was lost.
// Recordings of ad-hoc rooms, and of sessions that ended meanwhile, are
// sealed. It runs once at startup, before any new recording.
func (r *Recorder) Recover(ctx context.Context) error {
	states, err := filepath.Glob(filepath.Join(r.cfg.WorkDir, "*.state.json"))
	if err != nil {
		return err
	}
	now := r.cfg.Now()
	toSeal := map[string]string{} // recording id -> room
	var errs []error
	for _, sp := range states {
		b, err := os.ReadFile(sp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var st sourceState
		if err := json.Unmarshal(b, &st); err != nil || st.Name == "" || st.Recording == "" {
			errs = append(errs, fmt.Errorf("recording: unreadable state %s: %v", sp, err))
			continue
		}
		if err := r.recoverSource(ctx, st, now); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(sp); err != nil {
			errs = append(errs, err)
		}
		if !r.cfg.Sessions.Scheduled(st.Room) || !r.cfg.Sessions.ShouldRecord(st.Room) {
			toSeal[st.Recording] = st.Room
		}
	}
	for rec, room := range toSeal {
		in, err := r.cfg.Sessions.Manifest(ctx, room, rec, nil)
		if err != nil {
			r.log.Warn("manifest facts unavailable after a crash", "room", room, "err", err)
		}
		in.Session.ID = rec
		if in.Session.Title == "" {
			in.Session.Title = room
		}
		if err := r.cfg.Spool.CloseSession(ctx, in); err != nil && !errors.Is(err, evidence.ErrSessionClosed) {
			errs = append(errs, fmt.Errorf("recording: seal %s after a crash: %w", rec, err))
			continue
		}
		r.log.Warn("recording sealed after a crash", "room", room, "recording", rec)
	}
	return errors.Join(errs...)
}

func (r *Recorder) recoverSource(ctx context.Context, st sourceState, now time.Time) error {
	parts, err := filepath.Glob(filepath.Join(r.cfg.WorkDir, st.Name+"-*.webm.part"))
	if err != nil {
		return err
	}
	start := st.LastEnd
	if start.IsZero() {
		start = st.Started
	}
	lostFrom := start
	for _, p := range parts {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		end := fi.ModTime()
		if end.Before(start) || fi.Size() == 0 {
			_ = os.Remove(p) // nothing reached the disk
			continue
		}
		final := strings.TrimSuffix(p, ".part")
		if err := os.Rename(p, final); err != nil {
			return err
		}
		// No codecs and no audio counts: they died with the muxer, and the
		// file cannot tell a concealment frame from a DTX frame the sender
		// made. The manifest leaves them out (unknown), never 0.
		if _, err := r.cfg.Spool.AddSegment(ctx, evidence.Segment{
			SessionID: st.Recording, ParticipantID: st.Participant, Source: st.Source,
			Path: final, Start: start, End: end,
		}); err != nil {
			return fmt.Errorf("recording: recovered segment %s: %w", final, err)
		}
		lostFrom = end
		r.log.Warn("recovered an unfinished segment", "recording", st.Recording, "path", final, "until", end)
	}
	if _, err := r.cfg.Spool.AddGap(ctx, evidence.Gap{
		SessionID: st.Recording, ParticipantID: st.Participant, Source: st.Source,
		Start: lostFrom, End: now, Reason: "node stopped without closing the recording (crash or power loss)",
	}); err != nil {
		return fmt.Errorf("recording: gap for %s: %w", st.Recording, err)
	}
	return nil
}
