package replay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

// Actions recorded in the access log.
const (
	ActionSearch    = "search"
	ActionReplay    = "replay" // the recording's details were opened
	ActionSegment   = "segment"
	ActionVerify    = "verify"
	ActionExport    = "export"
	ActionAccessLog = "access_log" // an administrator read the log
)

// Outcomes of an access.
const (
	OutcomeGranted = "granted"
	OutcomeDenied  = "denied"
)

// Access is one entry of the access log: who did what, when, from where.
type Access struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// Account is the account id; Username and Role as they were then.
	Account  string `json:"account"`
	Username string `json:"username"`
	Role     string `json:"role"`
	Action   string `json:"action"`
	Outcome  string `json:"outcome"`
	// Recording and Segment say what was accessed (Segment is the chain
	// index of a segment fetch).
	Recording string  `json:"recording,omitempty"`
	Segment   *uint64 `json:"segment,omitempty"`
	// Query is a search's parameters as sent; Results how many it returned.
	Query   string `json:"query,omitempty"`
	Results *int   `json:"results,omitempty"`
	// Remote is the TCP peer; ForwardedFor what a proxy claims (not
	// trusted, kept for the record).
	Remote       string `json:"remote"`
	ForwardedFor string `json:"forwardedFor,omitempty"`
	UserAgent    string `json:"userAgent,omitempty"`
	// Key is where the entry is stored in the archive (filled on read).
	Key string `json:"key,omitempty"`
	// Suspect is set on read when the entry's content does not match its
	// key: it was not written by LogAccess.
	Suspect bool `json:"suspect,omitempty"`
}

// accessPrefix is the top of the log in the archive.
const accessPrefix = "access-log/"

// accessStamp sorts lexically in time order and is a safe key component.
const accessStamp = "20060102T150405.000000000Z"

// Limits of AccessLog.
const (
	MaxAccessLogDays    = 92
	DefaultAccessLimit  = 1000
	MaxAccessLogEntries = 10000
	maxAccessEntryBytes = 64 << 10
)

func newAccessID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func accessKey(a Access) string {
	t := a.Time.UTC()
	return fmt.Sprintf("%s%04d/%02d/%02d/%s-%s.json", accessPrefix, t.Year(), t.Month(), t.Day(), t.Format(accessStamp), a.ID)
}

// LogAccess appends a to the access log in the archive, under the archive's
// retention, and returns it as stored. An error wraps ErrAccessLog: the
// caller must then refuse the access.
func (s *Service) LogAccess(ctx context.Context, a Access) (Access, error) {
	if a.Action == "" || a.Account == "" {
		return Access{}, fmt.Errorf("%w: an access needs an action and an account", ErrAccessLog)
	}
	a.ID = newAccessID()
	a.Time = s.cfg.Clock.Now().UTC()
	if a.Outcome == "" {
		a.Outcome = OutcomeGranted
	}
	a.Key = ""
	b, err := json.Marshal(a)
	if err != nil {
		return Access{}, fmt.Errorf("%w: %v", ErrAccessLog, err)
	}
	if len(b) > maxAccessEntryBytes {
		return Access{}, fmt.Errorf("%w: entry of %d bytes", ErrAccessLog, len(b))
	}
	sum := sha256.Sum256(b)
	key := accessKey(a)
	_, err = s.cfg.Archive.Put(ctx, archive.PutRequest{
		Key: key, Body: bytes.NewReader(b), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]),
		Retention: s.cfg.AccessRetention.RetentionAt(a.Time), ContentType: "application/json",
	})
	if err != nil {
		return Access{}, fmt.Errorf("%w: %v", ErrAccessLog, err)
	}
	a.Key = key
	return a, nil
}

// AccessLog reads the entries with Time in [from, to), oldest first, at
// most limit of them (0: DefaultAccessLimit), and says whether more exist.
// The range may span at most MaxAccessLogDays days.
func (s *Service) AccessLog(ctx context.Context, from, to time.Time, limit int) ([]Access, bool, error) {
	if from.IsZero() || to.IsZero() || !to.After(from) {
		return nil, false, fmt.Errorf("%w: need from < to", ErrInvalidRange)
	}
	if to.Sub(from) > MaxAccessLogDays*24*time.Hour {
		return nil, false, fmt.Errorf("%w: at most %d days at a time", ErrInvalidRange, MaxAccessLogDays)
	}
	if limit <= 0 {
		limit = DefaultAccessLimit
	}
	limit = min(limit, MaxAccessLogEntries)
	from, to = from.UTC(), to.UTC()
	lo, hi := from.Format(accessStamp), to.Format(accessStamp)
	var keys []string
	for day := from.Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		prefix := fmt.Sprintf("%s%04d/%02d/%02d/", accessPrefix, day.Year(), day.Month(), day.Day())
		objs, err := s.cfg.Archive.List(ctx, prefix)
		if err != nil {
			return nil, false, fmt.Errorf("replay: list access log: %w", err)
		}
		for _, o := range objs {
			stamp := strings.TrimPrefix(o.Key, prefix)
			if len(stamp) < len(accessStamp) {
				continue
			}
			if st := stamp[:len(accessStamp)]; st >= lo && st < hi {
				keys = append(keys, o.Key)
			}
		}
	}
	slices.Sort(keys)
	more := len(keys) > limit
	if more {
		keys = keys[:limit]
	}
	out := make([]Access, 0, len(keys))
	for _, k := range keys {
		a, err := s.readAccess(ctx, k)
		if err != nil {
			return nil, false, err
		}
		out = append(out, a)
	}
	return out, more, nil
}

// readAccess reads an entry. Entries are written once; a second version
// under the same key would need the archive's own credentials, and in a
// locked bucket the first version stays there anyway. An entry whose content
// does not match its key (id and time) is marked Suspect.
func (s *Service) readAccess(ctx context.Context, key string) (Access, error) {
	rc, _, err := s.cfg.Archive.Get(ctx, key, "")
	if errors.Is(err, archive.ErrNotFound) {
		return Access{}, fmt.Errorf("replay: access log entry %s vanished: %w", key, err)
	}
	if err != nil {
		return Access{}, fmt.Errorf("replay: read access log: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxAccessEntryBytes+1))
	if err != nil {
		return Access{}, fmt.Errorf("replay: read access log: %w", err)
	}
	var a Access
	if err := json.Unmarshal(b, &a); err != nil {
		return Access{}, fmt.Errorf("replay: access log entry %s is not JSON: %w", key, err)
	}
	a.Suspect = key != accessKey(a)
	a.Key = key
	return a, nil
}
