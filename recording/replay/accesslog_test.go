package replay_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/replay"
	"github.com/ducha-dev/ducha/rooms/storetest"
)

// Accesses are appended to the archive under its retention, read back by
// time range in order, and cannot be removed or replaced unnoticed.
func TestAccessLogInTheArchive(t *testing.T) {
	bothArchives(t, func(t *testing.T, a namedArchive) {
		ctx := ctxT(t)
		// Near the real time (archives check retention dates against it),
		// a minute before a midnight UTC so the entries span two days.
		today := time.Now().UTC().Truncate(24 * time.Hour)
		clk := storetest.NewFakeClock(today.Add(24*time.Hour - time.Minute))
		svc := newService(t, a, newKey(t), replay.NewMemStore(), nil, func(c *replay.Config) {
			c.Clock = clk
			c.AccessRetention = archive.Policy{Mode: archive.Governance, Days: 30}
		})
		var logged []replay.Access
		for i, act := range []string{replay.ActionSearch, replay.ActionReplay, replay.ActionSegment, replay.ActionVerify, replay.ActionExport} {
			seg := uint64(i)
			acc, err := svc.LogAccess(ctx, replay.Access{Account: "acc-aud", Username: "zhao", Role: "auditor", Action: act,
				Recording: "S-A", Segment: &seg, Remote: "127.0.0.1:5555", UserAgent: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if acc.ID == "" || acc.Key == "" || acc.Outcome != replay.OutcomeGranted || !acc.Time.Equal(clk.Now()) {
				t.Fatalf("logged %+v", acc)
			}
			logged = append(logged, acc)
			clk.Advance(30 * time.Second) // crosses midnight UTC after the second entry
		}
		if _, err := svc.LogAccess(ctx, replay.Access{Action: replay.ActionSearch}); !errors.Is(err, replay.ErrAccessLog) {
			t.Errorf("an access without an account: %v", err)
		}

		got, more, err := svc.AccessLog(ctx, logged[0].Time.Add(-time.Hour), clk.Now(), 0)
		if err != nil || more || len(got) != 5 {
			t.Fatalf("AccessLog: %d entries, more=%v, %v", len(got), more, err)
		}
		for i, g := range got {
			if g.ID != logged[i].ID || g.Action != logged[i].Action || g.Suspect || g.Remote != "127.0.0.1:5555" ||
				g.Segment == nil || *g.Segment != uint64(i) {
				t.Errorf("entry %d: %+v, want %+v", i, g, logged[i])
			}
		}
		// [from, to) by time, across days.
		got, _, _ = svc.AccessLog(ctx, logged[1].Time, logged[3].Time, 0)
		if len(got) != 2 || got[0].ID != logged[1].ID || got[1].ID != logged[2].ID {
			t.Errorf("range of entries 1-2: %+v", got)
		}
		got, more, _ = svc.AccessLog(ctx, logged[0].Time, clk.Now(), 3)
		if len(got) != 3 || !more {
			t.Errorf("limit 3: %d, more=%v", len(got), more)
		}
		for _, r := range [][2]time.Time{{clk.Now(), clk.Now()}, {clk.Now(), clk.Now().Add(-time.Hour)}, {{}, clk.Now()},
			{clk.Now().Add(-100 * 24 * time.Hour), clk.Now()}} {
			if _, _, err := svc.AccessLog(ctx, r[0], r[1], 0); !errors.Is(err, replay.ErrInvalidRange) {
				t.Errorf("range %v: %v, want ErrInvalidRange", r, err)
			}
		}

		// Nobody can take an entry back: the archive refuses to delete it.
		victim := logged[1]
		switch {
		case a.dir != nil:
			if err := a.dir.Delete(ctx, victim.Key, ""); !errors.Is(err, archive.ErrRetained) {
				t.Fatalf("delete of a log entry: %v, want ErrRetained", err)
			}
		default:
			raw, err := a.minio.Client()
			if err != nil {
				t.Fatal(err)
			}
			info, err := a.arch.Stat(ctx, victim.Key, "")
			if err != nil {
				t.Fatal(err)
			}
			if info.Retention.Mode != archive.Governance {
				t.Fatalf("log entry stored with retention %+v", info.Retention)
			}
			if err := raw.RemoveObject(ctx, a.bucket, victim.Key, minio.RemoveObjectOptions{VersionID: info.VersionID}); err == nil {
				t.Fatal("S3 deleted a locked access-log entry")
			}
		}
		// Writing over it adds a version; the forged one is marked, and the
		// original is still there.
		forged, _ := json.Marshal(replay.Access{ID: "FORGED", Time: victim.Time, Account: "acc-aud", Action: replay.ActionSearch})
		if _, err := a.arch.Put(ctx, archive.PutRequest{Key: victim.Key, Body: bytes.NewReader(forged), Size: int64(len(forged)),
			SHA256: sha(forged)}); err != nil {
			t.Fatal(err)
		}
		got, _, _ = svc.AccessLog(ctx, victim.Time, victim.Time.Add(time.Second), 0)
		if len(got) != 1 || !got[0].Suspect {
			t.Errorf("overwritten entry: %+v, want it marked suspect", got)
		}
		// The version written by LogAccess is still there, unchanged.
		var versions []string
		if a.dir != nil {
			versions = []string{"00000000000000000001"}
		} else {
			raw, _ := a.minio.Client()
			for oi := range raw.ListObjects(ctx, a.bucket, minio.ListObjectsOptions{Prefix: victim.Key, WithVersions: true}) {
				if oi.Err != nil {
					t.Fatal(oi.Err)
				}
				versions = append(versions, oi.VersionID)
			}
		}
		found := false
		for _, v := range versions {
			var e replay.Access
			if json.Unmarshal(readObject(t, a.arch, victim.Key, v), &e) == nil && e.ID == victim.ID {
				found = true
			}
		}
		if !found {
			t.Errorf("the original entry %s is gone (versions %v)", victim.ID, versions)
		}
	})
}
