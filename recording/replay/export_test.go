package replay_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/recording/replay"
	"github.com/ducha-dev/ducha/recording/replay/replaytest"
)

// run executes a command in dir and returns its combined output and exit code.
func run(t *testing.T, dir, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, replaytest.Tool(t, name), args...)
	cmd.Dir = dir
	// The C locale keeps tool messages in English whatever the machine uses.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// export writes the package of id to a file and unpacks it with unzip.
func export(t *testing.T, svc *replay.Service, id string) (dir string, rep evidence.Report) {
	t.Helper()
	ctx := ctxT(t)
	x, err := svc.PrepareExport(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	zipPath := filepath.Join(tmp, x.FileName())
	f, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.WriteTo(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, tmp, "unzip", "-q", zipPath)
	if code != 0 {
		t.Fatalf("unzip: %d %s", code, out)
	}
	dir = filepath.Join(tmp, id)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the package does not unpack into %s/: %v", id, err)
	}
	return dir, x.Report()
}

// The evidence package checks out with sha256sum, openssl and ffprobe
// alone; once a segment is altered in the archive, sha256sum names it.
func TestExportChecksWithStandardTools(t *testing.T) {
	bothArchives(t, func(t *testing.T, a namedArchive) {
		key := newKey(t)
		s := samples()[0]
		m := replaytest.Seal(t, a.arch, key, s.recording(webmFiles(t, s.segSeconds)), archive.Policy{})
		svc := newService(t, a, key, replay.NewMemStore(), newDirectory(t).store)

		dir, rep := export(t, svc, "S-A")
		if rep.Result != evidence.Intact {
			t.Fatalf("verification at export: %+v", rep)
		}
		for _, name := range []string{replay.ExportManifest, replay.ExportSignature, replay.ExportPublicKey,
			replay.ExportReportJSON, replay.ExportReportText, replay.ExportReadme, replay.ExportSums} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("package lacks %s", name)
			}
		}
		out, code := run(t, dir, "sha256sum", "-c", replay.ExportSums)
		if code != 0 || strings.Count(out, ": OK") != len(m.Segments)+6 {
			t.Fatalf("sha256sum -c: exit %d\n%s", code, out)
		}

		out, code = run(t, dir, "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", replay.ExportPublicKey, "-rawin",
			"-in", replay.ExportManifest, "-sigfile", replay.ExportSignature)
		if code != 0 || !strings.Contains(out, "Signature Verified Successfully") {
			t.Fatalf("openssl verify: exit %d\n%s", code, out)
		}
		// The README's fingerprint command gives the manifest's signer.
		out, code = run(t, dir, "sh", "-c", "openssl pkey -pubin -in "+replay.ExportPublicKey+" -outform DER | tail -c 32 | sha256sum")
		if code != 0 || !strings.HasPrefix(m.Signer, "sha256:") || !strings.HasPrefix(out, strings.TrimPrefix(m.Signer, "sha256:")) {
			t.Fatalf("fingerprint: %q (exit %d), manifest signer %s", out, code, m.Signer)
		}

		var total float64
		for _, seg := range m.Segments {
			rel := strings.TrimPrefix(seg.Key, "sessions/S-A/")
			out, code := run(t, dir, "ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name",
				"-of", "json", rel)
			if code != 0 {
				t.Fatalf("ffprobe %s: exit %d\n%s", rel, code, out)
			}
			var p struct {
				Format  struct{ Duration string }
				Streams []struct {
					CodecName string `json:"codec_name"`
				}
			}
			if err := json.Unmarshal([]byte(out), &p); err != nil {
				t.Fatalf("ffprobe %s: %v\n%s", rel, err, out)
			}
			codecs := map[string]bool{}
			for _, st := range p.Streams {
				codecs[st.CodecName] = true
			}
			if !codecs["vp8"] || !codecs["opus"] {
				t.Errorf("%s: codecs %v", rel, codecs)
			}
			d, _ := strconv.ParseFloat(p.Format.Duration, 64)
			total += d
		}
		if total < 9 || total > 11 {
			t.Errorf("segments last %.2f s together, want about 10", total)
		}
		readme, _ := os.ReadFile(filepath.Join(dir, replay.ExportReadme))
		for _, want := range []string{"sha256sum -c SHA256SUMS", "openssl pkeyutl -verify", "ffprobe", "矛盾纠纷化解督查", "XF-2026-0042", "单位140105",
			`"audio_frames_filled"`} {
			if !strings.Contains(string(readme), want) {
				t.Errorf("README lacks %q", want)
			}
		}
		text, _ := os.ReadFile(filepath.Join(dir, replay.ExportReportText))
		if !strings.Contains(string(text), "完好") || !strings.Contains(string(text), "音频补帧") {
			t.Errorf("verification.txt is not the Chinese report with the audio counts:\n%s", text)
		}

		if a.dir == nil {
			return // altering a stored file is the directory archive's case
		}
		victim := m.Segments[2]
		alterDirSegment(t, a.dir, victim.Key)
		dir, rep = export(t, svc, "S-A")
		if rep.Result != evidence.Altered || rep.FirstBad == nil || rep.FirstBad.Key != victim.Key {
			t.Fatalf("verification of the altered recording: %+v", rep)
		}
		out, code = run(t, dir, "sha256sum", "-c", replay.ExportSums)
		rel := strings.TrimPrefix(victim.Key, "sessions/S-A/")
		if code == 0 || !strings.Contains(out, rel+": FAILED") || strings.Count(out, "FAILED\n") != 1 {
			t.Fatalf("sha256sum -c on the altered package: exit %d\n%s", code, out)
		}
		var saved struct{ Result string }
		b, _ := os.ReadFile(filepath.Join(dir, replay.ExportReportJSON))
		if err := json.Unmarshal(b, &saved); err != nil || saved.Result != "altered" {
			t.Fatalf("verification.json: %v %s", err, b)
		}
	})
}
