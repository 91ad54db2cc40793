package filestore

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/memstore"
)

const (
	snapshotName   = "snapshot.json"
	snapshotTmp    = snapshotName + ".tmp"
	snapshotFormat = 1
)

// snapshotFile is the whole state at the start of journal generation
// Journal: replaying journals Journal, Journal+1... on top of it gives the
// current state.
type snapshotFile struct {
	Format       int                `json:"format"`
	Journal      uint64             `json:"journal"`
	Sessions     []rooms.Session    `json:"sessions"`
	Invitations  []rooms.Invitation `json:"invitations"`
	Participants []savedParticipant `json:"participants"`
	Events       []rooms.Event      `json:"events"`
	Accounts     []rooms.Account    `json:"accounts"`
}

type savedParticipant struct {
	Participant rooms.Participant `json:"participant"`
	Expires     time.Time         `json:"expires,omitzero"`
}

// writeSnapshot replaces dir/snapshot.json with st so that a crash leaves
// either the old snapshot or the new one, never a mix: write a temporary
// file, fsync it, rename it over the old one, fsync the directory. It
// returns the size written.
func writeSnapshot(dir string, gen uint64, st memstore.State) (int64, error) {
	snap := snapshotFile{
		Format:      snapshotFormat,
		Journal:     gen,
		Sessions:    st.Sessions,
		Invitations: st.Invitations,
		Events:      st.Events,
		Accounts:    st.Accounts,
	}
	snap.Participants = make([]savedParticipant, len(st.Participants))
	for i, p := range st.Participants {
		snap.Participants[i] = savedParticipant{Participant: p.Participant, Expires: p.Expires}
	}
	tmp := filepath.Join(dir, snapshotTmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("filestore: snapshot: %w", err)
	}
	cw := &countingWriter{w: f}
	w := bufio.NewWriterSize(cw, 1<<20)
	err = json.NewEncoder(w).Encode(&snap)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, snapshotName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("filestore: snapshot: %w", err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// loadSnapshot puts the snapshot in dir into mem and returns the journal
// generation it stops at (0 without a snapshot) and its size.
func loadSnapshot(dir string, mem *memstore.Store) (gen uint64, size int64, err error) {
	path := filepath.Join(dir, snapshotName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("filestore: open snapshot: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	var snap snapshotFile
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	if err := dec.Decode(&snap); err != nil {
		return 0, 0, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	if snap.Format != snapshotFormat {
		return 0, 0, fmt.Errorf("%w: %s has format %d, this ducha reads %d", ErrCorrupt, path, snap.Format, snapshotFormat)
	}
	if snap.Journal == 0 {
		return 0, 0, fmt.Errorf("%w: %s names no journal generation", ErrCorrupt, path)
	}
	for _, s := range snap.Sessions {
		mem.PutSession(s)
	}
	for _, inv := range snap.Invitations {
		mem.PutInvitation(inv)
	}
	for _, p := range snap.Participants {
		mem.PutParticipant(p.Participant, p.Expires)
	}
	for _, e := range snap.Events {
		if err := mem.PutEvent(e); err != nil {
			return 0, 0, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
		}
	}
	for _, a := range snap.Accounts {
		mem.PutAccount(a)
	}
	return snap.Journal, size, nil
}
