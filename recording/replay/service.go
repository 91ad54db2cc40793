package replay

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
)

// Archive is what replay needs from the evidence archive (archive.Dir and
// archive.S3 implement it). Put is used only for the access log.
type Archive interface {
	Get(ctx context.Context, key, versionID string) (io.ReadCloser, archive.ObjectInfo, error)
	Stat(ctx context.Context, key, versionID string) (archive.ObjectInfo, error)
	List(ctx context.Context, prefix string) ([]archive.ObjectInfo, error)
	Put(ctx context.Context, req archive.PutRequest) (archive.ObjectInfo, error)
}

// Clock is the time source (rooms.SystemClock and evidence.SystemClock fit).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Service. Archive, Index and PublicKey are required.
type Config struct {
	Archive Archive
	// Index keeps the entries between restarts (NewDirStore in the data
	// directory, NewMemStore in tests).
	Index Store
	// PublicKey is the node's manifest-signing key: what verification checks
	// signatures with, and what exports carry.
	PublicKey ed25519.PublicKey
	// Directory enriches entries from the session store; may be nil.
	Directory Directory
	// AccessRetention locks access-log objects like recordings are locked.
	AccessRetention archive.Policy
	// ScanEvery is how often Run looks for manifests the index lacks
	// (default 1 hour). A scan lists every object under sessions/ (the
	// Archive interface has no delimiter listing), so it is kept rare:
	// WatchSeals indexes this node's recordings at once; the scan is for
	// what other nodes sealed and for missed notifications.
	ScanEvery time.Duration
	Clock     Clock
	Logger    *slog.Logger
}

// Service is the index plus everything the replay API does with it.
type Service struct {
	cfg    Config
	log    *slog.Logger
	pubPEM []byte

	mu      sync.RWMutex
	entries map[string]Entry

	// wake tells Run that something was sealed (verify it soon).
	wake      chan struct{}
	manifests manifestCache
}

// New loads the index from cfg.Index. It does not scan the archive: call
// Rebuild (or let Run's first Sync do it) for that.
func New(ctx context.Context, cfg Config) (*Service, error) {
	switch {
	case cfg.Archive == nil:
		return nil, fmt.Errorf("%w: Archive is required", ErrConfig)
	case cfg.Index == nil:
		return nil, fmt.Errorf("%w: Index is required", ErrConfig)
	case len(cfg.PublicKey) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("%w: an Ed25519 PublicKey is required", ErrConfig)
	}
	if err := cfg.AccessRetention.Validate(); err != nil {
		return nil, fmt.Errorf("%w: access log retention: %v", ErrConfig, err)
	}
	if cfg.ScanEvery <= 0 {
		cfg.ScanEvery = time.Hour
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pem, err := evidence.PublicKeyPEM(cfg.PublicKey)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, pubPEM: pem, entries: map[string]Entry{}, wake: make(chan struct{}, 1),
		manifests: manifestCache{ttl: time.Minute, max: 32, m: map[string]cachedManifest{}}}
	es, err := cfg.Index.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		s.entries[e.ID] = e
	}
	return s, nil
}

// PublicKeyPEM is the node key as exports carry it.
func (s *Service) PublicKeyPEM() []byte { return append([]byte(nil), s.pubPEM...) }

// Len is the number of indexed recordings.
func (s *Service) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// maxManifestBytes bounds a manifest read: a day-long province-wide session
// is a few MB.
const maxManifestBytes = 64 << 20

// readManifest reads and decodes the latest manifest of a recording.
func (s *Service) readManifest(ctx context.Context, id string) (*evidence.Manifest, []byte, archive.ObjectInfo, error) {
	key, err := archive.ManifestKey(id)
	if err != nil {
		return nil, nil, archive.ObjectInfo{}, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	rc, info, err := s.cfg.Archive.Get(ctx, key, "")
	if errors.Is(err, archive.ErrNotFound) {
		return nil, nil, archive.ObjectInfo{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, nil, archive.ObjectInfo{}, fmt.Errorf("replay: read manifest of %s: %w", id, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes+1))
	if err != nil {
		return nil, nil, archive.ObjectInfo{}, fmt.Errorf("replay: read manifest of %s: %w", id, err)
	}
	if len(raw) > maxManifestBytes {
		return nil, nil, archive.ObjectInfo{}, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidManifest, key, maxManifestBytes)
	}
	var m evidence.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || m.Format != evidence.ManifestFormat {
		return nil, nil, archive.ObjectInfo{}, fmt.Errorf("%w: %s", ErrInvalidManifest, key)
	}
	// A manifest copied under another session's key would otherwise be
	// indexed (and served) as that session.
	if m.Session.ID != id {
		return nil, nil, archive.ObjectInfo{}, fmt.Errorf("%w: %s holds the manifest of %q", ErrInvalidManifest, key, m.Session.ID)
	}
	s.manifests.put(id, &m, info.VersionID, s.cfg.Clock.Now())
	return &m, raw, info, nil
}

// manifest returns a recently read manifest, or reads it.
func (s *Service) manifest(ctx context.Context, id string) (*evidence.Manifest, error) {
	if m, ok := s.manifests.get(id, s.cfg.Clock.Now()); ok {
		return m, nil
	}
	m, _, _, err := s.readManifest(ctx, id)
	return m, err
}

// index builds and stores the entry of one recording, keeping the last
// verification if it checked the same manifest version.
func (s *Service) index(ctx context.Context, id string) (Entry, error) {
	m, _, info, err := s.readManifest(ctx, id)
	if err != nil {
		return Entry{}, err
	}
	e := buildEntry(ctx, m, info.Key, info.VersionID, s.cfg.Directory, s.cfg.Clock.Now())
	s.mu.RLock()
	old, ok := s.entries[id]
	s.mu.RUnlock()
	if ok && old.Verification != nil && old.Verification.ManifestVersion == e.ManifestVersion {
		e.Verification = old.Verification
	}
	if err := s.store(ctx, e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

func (s *Service) store(ctx context.Context, e Entry) error {
	if err := s.cfg.Index.Put(ctx, e); err != nil {
		return err
	}
	s.mu.Lock()
	s.entries[e.ID] = e
	s.mu.Unlock()
	return nil
}

// manifestIDs lists the recordings that have a manifest in the archive.
func (s *Service) manifestIDs(ctx context.Context) ([]string, error) {
	objs, err := s.cfg.Archive.List(ctx, "sessions/")
	if err != nil {
		return nil, fmt.Errorf("replay: list archive: %w", err)
	}
	var ids []string
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o.Key, "sessions/")
		if !ok {
			continue
		}
		part, ok := strings.CutSuffix(rest, "/manifest.json")
		if !ok || strings.Contains(part, "/") {
			continue
		}
		id, err := archive.UnescapePart(part)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Rebuild reconstructs the whole index from the archive's manifests: every
// manifest gets a fresh entry, and entries without a manifest are dropped.
// It returns how many recordings are indexed. A manifest that cannot be
// read is logged and skipped; the first such error is returned after the
// rest were indexed.
func (s *Service) Rebuild(ctx context.Context) (int, error) {
	ids, err := s.manifestIDs(ctx)
	if err != nil {
		return 0, err
	}
	keep := make(map[string]bool, len(ids))
	var first error
	for _, id := range ids {
		if _, err := s.index(ctx, id); err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			s.log.Warn("replay: manifest not indexed", slog.String("recording", id), slog.Any("err", err))
			if first == nil {
				first = err
			}
			continue
		}
		keep[id] = true
	}
	s.mu.RLock()
	var stale []string
	for id := range s.entries {
		if !keep[id] {
			stale = append(stale, id)
		}
	}
	s.mu.RUnlock()
	for _, id := range stale {
		if err := s.cfg.Index.Delete(ctx, id); err != nil {
			return 0, err
		}
		s.mu.Lock()
		delete(s.entries, id)
		s.mu.Unlock()
	}
	s.log.Info("replay: index rebuilt from the archive", slog.Int("recordings", len(keep)), slog.Int("dropped", len(stale)))
	return len(keep), first
}

// Sync indexes manifests the index does not have yet (another node sealed
// them, or a seal notification was missed) and returns how many it added.
func (s *Service) Sync(ctx context.Context) (int, error) {
	ids, err := s.manifestIDs(ctx)
	if err != nil {
		return 0, err
	}
	added := 0
	for _, id := range ids {
		s.mu.RLock()
		_, ok := s.entries[id]
		s.mu.RUnlock()
		if ok {
			continue
		}
		if _, err := s.index(ctx, id); err != nil {
			if ctx.Err() != nil {
				return added, ctx.Err()
			}
			s.log.Warn("replay: manifest not indexed", slog.String("recording", id), slog.Any("err", err))
			continue
		}
		added++
	}
	return added, nil
}

// Sealed indexes a recording whose manifest was just archived, and asks
// Run to verify it.
func (s *Service) Sealed(ctx context.Context, id string) error {
	if _, err := s.index(ctx, id); err != nil {
		return err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run keeps the index current until ctx ends: a Sync at start and every
// ScanEvery, and a verification of every recording never checked (sealed
// recordings are verified soon after Sealed). It returns nil on
// cancellation.
func (s *Service) Run(ctx context.Context) error {
	for {
		if n, err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("replay: archive scan failed", slog.Any("err", err))
		} else if n > 0 {
			s.log.Info("replay: recordings indexed from the archive", slog.Int("added", n))
		}
		s.verifyUnchecked(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-s.cfg.Clock.After(s.cfg.ScanEvery):
		}
	}
}

// verifyUnchecked verifies the recordings that have no verification yet.
func (s *Service) verifyUnchecked(ctx context.Context) {
	s.mu.RLock()
	var todo []string
	for id, e := range s.entries {
		if e.Verification == nil {
			todo = append(todo, id)
		}
	}
	s.mu.RUnlock()
	for _, id := range todo {
		if ctx.Err() != nil {
			return
		}
		v, err := s.Verify(ctx, id)
		if err != nil {
			s.log.Warn("replay: verification failed to run", slog.String("recording", id), slog.Any("err", err))
			continue
		}
		if v.Result != evidence.Intact.String() {
			s.log.Error("replay: recording does not verify", slog.String("recording", id),
				slog.String("result", v.Result), slog.String("reason", v.Report.Reason))
		}
	}
}

// Entry returns the index entry of a recording, indexing it from the
// archive if the index does not have it yet.
func (s *Service) Entry(ctx context.Context, id string) (Entry, error) {
	s.mu.RLock()
	e, ok := s.entries[id]
	s.mu.RUnlock()
	if ok {
		return e, nil
	}
	return s.index(ctx, id)
}

// Search returns the entries matching q, newest first, and whether the
// limit cut the list.
func (s *Service) Search(_ context.Context, q Query) ([]Entry, bool, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	limit = min(limit, MaxSearchLimit)
	s.mu.RLock()
	out := make([]Entry, 0, min(len(s.entries), limit+1))
	for _, e := range s.entries {
		if q.Match(e) {
			out = append(out, e)
		}
	}
	s.mu.RUnlock()
	sortEntries(out)
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// manifestCache keeps recently read manifests, so the many Range requests
// of one replay do not each read and decode the manifest.
type manifestCache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[string]cachedManifest
}

type cachedManifest struct {
	m       *evidence.Manifest
	version string
	at      time.Time
}

func (c *manifestCache) get(id string, now time.Time) (*evidence.Manifest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.Sub(e.at) > c.ttl || now.Before(e.at) {
		return nil, false
	}
	return e.m, true
}

func (c *manifestCache) put(id string, m *evidence.Manifest, version string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if now.Sub(e.at) > c.ttl || len(c.m) >= c.max {
				delete(c.m, k)
			}
		}
	}
	c.m[id] = cachedManifest{m: m, version: version, at: now}
}
