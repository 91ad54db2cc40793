package filestore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ducha-dev/ducha/rooms/memstore"
)

// loaded is what Open learnt from the directory.
type loaded struct {
	nextGen      uint64 // generation of the journal to create
	journalBytes int64  // bytes of the journals the snapshot does not cover
	snapBytes    int64
	records      int // journal records replayed
	journals     int // journal files replayed
}

// load rebuilds mem from the snapshot and the journals after it.
func load(dir string, mem *memstore.Store, log *slog.Logger) (loaded, error) {
	var l loaded
	// A leftover temporary snapshot is an interrupted compaction; the
	// journals it would have replaced are still there.
	if err := os.Remove(filepath.Join(dir, snapshotTmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return l, fmt.Errorf("filestore: %w", err)
	}
	snapGen, snapBytes, err := loadSnapshot(dir, mem)
	if err != nil {
		return l, err
	}
	l.snapBytes = snapBytes
	gens, err := listJournals(dir)
	if err != nil {
		return l, err
	}
	l.nextGen = max(snapGen, 1)
	for i, gen := range gens {
		path := filepath.Join(dir, journalName(gen))
		if gen < snapGen {
			// The snapshot holds these; the compaction that wrote it
			// stopped before deleting them.
			if err := os.Remove(path); err != nil {
				return l, fmt.Errorf("filestore: remove covered journal: %w", err)
			}
			log.Info("removed journal already in the snapshot", "file", path)
			continue
		}
		n, size, err := replayJournal(path, mem, i == len(gens)-1, log)
		if err != nil {
			return l, err
		}
		l.records += n
		l.journalBytes += size
		l.journals++
		l.nextGen = gen + 1
	}
	return l, nil
}

// listJournals returns the generations of the journal files in dir, in
// order.
func listJournals(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	var gens []uint64
	for _, e := range ents {
		name := e.Name()
		num, ok := strings.CutPrefix(name, "journal-")
		if !ok {
			continue
		}
		num, ok = strings.CutSuffix(num, ".jsonl")
		if !ok {
			continue
		}
		gen, err := strconv.ParseUint(num, 10, 64)
		if err != nil || gen == 0 {
			return nil, fmt.Errorf("%w: unexpected journal file %s", ErrCorrupt, name)
		}
		gens = append(gens, gen)
	}
	slices.Sort(gens)
	return gens, nil
}

// replayJournal applies the records of one journal file to mem and returns
// how many there were and the size kept. Only the last file may end with an
// interrupted write (every earlier one was fsync'ed whole before the next
// was created); that tail is moved aside and cut off.
func replayJournal(path string, mem *memstore.Store, last bool, log *slog.Logger) (int, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("filestore: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var n uint64
	for line := 1; ; line++ {
		b, rerr := r.ReadBytes('\n')
		if len(b) == 0 && errors.Is(rerr, io.EOF) {
			return int(n), off, nil
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return 0, 0, fmt.Errorf("filestore: read %s: %w", path, rerr)
		}
		rec, derr := decodeRecord(b)
		if derr != nil {
			rest, err := io.ReadAll(r)
			if err != nil {
				return 0, 0, fmt.Errorf("filestore: read %s: %w", path, err)
			}
			if at := firstRecord(rest); at > 0 {
				return 0, 0, fmt.Errorf("%w: %s line %d: %v, yet a good record follows at line %d; "+
					"an interrupted write only damages the end of a journal, so this file was altered or the disk is failing",
					ErrCorrupt, path, line, derr, line+at)
			}
			if !last {
				return 0, 0, fmt.Errorf("%w: %s line %d: %v, in a journal that a later one follows; "+
					"only the newest journal can end with an interrupted write", ErrCorrupt, path, line, derr)
			}
			if err := cutTornTail(path, off, append(b, rest...), log); err != nil {
				return 0, 0, err
			}
			log.Warn("journal ends with an interrupted write; kept every record before it",
				"file", path, "line", line, "records", n, "dropped_bytes", len(b)+len(rest), "error", derr)
			return int(n), off, nil
		}
		if rec.N != n+1 {
			return 0, 0, fmt.Errorf("%w: %s line %d holds record %d, want %d", ErrCorrupt, path, line, rec.N, n+1)
		}
		if err := apply(mem, rec); err != nil {
			return 0, 0, fmt.Errorf("%w: %s line %d: %w", ErrCorrupt, path, line, err)
		}
		n++
		off += int64(len(b))
	}
}

// firstRecord returns the 1-based line within rest of the first line that
// decodes as a record, or 0.
func firstRecord(rest []byte) int {
	for i, line := range bytes.Split(rest, []byte("\n")) {
		if _, err := decodeRecord(line); err == nil {
			return i + 1
		}
	}
	return 0
}

// cutTornTail keeps the bytes of an interrupted write beside the journal
// (evidence is never thrown away silently) and truncates the journal to its
// last whole record, so that the next generation starts after a clean file.
func cutTornTail(path string, off int64, tail []byte, log *slog.Logger) error {
	aside := fmt.Sprintf("%s.torn-%d", path, off)
	if err := os.WriteFile(aside, tail, 0o600); err != nil {
		return fmt.Errorf("filestore: keep torn tail: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("filestore: truncate torn journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	log.Info("torn journal tail kept aside", "file", aside)
	return nil
}

// decodeRecord parses one journal line and checks it carries what its
// operation needs.
func decodeRecord(line []byte) (*record, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	var rec record
	if err := json.Unmarshal(line, &rec); err != nil {
		return nil, err
	}
	ok := false
	switch rec.Op {
	case opSession:
		ok = rec.Session != nil
	case opInvitations:
		ok = len(rec.Invitations) > 0
	case opParticipant:
		ok = rec.Participant != nil
	case opEvent:
		ok = rec.Event != nil
	case opAccount:
		ok = rec.Account != nil
	}
	if !ok || rec.N == 0 {
		return nil, fmt.Errorf("record %d: unknown or empty operation %q", rec.N, rec.Op)
	}
	return &rec, nil
}

// apply puts what rec records into mem.
func apply(mem *memstore.Store, rec *record) error {
	switch rec.Op {
	case opSession:
		mem.PutSession(*rec.Session)
	case opInvitations:
		for _, inv := range rec.Invitations {
			mem.PutInvitation(inv)
		}
	case opParticipant:
		mem.PutParticipant(*rec.Participant, rec.Expires)
	case opEvent:
		return mem.PutEvent(*rec.Event)
	case opAccount:
		mem.PutAccount(*rec.Account)
	}
	return nil
}
