package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Dir is the embedded archive: a directory tree that emulates a versioned,
// object-locked bucket. Each key is a directory "<key>@v" holding one file per
// version:
//
//	<vid>-<base name of key>   the bytes (read-only), e.g. 00000000000000000001-manifest.json
//	<vid>.meta                 JSON: sha256, size, time, retention (read-only)
//	<vid>.hold                 present while the version is under legal hold
//	<vid>.deleted              tombstone of a version deleted after its retention
//
// Version ids are 20-digit counters. A version is claimed with link(2), which
// never replaces an existing name, so a write can only ever add a version;
// Delete refuses versions under retention or legal hold. This protects against
// mistakes and bugs, not against root on the same machine: tamper evidence
// there comes from the signed hash chain, not from the file system.
type Dir struct {
	root string
	now  func() time.Time
	log  *slog.Logger
	// mu serialises version allocation inside this process; link(2) already
	// makes it safe across processes, the mutex just avoids needless retries.
	mu sync.Mutex
}

// DirOption configures a Dir.
type DirOption func(*Dir)

// WithDirClock injects the clock used to decide whether retention has expired.
func WithDirClock(now func() time.Time) DirOption { return func(d *Dir) { d.now = now } }

// WithDirLogger sets the logger.
func WithDirLogger(l *slog.Logger) DirOption { return func(d *Dir) { d.log = l } }

// DefaultDirRoot is where the embedded archive lives inside the data directory.
func DefaultDirRoot(dataDir string) string { return filepath.Join(dataDir, "archive") }

// NewDir opens (creating if needed) a directory archive rooted at root.
func NewDir(root string, opts ...DirOption) (*Dir, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: empty archive directory", ErrConfig)
	}
	d := &Dir{root: root, now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(d)
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("archive: create %s: %w", root, err)
	}
	return d, nil
}

// Root returns the directory the archive lives in.
func (d *Dir) Root() string { return d.root }

const versionSuffix = "@v"

type dirMeta struct {
	Key       string    `json:"key"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	Created   time.Time `json:"created"`
	Mode      Mode      `json:"retention_mode,omitempty"`
	Until     time.Time `json:"retain_until,omitzero"`
	Content   string    `json:"content_type,omitempty"`
	VersionID string    `json:"-"`
}

func (d *Dir) keyDir(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key)+versionSuffix)
}

func dataName(vid, key string) string { return vid + "-" + path.Base(key) }

func formatVID(n uint64) string { return fmt.Sprintf("%020d", n) }

// Put implements Archive.
func (d *Dir) Put(ctx context.Context, req PutRequest) (ObjectInfo, error) {
	if err := req.validate(); err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	dir := d.keyDir(req.Key)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: mkdir for %s: %w", req.Key, err)
	}
	dataTmp, err := d.writeData(dir, req)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer os.Remove(dataTmp)

	meta := dirMeta{
		Key: req.Key, SHA256: req.SHA256, Size: req.Size, Created: d.now().UTC(),
		Mode: req.Retention.Mode, Until: req.Retention.Until.UTC(), Content: req.ContentType,
	}
	if req.Retention.IsZero() {
		meta.Until = time.Time{}
	}
	metaBytes, err := json.Marshal(meta)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: encode meta: %w", err)
	}
	metaTmp, err := writeTempSynced(dir, ".meta-*", metaBytes)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: write meta for %s: %w", req.Key, err)
	}
	defer os.Remove(metaTmp)

	vid, err := d.commit(dir, req.Key, dataTmp, metaTmp)
	if err != nil {
		return ObjectInfo{}, err
	}
	d.log.Debug("archive: stored", slog.String("key", req.Key), slog.String("version", vid), slog.Int64("size", req.Size))
	return ObjectInfo{
		Key: req.Key, VersionID: vid, SHA256: req.SHA256, Size: req.Size,
		Modified: meta.Created, Retention: Retention{Mode: meta.Mode, Until: meta.Until},
	}, nil
}

// writeData copies the body into a synced temp file, then hashes the file as
// stored: a disk or copy fault shows up here, not at verification years later.
func (d *Dir) writeData(dir string, req PutRequest) (string, error) {
	f, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return "", fmt.Errorf("archive: temp file for %s: %w", req.Key, err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if _, err := io.Copy(f, newVerifyingReader(req.Body, req.Size, req.SHA256)); err != nil {
		return fail(fmt.Errorf("archive: write %s: %w", req.Key, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("archive: fsync %s: %w", req.Key, err))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("archive: reread %s: %w", req.Key, err))
	}
	got, n, err := hashReader(f)
	if err != nil {
		return fail(fmt.Errorf("archive: reread %s: %w", req.Key, err))
	}
	if got != req.SHA256 || n != req.Size {
		return fail(fmt.Errorf("%w: %s stored as %s (%d bytes)", ErrChecksumMismatch, req.Key, got, n))
	}
	if err := f.Chmod(0o444); err != nil {
		return fail(fmt.Errorf("archive: chmod %s: %w", req.Key, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("archive: close %s: %w", req.Key, err)
	}
	return name, nil
}

// commit gives the temp files their version names. The data name is claimed
// first with link(2) (fails if it exists, so nothing is ever overwritten); the
// meta file appears last and marks the version complete.
func (d *Dir) commit(dir, key, dataTmp, metaTmp string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	next, err := nextVersion(dir)
	if err != nil {
		return "", err
	}
	for tries := 0; tries < 1000; tries++ {
		vid := formatVID(next)
		err := os.Link(dataTmp, filepath.Join(dir, dataName(vid, key)))
		if errors.Is(err, fs.ErrExist) {
			next++
			continue
		}
		if err != nil {
			return "", fmt.Errorf("archive: commit %s: %w", key, err)
		}
		if err := os.Link(metaTmp, filepath.Join(dir, vid+".meta")); err != nil {
			return "", fmt.Errorf("archive: commit meta of %s: %w", key, err)
		}
		if err := syncDir(dir); err != nil {
			return "", fmt.Errorf("archive: fsync dir of %s: %w", key, err)
		}
		return vid, nil
	}
	return "", fmt.Errorf("archive: commit %s: no free version id", key)
}

// nextVersion is one past the highest version number claimed in dir,
// counting data files whose meta never landed so a crashed write is not reused.
func nextVersion(dir string) (uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("archive: read %s: %w", dir, err)
	}
	var max uint64
	for _, e := range entries {
		if n, ok := parseVIDPrefix(e.Name()); ok && n > max {
			max = n
		}
	}
	return max + 1, nil
}

func parseVIDPrefix(name string) (uint64, bool) {
	if len(name) < 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(name[:20], 10, 64)
	return n, err == nil
}

// resolve returns the version id to use: the given one (checked) or the latest.
func (d *Dir) resolve(key, versionID string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	dir := d.keyDir(key)
	if versionID != "" {
		if n, ok := parseVIDPrefix(versionID); !ok || len(versionID) != 20 || formatVID(n) != versionID {
			return "", fmt.Errorf("%w: %s version %q", ErrNotFound, key, versionID)
		}
		if _, err := os.Stat(filepath.Join(dir, versionID+".meta")); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("%w: %s version %s", ErrNotFound, key, versionID)
			}
			return "", fmt.Errorf("archive: stat %s: %w", key, err)
		}
		return versionID, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return "", fmt.Errorf("archive: read %s: %w", key, err)
	}
	latest := ""
	for _, e := range entries {
		name := e.Name()
		if vid, ok := strings.CutSuffix(name, ".meta"); ok && len(vid) == 20 && vid > latest {
			latest = vid
		}
	}
	if latest == "" {
		return "", fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return latest, nil
}

func (d *Dir) readMeta(key, vid string) (ObjectInfo, error) {
	dir := d.keyDir(key)
	b, err := os.ReadFile(filepath.Join(dir, vid+".meta"))
	if errors.Is(err, fs.ErrNotExist) {
		return ObjectInfo{}, fmt.Errorf("%w: %s version %s", ErrNotFound, key, vid)
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: read meta of %s: %w", key, err)
	}
	var m dirMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: decode meta of %s: %w", key, err)
	}
	_, herr := os.Stat(filepath.Join(dir, vid+".hold"))
	return ObjectInfo{
		Key: key, VersionID: vid, SHA256: m.SHA256, Size: m.Size, Modified: m.Created,
		Retention: Retention{Mode: m.Mode, Until: m.Until}, LegalHold: herr == nil,
	}, nil
}

// Stat implements Archive.
func (d *Dir) Stat(ctx context.Context, key, versionID string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	vid, err := d.resolve(key, versionID)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := d.readMeta(key, vid)
	if err != nil {
		return ObjectInfo{}, err
	}
	// The meta file states the size written; report what is on disk so a
	// truncated or replaced data file is visible without reading it.
	st, err := os.Stat(filepath.Join(d.keyDir(key), dataName(vid, key)))
	if errors.Is(err, fs.ErrNotExist) {
		return ObjectInfo{}, fmt.Errorf("%w: data of %s version %s", ErrNotFound, key, vid)
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: stat %s: %w", key, err)
	}
	info.Size = st.Size()
	return info, nil
}

// Get implements Archive.
func (d *Dir) Get(ctx context.Context, key, versionID string) (io.ReadCloser, ObjectInfo, error) {
	info, err := d.Stat(ctx, key, versionID)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	f, err := os.Open(filepath.Join(d.keyDir(key), dataName(info.VersionID, key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ObjectInfo{}, fmt.Errorf("%w: data of %s version %s", ErrNotFound, key, info.VersionID)
	}
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("archive: open %s: %w", key, err)
	}
	return f, info, nil
}

// List implements Archive.
func (d *Dir) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	start := d.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(d.root, filepath.FromSlash(prefix[:i]))
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if !e.IsDir() {
			return nil
		}
		keyPath, ok := strings.CutSuffix(p, versionSuffix)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(d.root, keyPath)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return fs.SkipDir
		}
		info, err := d.Stat(ctx, key, "")
		if errors.Is(err, ErrNotFound) {
			return fs.SkipDir // only incomplete writes there
		}
		if err != nil {
			return err
		}
		out = append(out, info)
		return fs.SkipDir
	})
	if err != nil {
		return nil, fmt.Errorf("archive: list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// SetLegalHold implements Archive.
func (d *Dir) SetLegalHold(ctx context.Context, key, versionID string, on bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	vid, err := d.resolve(key, versionID)
	if err != nil {
		return err
	}
	dir := d.keyDir(key)
	hold := filepath.Join(dir, vid+".hold")
	if !on {
		if err := os.Remove(hold); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("archive: clear legal hold on %s: %w", key, err)
		}
		return syncDir(dir)
	}
	stamp := []byte(d.now().UTC().Format(time.RFC3339Nano) + "\n")
	tmp, err := writeTempSynced(dir, ".hold-*", stamp)
	if err != nil {
		return fmt.Errorf("archive: legal hold on %s: %w", key, err)
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, hold); err != nil {
		return fmt.Errorf("archive: legal hold on %s: %w", key, err)
	}
	return syncDir(dir)
}

// Delete removes one version ("" means the latest) unless it is retained or
// under legal hold. It is not part of Archive: nothing in ducha deletes
// evidence; it exists so the lock can be proven and expired objects purged.
func (d *Dir) Delete(ctx context.Context, key, versionID string) error {
	info, err := d.Stat(ctx, key, versionID)
	if err != nil {
		return err
	}
	if info.LegalHold {
		return fmt.Errorf("%w: %s version %s is under legal hold", ErrRetained, key, info.VersionID)
	}
	if info.Retention.ActiveAt(d.now()) {
		return fmt.Errorf("%w: %s version %s is retained (%s) until %s", ErrRetained, key, info.VersionID,
			info.Retention.Mode, info.Retention.Until.Format(time.RFC3339))
	}
	dir := d.keyDir(key)
	// The tombstone keeps the id claimed (S3 never reissues a version id) and
	// says when the version went.
	stamp := []byte(d.now().UTC().Format(time.RFC3339Nano) + "\n")
	tomb, err := writeTempSynced(dir, ".deleted-*", stamp)
	if err != nil {
		return fmt.Errorf("archive: delete %s: %w", key, err)
	}
	defer os.Remove(tomb)
	if err := os.Rename(tomb, filepath.Join(dir, info.VersionID+".deleted")); err != nil {
		return fmt.Errorf("archive: delete %s: %w", key, err)
	}
	if err := os.Remove(filepath.Join(dir, info.VersionID+".meta")); err != nil {
		return fmt.Errorf("archive: delete %s: %w", key, err)
	}
	if err := os.Remove(filepath.Join(dir, dataName(info.VersionID, key))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("archive: delete %s: %w", key, err)
	}
	d.log.Info("archive: version deleted", slog.String("key", key), slog.String("version", info.VersionID))
	return syncDir(dir)
}

// writeTempSynced writes b to a new read-only temp file in dir and fsyncs it.
func writeTempSynced(dir, pattern string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Chmod(0o444)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(name)
		return "", werr
	}
	return name, nil
}

// syncDir makes renames and links in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
