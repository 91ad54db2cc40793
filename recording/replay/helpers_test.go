package replay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/archive/miniotest"
	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/recording/replay"
	"github.com/ducha-dev/ducha/recording/replay/replaytest"
	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/memstore"
	"github.com/ducha-dev/ducha/rooms/storetest"
)

// t0 is the server-clock start of the test recordings (09:00 in Beijing).
func t0() time.Time { return time.Date(2026, 5, 1, 1, 0, 0, 0, time.UTC) }

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// namedArchive is one implementation the tests run against.
type namedArchive struct {
	name string
	arch archive.Archive
	// dir is set for the directory archive (tests alter its files).
	dir *archive.Dir
	// minio is set for the S3 archive.
	minio  *miniotest.Server
	bucket string
}

func dirArchive(t *testing.T) namedArchive {
	t.Helper()
	d, err := archive.NewDir(filepath.Join(t.TempDir(), "archive"))
	if err != nil {
		t.Fatal(err)
	}
	return namedArchive{name: "dir", arch: d, dir: d}
}

// s3Archive returns an archive on a fresh object-locked bucket of srv.
func s3Archive(t *testing.T, srv *miniotest.Server, bucket string) namedArchive {
	t.Helper()
	s, err := archive.NewS3(archive.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.Secret,
		Bucket: bucket}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatalf("EnsureBucket: %v\n%s", err, srv.Logs())
	}
	return namedArchive{name: "minio", arch: s, minio: srv, bucket: bucket}
}

// bothArchives runs f on the directory archive and on MinIO.
func bothArchives(t *testing.T, f func(t *testing.T, a namedArchive)) {
	t.Run("dir", func(t *testing.T) { f(t, dirArchive(t)) })
	t.Run("minio", func(t *testing.T) {
		srv := miniotest.Start(t)
		f(t, s3Archive(t, srv, "evidence"))
	})
}

// directory is a session store with the sessions and accounts the sample
// recordings refer to.
type directory struct {
	store rooms.Store
}

func newDirectory(t *testing.T) directory {
	t.Helper()
	st := memstore.New(storetest.NewFakeClock(t0()))
	ctx := context.Background()
	for _, a := range []rooms.Account{
		{ID: "acc-wang", Username: "wang", DisplayName: "王督查", Role: rooms.RoleSupervisor, PasswordHash: "x"},
		{ID: "acc-li", Username: "li", DisplayName: "李督查", Role: rooms.RoleSupervisor, PasswordHash: "x"},
	} {
		if _, err := st.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []rooms.Session{
		sessionOf("S-A", "矛盾纠纷化解督查", "XF-2026-0042", "acc-wang", t0(), rooms.Unit{Code: "140105", Name: "小店区信访局"}, rooms.Unit{Code: "140106", Name: "迎泽区信访局"}),
		sessionOf("S-B", "拖欠工资信访件督查", "XF-2026-0099", "acc-li", t0().Add(26*time.Hour), rooms.Unit{Code: "140107", Name: "杏花岭区信访局"}),
	} {
		if _, err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	return directory{store: st}
}

func sessionOf(id, title, caseNo, sup string, start time.Time, units ...rooms.Unit) rooms.Session {
	s := rooms.NewSession(title, caseNo, sup, start, start.Add(time.Hour), units, start.Add(-time.Hour))
	s.ID = id
	return s
}

// sample is a recording of a session: a supervisor and two counties, the
// second leaving early; segments of n seconds each, made by mk.
type sample struct {
	id, title, caseNo, supervisor string
	start                         time.Time
	units                         []string // county unit codes
	segSeconds                    int
	segsPerPerson                 int
	// observer adds a participant without media, in the call from +0.5 s
	// to +3 s.
	observer bool
}

// event is the JSON shape of rooms.Event in a manifest.
func event(seq int64, at time.Time, typ rooms.EventType, actor, subject string, data map[string]string) rooms.Event {
	return rooms.Event{Seq: seq, ID: fmt.Sprintf("E%d", seq), SessionID: "x", Time: at, Actor: actor, Type: typ, Subject: subject, Data: data}
}

// recording builds the Recording of s; file makes the bytes of one segment.
func (s sample) recording(file func(participant string, i int) string) replaytest.Recording {
	rec := replaytest.Recording{
		Facts: evidence.SessionFacts{ID: s.id, Title: s.title, CaseNumber: s.caseNo, Supervisor: s.supervisor,
			Start: s.start, End: s.start.Add(time.Duration(s.segSeconds*s.segsPerPerson) * time.Second)},
	}
	people := []evidence.Participant{{ID: "P-sup", Name: "督查员", Role: "supervisor", Joined: s.start}}
	for i, u := range s.units {
		people = append(people, evidence.Participant{ID: "P-" + u, Name: "单位" + u, Role: "county", Organization: u,
			Joined: s.start.Add(time.Duration(i) * time.Millisecond)})
	}
	rec.Participants = people
	seq := int64(0)
	next := func() int64 { seq++; return seq }
	var events []rooms.Event
	events = append(events, event(next(), s.start.Add(-time.Minute), rooms.EventLobbyOpen, s.supervisor, "", nil))
	for _, p := range people {
		events = append(events, event(next(), p.Joined, rooms.EventJoin, p.ID, p.ID, map[string]string{"name": p.Name}))
	}
	for i := 0; i < s.segsPerPerson; i++ {
		for pi, p := range people {
			// The last county leaves after its first segment.
			if pi == len(people)-1 && pi > 1 && i > 0 {
				continue
			}
			st := s.start.Add(time.Duration(i*s.segSeconds) * time.Second)
			seg := replaytest.Segment{Participant: p.ID, Source: "camera",
				Start: st, End: st.Add(time.Duration(s.segSeconds) * time.Second), Path: file(p.ID, i)}
			if i > 0 { // the first segments stand for ones recovered after a crash: no counts
				seg.AudioFrames, seg.AudioFramesFilled = new(90), new(10*i)
			}
			rec.Segments = append(rec.Segments, seg)
		}
	}
	if len(people) > 2 {
		last := people[len(people)-1]
		events = append(events, event(next(), s.start.Add(time.Duration(s.segSeconds)*time.Second), rooms.EventLeave, last.ID, last.ID, nil))
	}
	if len(people) > 1 {
		events = append(events, event(next(), s.start.Add(1500*time.Millisecond), rooms.EventChat, people[1].ID, "", map[string]string{"text": "已按期办结"}))
		events = append(events, event(next(), s.start.Add(2*time.Second), rooms.EventMute, s.supervisor, people[1].ID, map[string]string{"kind": "audio"}))
	}
	if s.observer {
		obs := evidence.Participant{ID: "P-obs", Name: "观察员甲", Role: "observer", Joined: s.start.Add(500 * time.Millisecond),
			Left: s.start.Add(3 * time.Second)}
		rec.Participants = append(rec.Participants, obs)
		events = append(events, event(next(), obs.Joined, rooms.EventJoin, obs.ID, obs.ID, nil),
			event(next(), obs.Left, rooms.EventLeave, obs.ID, obs.ID, nil))
	}
	rec.Events = events
	return rec
}

// randomFiles makes small non-media segment files.
func randomFiles(t *testing.T) func(string, int) string {
	dir := t.TempDir()
	n := 0
	return func(p string, i int) string {
		n++
		return replaytest.Bytes(t, dir, fmt.Sprintf("%s-%d.webm", p, i), 2000+n*37, byte(n))
	}
}

// webmFiles makes real VP8/Opus segments of secs seconds.
func webmFiles(t *testing.T, secs int) func(string, int) string {
	dir := t.TempDir()
	return func(p string, i int) string {
		return replaytest.WebM(t, dir, fmt.Sprintf("%s-%d", p, i), float64(secs))
	}
}

// samples are three recordings: two scheduled sessions of different
// supervisors and an ad-hoc room.
func samples() []sample {
	return []sample{
		{id: "S-A", title: "矛盾纠纷化解督查", caseNo: "XF-2026-0042", supervisor: "acc-wang", start: t0(),
			units: []string{"140105", "140106"}, segSeconds: 2, segsPerPerson: 2, observer: true},
		{id: "S-B", title: "拖欠工资信访件督查", caseNo: "XF-2026-0099", supervisor: "acc-li", start: t0().Add(26 * time.Hour),
			units: []string{"140107"}, segSeconds: 2, segsPerPerson: 1},
		{id: "room7-20260503T020000Z", title: "room7", start: t0().Add(49 * time.Hour),
			units: nil, segSeconds: 2, segsPerPerson: 1},
	}
}

func newService(t *testing.T, a namedArchive, key ed25519.PrivateKey, idx replay.Store, dir replay.Directory, mods ...func(*replay.Config)) *replay.Service {
	t.Helper()
	cfg := replay.Config{Archive: a.arch, Index: idx, PublicKey: pubOf(key), Directory: dir}
	for _, m := range mods {
		m(&cfg)
	}
	s, err := replay.New(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// alterDirSegment flips a byte of the stored file of key in a directory
// archive, the way someone with access to the disk would.
func alterDirSegment(t *testing.T, d *archive.Dir, key string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(d.Root(), filepath.FromSlash(key)+"@v", "*"))
	for _, m := range matches {
		base := filepath.Base(m)
		if strings.HasSuffix(base, ".meta") || strings.HasPrefix(base, ".") {
			continue
		}
		if err := os.Chmod(m, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(m, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no stored file for %s", key)
}

func readObject(t *testing.T, a archive.Archive, key, version string) []byte {
	t.Helper()
	rc, _, err := a.Get(context.Background(), key, version)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// damageSpoolFile changes a segment waiting in the spool after it was
// hashed and chained.
func damageSpoolFile(t *testing.T, spoolDir, name string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(spoolDir, "sessions", "*", name))
	if len(matches) != 1 {
		t.Fatalf("spool file %s: found %v", name, matches)
	}
	if err := os.WriteFile(matches[0], []byte("damaged"), 0o640); err != nil {
		t.Fatal(err)
	}
}
