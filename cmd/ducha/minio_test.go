package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/archive/miniotest"
	"github.com/ducha-dev/ducha/sfu"
)

// With DUCHA_S3_* set, recordings land in MinIO under object lock. MinIO
// is stopped in the middle of the call and started again later: every
// segment arrives, the chain verifies, and a locked segment cannot be
// deleted.
func TestRecordingToMinIOSurvivesOutage(t *testing.T) {
	m := miniotest.Start(t)
	t.Setenv(archive.EnvS3Endpoint, m.Endpoint)
	t.Setenv(archive.EnvS3AccessKey, m.AccessKey)
	t.Setenv(archive.EnvS3SecretKey, m.Secret)
	t.Setenv(archive.EnvS3Bucket, "ducha-e2e")
	t.Setenv(archive.EnvS3RetentionMode, "GOVERNANCE")
	t.Setenv(archive.EnvS3RetentionDays, "1")
	ivf, ogg := encodeClip(t, 8)
	s := startServerWith(t, nil, func(c *config) { c.Segment = 2 * time.Second })
	pub, _ := s.dial(t, "minio-room", "sup1", sfu.RoleSupervisor)
	sub, _ := s.dial(t, "minio-room", "county-1", sfu.RoleCounty)
	done := publishClip(t, pub, ivf, ogg)
	time.Sleep(2 * time.Second)
	m.Stop()
	time.Sleep(4 * time.Second) // segments close while the archive is down
	m.Restart()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("clip did not finish")
	}
	time.Sleep(time.Second)
	sub.Close()
	pub.Close()

	cfg, _, err := archive.S3ConfigFromEnv(func(k string) string {
		switch k {
		case archive.EnvS3Endpoint:
			return m.Endpoint
		case archive.EnvS3AccessKey:
			return m.AccessKey
		case archive.EnvS3SecretKey:
			return m.Secret
		case archive.EnvS3Bucket:
			return "ducha-e2e"
		case archive.EnvS3RetentionMode:
			return "GOVERNANCE"
		case archive.EnvS3RetentionDays:
			return "1"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	s3, err := archive.NewS3(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	recID := waitSealed(t, s3, 90*time.Second, "the manifest in MinIO after the outage")
	rep := verifyIntact(t, s.dataDir, s3, recID, "after the outage")
	if rep.Segments < 3 || rep.SegmentsOK != rep.Segments {
		t.Fatalf("verify after the outage: %+v", rep)
	}
	objs, err := s3.List(ctx, "sessions/"+recID+"/segments/")
	if err != nil || len(objs) == 0 {
		t.Fatalf("segments: %v %v", objs, err)
	}
	info, err := s3.Stat(ctx, objs[0].Key, objs[0].VersionID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Retention.Mode != archive.Governance || info.Retention.Until.Before(time.Now()) {
		t.Fatalf("segment retention %+v", info.Retention)
	}
	if err := s3.Delete(ctx, objs[0].Key, objs[0].VersionID); !errors.Is(err, archive.ErrRetained) {
		t.Fatalf("deleting a locked segment: %v, want ErrRetained", err)
	}
}
