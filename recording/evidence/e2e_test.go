package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/archive/miniotest"
	"github.com/ducha-dev/ducha/recording/evidence"
)

// harness is one archive plus ways to damage it behind ducha's back.
type harness struct {
	arch    archive.Archive
	tamper  func(t *testing.T, key, version string)
	remove  func(t *testing.T, key, version string)
	cliArgs []string // how `ducha verify` reaches this archive
	dataDir string   // holds keys/node-ed25519.pem
}

func dirHarness(t *testing.T) harness {
	dataDir := t.TempDir()
	d, err := archive.NewDir(archive.DefaultDirRoot(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	file := func(key, version string) string {
		return filepath.Join(d.Root(), filepath.FromSlash(key)+"@v", version+"-"+filepath.Base(key))
	}
	return harness{
		arch: d, dataDir: dataDir, cliArgs: []string{"--data-dir", dataDir},
		tamper: func(t *testing.T, key, version string) {
			p := file(key, version)
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("TAMPERED"), 100); err != nil {
				t.Fatal(err)
			}
		},
		remove: func(t *testing.T, key, version string) {
			if err := os.Remove(file(key, version)); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// s3PlainHarness is a bucket WITHOUT object lock or versioning: the only
// kind where a stored segment can be replaced or removed, so verification
// must catch it.
func s3PlainHarness(t *testing.T, srv *miniotest.Server) harness {
	raw, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := raw.MakeBucket(ctx, "plain", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := archive.NewS3(archive.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.Secret, Bucket: "plain"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	return harness{
		arch: s, dataDir: dataDir,
		cliArgs: []string{"--s3-endpoint", srv.Endpoint, "--s3-access-key", srv.AccessKey, "--s3-secret-key", srv.Secret,
			"--s3-bucket", "plain", "--pubkey", evidence.NodeKeyPath(dataDir)},
		tamper: func(t *testing.T, key, _ string) {
			obj, err := raw.GetObject(ctx, "plain", key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(obj)
			obj.Close()
			if err != nil {
				t.Fatal(err)
			}
			copy(b[100:], "TAMPERED")
			if _, err := raw.PutObject(ctx, "plain", key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		remove: func(t *testing.T, key, _ string) {
			if err := raw.RemoveObject(ctx, "plain", key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestEndToEndDir(t *testing.T) { runEndToEnd(t, dirHarness(t)) }

func TestEndToEndS3(t *testing.T) {
	srv := miniotest.Start(t)
	runEndToEnd(t, s3PlainHarness(t, srv))
}

func runEndToEnd(t *testing.T, h harness) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	key, err := evidence.LoadOrCreateNodeKey(h.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := evidence.OpenSpool(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := evidence.NewUploader(sp, h.arch, evidence.UploaderConfig{Signer: key, NodeID: "node-a",
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runUploader(t, u)
	sessions := []string{"intact", "tamper", "remove", "badsig"}
	for _, s := range sessions {
		spoolSegments(t, sp, s, 0, 6)
		if _, err := sp.AddGap(ctx, evidence.Gap{SessionID: s, ParticipantID: "county-7", Source: "camera",
			Start: t0().Add(60 * time.Second), End: t0().Add(61 * time.Second), Reason: "recorder restarted"}); err != nil {
			t.Fatal(err)
		}
		if err := sp.CloseSession(ctx, closeInput(s)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all sessions archived", drained(sp))
	pub := pubOf(key)

	reports := map[string]evidence.Report{}
	for _, s := range sessions {
		rep := evidence.Verify(ctx, h.arch, s, pub)
		if rep.Result != evidence.Intact || rep.SegmentsOK != 6 || len(rep.Gaps) != 1 || rep.Records != 7 || !rep.SignatureValid {
			t.Fatalf("fresh session %s: %s", s, rep.Text(evidence.LangEN))
		}
		if len(rep.Unlisted) != 0 {
			t.Fatalf("fresh session %s has unlisted objects %v", s, rep.Unlisted)
		}
		reports[s] = rep
	}
	if txt := reports["intact"].Text(evidence.LangZH); !strings.Contains(txt, "完好") || !strings.Contains(txt, "recorder restarted") {
		t.Fatalf("Chinese report:\n%s", txt)
	}
	man := readManifest(t, h.arch, "tamper")
	seg := func(i int) evidence.SegmentEntry { return man.Segments[i] }

	t.Run("AlteredSegmentNamed", func(t *testing.T) {
		h.tamper(t, seg(3).Key, seg(3).VersionID)
		rep := evidence.Verify(ctx, h.arch, "tamper", pub)
		if rep.Result != evidence.Altered || rep.FirstBad == nil || rep.FirstBad.Key != seg(3).Key || rep.FirstBad.Code != evidence.ProblemContent {
			t.Fatalf("tampered segment: %s", rep.Text(evidence.LangEN))
		}
		if len(rep.Problems) != 1 || rep.SegmentsOK != 5 {
			t.Fatalf("one tampered segment should be the only problem: %+v", rep.Problems)
		}
	})

	t.Run("RemovedSegmentNamed", func(t *testing.T) {
		rm := readManifest(t, h.arch, "remove").Segments[2]
		h.remove(t, rm.Key, rm.VersionID)
		rep := evidence.Verify(ctx, h.arch, "remove", pub)
		if rep.Result != evidence.Altered || rep.FirstBad == nil || rep.FirstBad.Key != rm.Key || rep.FirstBad.Code != evidence.ProblemMissing {
			t.Fatalf("removed segment: %s", rep.Text(evidence.LangEN))
		}
	})

	t.Run("BadSignature", func(t *testing.T) {
		mkey, _ := archive.ManifestKey("badsig")
		rc, _, err := h.arch.Get(ctx, mkey, "")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		forged := bytes.Replace(b, []byte("XF-2026-0042"), []byte("XF-2026-9999"), 1)
		putBytes(t, h.arch, mkey, forged)
		rep := evidence.Verify(ctx, h.arch, "badsig", pub)
		if rep.Result != evidence.Altered || rep.FirstBad.Code != evidence.ProblemBadSignature || rep.SignatureValid {
			t.Fatalf("forged manifest: %s", rep.Text(evidence.LangEN))
		}
	})

	t.Run("WrongKey", func(t *testing.T) {
		other := newKey(t)
		rep := evidence.Verify(ctx, h.arch, "intact", pubOf(other))
		if rep.Result != evidence.Altered || rep.FirstBad.Code != evidence.ProblemBadSignature || !strings.Contains(rep.FirstBad.Detail, evidence.Fingerprint(pub)) {
			t.Fatalf("wrong key: %s", rep.Text(evidence.LangEN))
		}
	})

	t.Run("UnknownSession", func(t *testing.T) {
		rep := evidence.Verify(ctx, h.arch, "no-such-session", pub)
		if rep.Result != evidence.CouldNotCheck || !strings.Contains(rep.Reason, "no manifest") {
			t.Fatalf("unknown session: %+v", rep)
		}
		rep = evidence.Verify(ctx, h.arch, "", pub)
		if rep.Result != evidence.CouldNotCheck {
			t.Fatalf("empty session id: %+v", rep)
		}
	})

	t.Run("CLI", func(t *testing.T) {
		cases := []struct {
			session string
			code    int
			want    string
		}{
			{"intact", evidence.ExitIntact, "完好"},
			{"tamper", evidence.ExitAltered, seg(3).Key},
			{"remove", evidence.ExitAltered, "对象缺失"},
			{"badsig", evidence.ExitAltered, "签名无效"},
			{"no-such-session", evidence.ExitCouldNotCheck, "无法检查"},
		}
		for _, c := range cases {
			var out, errb bytes.Buffer
			code := evidence.RunVerifyCLI(append(append([]string{}, h.cliArgs...), c.session), &out, &errb)
			if code != c.code || !strings.Contains(out.String(), c.want) {
				t.Errorf("verify %s: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", c.session, code, c.code, out.String(), errb.String())
			}
		}
		var out bytes.Buffer
		code := evidence.RunVerifyCLI(append(append([]string{}, h.cliArgs...), "tamper", "--json"), &out, io.Discard)
		if !json.Valid(out.Bytes()) || code != evidence.ExitAltered {
			t.Fatalf("json output (exit %d):\n%s", code, out.String())
		}
		if !strings.Contains(out.String(), `"result": "altered"`) || !strings.Contains(out.String(), seg(3).Key) {
			t.Fatalf("json report:\n%s", out.String())
		}
	})
}

func readManifest(t *testing.T, a archive.Archive, session string) evidence.Manifest {
	t.Helper()
	mkey, _ := archive.ManifestKey(session)
	rc, _, err := a.Get(context.Background(), mkey, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var m evidence.Manifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func putBytes(t *testing.T, a archive.Archive, key string, b []byte) {
	t.Helper()
	if _, err := a.Put(context.Background(), archive.PutRequest{Key: key, Body: bytes.NewReader(b), Size: int64(len(b)),
		SHA256: sha256Hex(b)}); err != nil {
		t.Fatal(err)
	}
}

// The archive goes away in the middle of a session and comes back: every
// segment arrives under COMPLIANCE lock and the chain verifies.
func TestMinIOOutageMidSession(t *testing.T) {
	srv := miniotest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := archive.NewS3(archive.S3Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.Secret,
		Bucket: "evidence", Retention: archive.Policy{Mode: archive.Compliance, Days: 1}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	sp, _ := evidence.OpenSpool(t.TempDir(), nil)
	u, _ := evidence.NewUploader(sp, s, evidence.UploaderConfig{Signer: key, NodeID: "node-a",
		Retention:  archive.Policy{Mode: archive.Compliance, Days: 1},
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond})
	runUploader(t, u)

	spoolSegments(t, sp, "outage", 0, 3)
	waitFor(t, "first segments archived", drained(sp))
	srv.Stop()
	spoolSegments(t, sp, "outage", 3, 3)
	if err := sp.CloseSession(ctx, closeInput("outage")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "uploader to notice the outage", func() bool { return u.Status().Failures >= 2 })
	st := u.Status()
	if st.State != evidence.UploadRetrying || st.Backlog.Segments != 3 || st.Backlog.Manifests != 1 || st.LastError == "" {
		t.Fatalf("status during outage = %+v", st)
	}
	srv.Restart()
	waitFor(t, "spool drained after restart", drained(sp))
	waitFor(t, "status ok", func() bool { return u.Status().State == evidence.UploadOK })

	rep := evidence.Verify(ctx, s, "outage", pubOf(key))
	if rep.Result != evidence.Intact || rep.SegmentsOK != 6 {
		t.Fatalf("after outage: %s", rep.Text(evidence.LangEN))
	}
	// Everything is locked: the raw API cannot delete a segment version, and
	// an overwrite does not touch the version the manifest names.
	m := readManifest(t, s, "outage")
	raw, _ := srv.Client()
	seg := m.Segments[4]
	if seg.RetainUntil.IsZero() {
		t.Fatalf("segment without retain-until in manifest: %+v", seg)
	}
	if err := raw.RemoveObject(ctx, "evidence", seg.Key, minio.RemoveObjectOptions{VersionID: seg.VersionID}); err == nil {
		t.Fatal("deleted a COMPLIANCE-locked segment")
	}
	junk := []byte("overwrite attempt")
	if _, err := raw.PutObject(ctx, "evidence", seg.Key, bytes.NewReader(junk), int64(len(junk)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	mkey, _ := archive.ManifestKey("outage")
	if err := raw.RemoveObject(ctx, "evidence", mkey, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err) // a delete marker only; the locked version stays
	}
	if info, err := s.Stat(ctx, mkey, rep.ManifestVersion); err != nil || info.Retention.Mode != archive.Compliance {
		t.Fatalf("manifest version after delete marker: %+v, %v", info, err)
	}
	if rep := evidence.Verify(ctx, s, "outage", pubOf(key)); rep.Result != evidence.CouldNotCheck || !strings.Contains(rep.Reason, "6 segment") {
		// With the latest manifest hidden by a delete marker there is nothing
		// to start from: reported, not silently passed.
		t.Fatalf("after delete marker on manifest: %s", rep.Text(evidence.LangEN))
	}
}
