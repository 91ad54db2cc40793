package evidence

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

// Putter is what the uploader needs from an archive.
type Putter interface {
	Put(ctx context.Context, req archive.PutRequest) (archive.ObjectInfo, error)
}

// UploadState is the uploader's health as the API shows it.
type UploadState string

// Upload states.
const (
	UploadOK       UploadState = "ok"
	UploadRetrying UploadState = "retrying"
)

// Status is the uploader's state plus what waits in the spool.
type Status struct {
	State UploadState `json:"state"`
	// LastError is the error of the last failed attempt while retrying.
	LastError string `json:"last_error,omitempty"`
	// Failures counts consecutive failed attempts.
	Failures   int       `json:"failures"`
	RetryAt    time.Time `json:"retry_at,omitzero"`
	LastUpload time.Time `json:"last_upload,omitzero"`
	Backlog    Backlog   `json:"backlog"`
}

// UploaderConfig configures an Uploader.
type UploaderConfig struct {
	// Retention is applied to every segment and manifest written.
	Retention archive.Policy
	// Signer signs manifests (LoadOrCreateNodeKey).
	Signer ed25519.PrivateKey
	// NodeID names this node in manifests.
	NodeID string
	// Clock defaults to SystemClock.
	Clock Clock
	// MinBackoff and MaxBackoff bound the wait between failed attempts
	// (defaults 1 s and 1 min); the wait doubles after each failure.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Uploader moves the spool into the archive: segments in chain order, then
// the signed manifest of each closed session.
type Uploader struct {
	spool *Spool
	store Putter
	cfg   UploaderConfig
	log   *slog.Logger

	mu     sync.Mutex
	status Status
}

// NewUploader checks the configuration; Run does the work.
func NewUploader(spool *Spool, store Putter, cfg UploaderConfig) (*Uploader, error) {
	if spool == nil || store == nil {
		return nil, fmt.Errorf("evidence: uploader needs a spool and an archive")
	}
	if err := cfg.Retention.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Signer) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: uploader needs the node signing key", ErrInvalidKey)
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Minute, cfg.MinBackoff)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Uploader{spool: spool, store: store, cfg: cfg, log: log, status: Status{State: UploadOK}}, nil
}

// Status reports the uploader's state and the spool backlog.
func (u *Uploader) Status() Status {
	u.mu.Lock()
	st := u.status
	u.mu.Unlock()
	st.Backlog = u.spool.Backlog()
	return st
}

// Run uploads until ctx ends, starting with whatever the spool already holds.
// It returns nil on cancellation. Run it once per Spool.
func (u *Uploader) Run(ctx context.Context) error {
	delay := u.cfg.MinBackoff
	for {
		err := u.drain(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			u.setRetrying(err, delay)
			u.log.Warn("evidence: upload failed, will retry", slog.Any("err", err), slog.Duration("in", delay))
			select {
			case <-ctx.Done():
				return nil
			case <-u.cfg.Clock.After(delay):
			}
			delay = min(delay*2, u.cfg.MaxBackoff)
			continue
		}
		delay = u.cfg.MinBackoff
		u.setOK()
		select {
		case <-ctx.Done():
			return nil
		case <-u.spool.notify:
		}
	}
}

func (u *Uploader) setRetrying(err error, delay time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status.State = UploadRetrying
	u.status.LastError = err.Error()
	u.status.Failures++
	u.status.RetryAt = u.cfg.Clock.Now().Add(delay)
}

func (u *Uploader) setOK() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.status.State != UploadOK {
		u.log.Info("evidence: uploads resumed", slog.Int("after_failures", u.status.Failures))
	}
	u.status = Status{State: UploadOK, LastUpload: u.status.LastUpload}
}

func (u *Uploader) uploaded() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status.LastUpload = u.cfg.Clock.Now()
}

// drain does all pending work in order and stops at the first failure.
func (u *Uploader) drain(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		w, ok := u.spool.next()
		if !ok {
			return nil
		}
		var err error
		switch w.kind {
		case workSegment:
			err = u.uploadSegment(ctx, w)
		case workManifest:
			err = u.uploadManifest(ctx, w)
		}
		if err != nil {
			return err
		}
	}
}

func contentType(container string) string {
	switch container {
	case "webm":
		return "video/webm"
	case "mp4":
		return "video/mp4"
	}
	return "application/octet-stream"
}

func (u *Uploader) uploadSegment(ctx context.Context, w work) error {
	r := w.rec
	log := u.log.With(slog.String("session", r.Session), slog.Uint64("index", r.Index),
		slog.String("participant", r.Participant), slog.String("source", r.Source))
	key, err := r.ObjectKey()
	if err != nil {
		return u.spool.markLost(w, "no valid object key: "+err.Error())
	}
	path := u.spool.segmentPath(w)
	info, err := archive.PutFile(ctx, u.store, key, path, r.SHA256, u.cfg.Retention.RetentionAt(u.cfg.Clock.Now()), contentType(r.Container))
	if err != nil {
		// Only the local file can make a failure permanent: check it before
		// giving up on the segment, so an archive fault is always retried.
		sum, size, herr := hashFile(path)
		switch {
		case errors.Is(herr, fs.ErrNotExist):
			return u.spool.markLost(w, "segment file missing from the spool")
		case herr == nil && (sum != r.SHA256 || size != r.Size):
			return u.spool.markLost(w, fmt.Sprintf("spool file changed after it was chained: sha256 %s, %d bytes", sum, size))
		}
		return fmt.Errorf("upload %s: %w", key, err)
	}
	if info.SHA256 != r.SHA256 || info.Key != key {
		return fmt.Errorf("upload %s: archive confirmed %s at %s", key, info.SHA256, info.Key)
	}
	if err := u.spool.markArchived(w, info, u.cfg.Clock.Now()); err != nil {
		return err
	}
	u.uploaded()
	log.Debug("evidence: segment archived", slog.String("key", key), slog.String("version", info.VersionID))
	return nil
}

// uploadManifest builds, signs and archives the manifest. Each step leaves a
// file in the session's spool, so a retry (or a restart) resumes where it
// stopped and archives the same bytes.
func (u *Uploader) uploadManifest(ctx context.Context, w work) error {
	recs, in, err := u.spool.closedSession(w.session)
	if err != nil {
		return err
	}
	manifestPath := filepath.Join(w.dir, "manifest.json")
	sigPath := filepath.Join(w.dir, "manifest.sig")
	data, err := os.ReadFile(manifestPath)
	if errors.Is(err, fs.ErrNotExist) {
		pub := u.cfg.Signer.Public().(ed25519.PublicKey)
		m, berr := BuildManifest(in, recs, u.cfg.NodeID, u.cfg.Clock.Now(), pub)
		if berr != nil {
			return berr
		}
		if data, err = m.Encode(); err != nil {
			return err
		}
		if err = writeFileAtomic(w.dir, "manifest.json", data); err != nil {
			return fmt.Errorf("evidence: write manifest: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("evidence: read manifest: %w", err)
	}
	if _, err := os.Stat(sigPath); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileAtomic(w.dir, "manifest.sig", SignManifest(u.cfg.Signer, data)); err != nil {
			return fmt.Errorf("evidence: write signature: %w", err)
		}
	}
	mkey, err := archive.ManifestKey(w.session)
	if err != nil {
		return err
	}
	skey, err := archive.SignatureKey(w.session)
	if err != nil {
		return err
	}
	for _, obj := range []struct{ key, path, ctype string }{
		{mkey, manifestPath, "application/json"},
		{skey, sigPath, "application/octet-stream"},
	} {
		if err := u.putOnce(ctx, w.dir, obj.key, obj.path, obj.ctype); err != nil {
			return err
		}
	}
	if err := u.spool.finishSession(w.session); err != nil {
		return err
	}
	u.uploaded()
	u.log.Info("evidence: session manifest archived", slog.String("session", w.session), slog.String("key", mkey),
		slog.Int("records", len(recs)))
	return nil
}

// putOnce archives a spool file unless a previous attempt already did, as
// noted by a ".archived" marker holding what the archive confirmed.
func (u *Uploader) putOnce(ctx context.Context, dir, key, path, ctype string) error {
	marker := filepath.Base(path) + ".archived"
	if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
		return nil
	}
	sum, _, err := hashFile(path)
	if err != nil {
		return fmt.Errorf("evidence: hash %s: %w", filepath.Base(path), err)
	}
	info, err := archive.PutFile(ctx, u.store, key, path, sum, u.cfg.Retention.RetentionAt(u.cfg.Clock.Now()), ctype)
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, marker, b)
}
