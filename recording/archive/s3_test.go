package archive_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/archive/miniotest"
)

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o644) }

func s3Config(srv *miniotest.Server, bucket string) archive.S3Config {
	return archive.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.Secret, Bucket: bucket}
}

// newS3 returns an archive on a fresh bucket created with object lock.
func newS3(t *testing.T, srv *miniotest.Server, bucket string) *archive.S3 {
	t.Helper()
	s, err := archive.NewS3(s3Config(srv, bucket), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatalf("EnsureBucket: %v\n%s", err, srv.Logs())
	}
	return s
}

func TestS3EnsureBucket(t *testing.T) {
	srv := miniotest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}

	cfg := s3Config(srv, "locked")
	cfg.Retention = archive.Policy{Mode: archive.Governance, Days: 7}
	s, err := archive.NewS3(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatalf("second EnsureBucket on the same bucket: %v", err)
	}
	enabled, mode, validity, _, err := raw.GetObjectLockConfig(ctx, "locked")
	if err != nil || enabled != "Enabled" {
		t.Fatalf("bucket object lock = %q, %v", enabled, err)
	}
	if mode == nil || *mode != minio.Governance || validity == nil || *validity != 7 {
		t.Fatalf("default retention rule = %v/%v, want GOVERNANCE 7 days", mode, validity)
	}

	if err := raw.MakeBucket(ctx, "plain", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	plain, err := archive.NewS3(s3Config(srv, "plain"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = plain.EnsureBucket(ctx)
	if !errors.Is(err, archive.ErrNoObjectLock) {
		t.Fatalf("EnsureBucket on a bucket without lock: err = %v, want ErrNoObjectLock", err)
	}
	if !strings.Contains(err.Error(), "plain") {
		t.Fatalf("error does not name the bucket: %v", err)
	}
}

// The lock is enforced by the server, not by our client: a plain S3 client
// cannot delete a locked version either.
func TestS3LockedVersionSurvivesRawAPI(t *testing.T) {
	srv := miniotest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := newS3(t, srv, "worm")
	raw, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	key := "sessions/s1/segments/p1/camera/000001-20260102T030405.000Z.webm"
	v := put(t, s, key, []byte("original evidence"), archive.Retention{Mode: archive.Compliance, Until: time.Now().Add(time.Hour)})

	err = raw.RemoveObject(ctx, "worm", key, minio.RemoveObjectOptions{VersionID: v.VersionID})
	if err == nil {
		t.Fatal("RemoveObject of a COMPLIANCE-locked version succeeded")
	}
	err = raw.RemoveObject(ctx, "worm", key, minio.RemoveObjectOptions{VersionID: v.VersionID, GovernanceBypass: true})
	if err == nil {
		t.Fatal("RemoveObject with governance bypass deleted a COMPLIANCE-locked version")
	}
	// Overwrite through the raw API: a new version appears, the locked one is untouched.
	tamper := []byte("forged")
	if _, err := raw.PutObject(ctx, "worm", key, bytes.NewReader(tamper), int64(len(tamper)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("raw overwrite: %v", err)
	}
	obj, err := raw.GetObject(ctx, "worm", key, minio.GetObjectOptions{VersionID: v.VersionID})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil || string(got) != "original evidence" {
		t.Fatalf("locked version reads %q, %v", got, err)
	}
	// Shortening the retention of a COMPLIANCE version is refused as well.
	short := time.Now().Add(time.Minute)
	mode := minio.Compliance
	err = raw.PutObjectRetention(ctx, "worm", key, minio.PutObjectRetentionOptions{VersionID: v.VersionID, Mode: &mode, RetainUntilDate: &short})
	if err == nil {
		t.Fatal("shortening COMPLIANCE retention succeeded")
	}
	// And through the archive the refusal maps to ErrRetained.
	if err := s.Delete(ctx, key, v.VersionID); !errors.Is(err, archive.ErrRetained) {
		t.Fatalf("archive delete: err = %v, want ErrRetained", err)
	}
}

func TestS3ConfigFromEnv(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if _, ok, err := archive.S3ConfigFromEnv(get); ok || err != nil {
		t.Fatalf("no endpoint: ok=%v err=%v", ok, err)
	}
	env[archive.EnvS3Endpoint] = "127.0.0.1:9000"
	if _, _, err := archive.S3ConfigFromEnv(get); !errors.Is(err, archive.ErrConfig) {
		t.Fatalf("missing keys: err = %v, want ErrConfig", err)
	}
	env[archive.EnvS3AccessKey], env[archive.EnvS3SecretKey] = "a", "b"
	env[archive.EnvS3RetentionMode], env[archive.EnvS3RetentionDays] = "compliance", "3650"
	env[archive.EnvS3TLS] = "true"
	cfg, ok, err := archive.S3ConfigFromEnv(get)
	if err != nil || !ok {
		t.Fatal(err)
	}
	if cfg.Bucket != "ducha-evidence" || !cfg.UseTLS || cfg.Retention != (archive.Policy{Mode: archive.Compliance, Days: 3650}) {
		t.Fatalf("cfg = %+v", cfg)
	}
	// A URL is taken apart: the scheme says TLS unless DUCHA_S3_TLS says otherwise.
	delete(env, archive.EnvS3TLS)
	for url, want := range map[string]struct {
		host string
		tls  bool
	}{"http://minio:9000": {"minio:9000", false}, "https://s3.example.cn/": {"s3.example.cn", true}} {
		env[archive.EnvS3Endpoint] = url
		cfg, _, err := archive.S3ConfigFromEnv(get)
		if err != nil || cfg.Endpoint != want.host || cfg.UseTLS != want.tls {
			t.Fatalf("%s: endpoint %q tls %v err %v", url, cfg.Endpoint, cfg.UseTLS, err)
		}
	}
	env[archive.EnvS3RetentionDays] = "0"
	if _, _, err := archive.S3ConfigFromEnv(get); !errors.Is(err, archive.ErrInvalidRetention) {
		t.Fatalf("compliance with 0 days: err = %v", err)
	}
	env[archive.EnvS3RetentionMode] = "forever"
	if _, _, err := archive.S3ConfigFromEnv(get); !errors.Is(err, archive.ErrInvalidRetention) {
		t.Fatalf("bad mode: err = %v", err)
	}
}
