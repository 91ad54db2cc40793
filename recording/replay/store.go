package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ducha-dev/ducha/recording/archive"
)

// Store keeps the index entries. The index is a cache of the archive
// (Rebuild recreates it from manifests), so a store only has to be durable
// enough not to make every restart rescan the archive.
type Store interface {
	Put(ctx context.Context, e Entry) error
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]Entry, error)
}

// MemStore keeps entries in memory (tests, and nodes that rebuild at start).
type MemStore struct {
	mu sync.Mutex
	m  map[string]Entry
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[string]Entry{}} }

// Put implements Store.
func (s *MemStore) Put(_ context.Context, e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[e.ID] = e
	return nil
}

// Delete implements Store.
func (s *MemStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// List implements Store.
func (s *MemStore) List(context.Context) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e)
	}
	return out, nil
}

// DirStore keeps one JSON file per entry in a directory (the embedded
// default: DATA_DIR/replay-index). Each file is replaced atomically, so a
// crash leaves either the old or the new entry.
type DirStore struct {
	dir string
	mu  sync.Mutex
}

// DefaultDirStorePath is where the index lives inside the data directory.
func DefaultDirStorePath(dataDir string) string { return filepath.Join(dataDir, "replay-index") }

// NewDirStore opens (creating) the directory.
func NewDirStore(dir string) (*DirStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty index directory", ErrConfig)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("replay: index directory: %w", err)
	}
	return &DirStore{dir: dir}, nil
}

// fileName escapes the id into one safe file name component, the way the
// archive escapes key parts (ids come from users).
func (s *DirStore) fileName(id string) (string, error) {
	p, err := archive.EscapePart(id)
	if err != nil {
		return "", fmt.Errorf("replay: entry id: %w", err)
	}
	return filepath.Join(s.dir, p+".json"), nil
}

// Put implements Store.
func (s *DirStore) Put(_ context.Context, e Entry) error {
	name, err := s.fileName(e.ID)
	if err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("replay: encode entry: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.CreateTemp(s.dir, ".entry-*")
	if err != nil {
		return fmt.Errorf("replay: write entry: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		return fmt.Errorf("replay: write entry %s: %w", e.ID, err)
	}
	return nil
}

// Delete implements Store.
func (s *DirStore) Delete(_ context.Context, id string) error {
	name, err := s.fileName(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replay: delete entry %s: %w", id, err)
	}
	return nil
}

// List implements Store. A file that does not decode is skipped: the next
// Sync or Rebuild recreates its entry from the archive.
func (s *DirStore) List(ctx context.Context) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("replay: read index: %w", err)
	}
	out := make([]Entry, 0, len(des))
	for _, d := range des {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".json") || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("replay: read index: %w", err)
		}
		var e Entry
		if json.Unmarshal(b, &e) != nil || e.ID == "" {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}
