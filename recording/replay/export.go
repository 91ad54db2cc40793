package replay

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
)

// Names inside an evidence package (under one directory named after the
// recording).
const (
	ExportManifest     = "manifest.json"
	ExportSignature    = "manifest.sig"
	ExportPublicKey    = "node-ed25519.pub.pem"
	ExportReportJSON   = "verification.json"
	ExportReportText   = "verification.txt"
	ExportReadme       = "README.txt"
	ExportSums         = "SHA256SUMS"
	ExportSegmentsDir  = "segments/"
	exportForeignDir   = "other/"
	exportSigMaxLength = 1 << 10
)

// Export is an evidence package ready to be written: the manifest and its
// signature as archived, and a verification run when it was prepared.
type Export struct {
	s           *Service
	id          string
	dir         string
	manifest    *evidence.Manifest
	manifestRaw []byte
	sig         []byte
	report      evidence.Report
	entry       Entry
	prepared    time.Time
	// lock is the manifest's retention and hold as the archive reported.
	lock    archive.ObjectInfo
	lockErr error
}

// PrepareExport reads what the package holds besides the segments and
// verifies the recording, so that anything wrong with the archive shows up
// before the caller starts sending a response.
func (s *Service) PrepareExport(ctx context.Context, id string) (*Export, error) {
	e, err := s.Entry(ctx, id)
	if err != nil {
		return nil, err
	}
	m, raw, minfo, err := s.readManifest(ctx, id)
	if err != nil {
		return nil, err
	}
	lock, lockErr := s.cfg.Archive.Stat(ctx, minfo.Key, minfo.VersionID)
	skey, _ := archive.SignatureKey(id)
	var sig []byte
	rc, _, err := s.cfg.Archive.Get(ctx, skey, "")
	switch {
	case err == nil:
		sig, err = io.ReadAll(io.LimitReader(rc, exportSigMaxLength))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("replay: read %s: %w", skey, err)
		}
	case errors.Is(err, archive.ErrNotFound):
		// Exported without it: the report and the README say it is missing.
	default:
		return nil, fmt.Errorf("replay: read %s: %w", skey, err)
	}
	rep := evidence.Verify(ctx, s.cfg.Archive, id, s.cfg.PublicKey)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now().UTC()
	e.Verification = checkOf(rep, now)
	if err := s.store(ctx, e); err != nil {
		s.log.Warn("replay: verification not remembered", "recording", id, "err", err)
	}
	dir, _ := archive.EscapePart(id)
	return &Export{s: s, id: id, dir: dir, manifest: m, manifestRaw: raw, sig: sig, report: rep, entry: e, prepared: now,
		lock: lock, lockErr: lockErr}, nil
}

// FileName is the package's suggested file name.
func (x *Export) FileName() string { return "ducha-evidence-" + x.dir + ".zip" }

// Report is the verification run by PrepareExport.
func (x *Export) Report() evidence.Report { return x.report }

// WriteTo writes the zip to w, reading every archived segment from the
// archive. A failure midway leaves w with an incomplete zip, which no unzip
// tool accepts.
func (x *Export) WriteTo(ctx context.Context, w io.Writer) error {
	zw := zip.NewWriter(w)
	sums := &strings.Builder{}
	mod := x.manifest.Created
	if mod.IsZero() {
		mod = x.prepared
	}
	add := func(name string, b []byte, compress bool) error {
		if err := x.writeFile(zw, name, bytes.NewReader(b), mod, compress); err != nil {
			return err
		}
		s := sha256.Sum256(b)
		fmt.Fprintf(sums, "%s  %s\n", hex.EncodeToString(s[:]), name)
		return nil
	}
	if err := add(ExportManifest, x.manifestRaw, true); err != nil {
		return err
	}
	if x.sig != nil {
		if err := add(ExportSignature, x.sig, false); err != nil {
			return err
		}
	}
	if err := add(ExportPublicKey, x.s.pubPEM, true); err != nil {
		return err
	}
	repJSON, err := json.MarshalIndent(x.report, "", "  ")
	if err != nil {
		return err
	}
	if err := add(ExportReportJSON, append(repJSON, '\n'), true); err != nil {
		return err
	}
	if err := add(ExportReportText, []byte(x.report.Text(evidence.LangZH)), true); err != nil {
		return err
	}
	segs := x.segmentFiles()
	for _, f := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The line comes from the signed manifest, not from the bytes read:
		// `sha256sum -c` then checks the files against what was signed.
		fmt.Fprintf(sums, "%s  %s\n", f.seg.SHA256, f.path)
		if err := x.copySegment(ctx, zw, f, mod); err != nil {
			return err
		}
	}
	if err := add(ExportReadme, []byte(readmeZH(x, segs)), true); err != nil {
		return err
	}
	if err := x.writeFile(zw, ExportSums, strings.NewReader(sums.String()), mod, true); err != nil {
		return err
	}
	return zw.Close()
}

type segmentFile struct {
	seg  evidence.SegmentEntry
	path string // inside the package
}

// segmentFiles lists the archived segments with their place in the package:
// their key below the session's prefix, so the layout is the archive's.
func (x *Export) segmentFiles() []segmentFile {
	prefix, _ := archive.SessionPrefix(x.id)
	var out []segmentFile
	for _, seg := range x.manifest.Segments {
		if seg.State != evidence.StateArchived || seg.Key == "" || archive.ValidateKey(seg.Key) != nil {
			continue
		}
		rel, ok := strings.CutPrefix(seg.Key, prefix)
		if !ok || !strings.HasPrefix(rel, ExportSegmentsDir) {
			// A manifest naming objects outside its session: keep them
			// apart (verification reports the mismatch).
			rel = exportForeignDir + seg.Key
		}
		out = append(out, segmentFile{seg: seg, path: rel})
	}
	return out
}

func (x *Export) copySegment(ctx context.Context, zw *zip.Writer, f segmentFile, mod time.Time) error {
	rc, _, err := x.s.cfg.Archive.Get(ctx, f.seg.Key, f.seg.VersionID)
	if errors.Is(err, archive.ErrNotFound) {
		// Missing from the archive: SHA256SUMS still lists it, so the check
		// of the package fails on it, as it should.
		return nil
	}
	if err != nil {
		return fmt.Errorf("replay: export %s: %w", f.seg.Key, err)
	}
	defer rc.Close()
	return x.writeFile(zw, f.path, rc, f.seg.Start, false)
}

// writeFile adds one file under the package directory. Segments are stored
// uncompressed: WebM is already compressed and stored entries stream fast.
func (x *Export) writeFile(zw *zip.Writer, name string, r io.Reader, mod time.Time, compress bool) error {
	hdr := &zip.FileHeader{Name: x.dir + "/" + name, Modified: mod.UTC(), Method: zip.Store}
	if compress {
		hdr.Method = zip.Deflate
	}
	hdr.SetMode(0o444)
	fw, err := zw.CreateHeader(hdr)
	if err != nil {
		return fmt.Errorf("replay: export %s: %w", name, err)
	}
	if _, err := io.Copy(fw, r); err != nil {
		return fmt.Errorf("replay: export %s: %w", name, err)
	}
	return nil
}
