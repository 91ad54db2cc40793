package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
)

// Segment is one archived segment opened for reading. Body seeks, so an
// HTTP handler can answer Range requests from it (http.ServeContent); the
// caller closes it.
type Segment struct {
	Entry       evidence.SegmentEntry
	Body        io.ReadSeekCloser
	Size        int64
	Modified    time.Time
	ContentType string
	// Name is a file name for the segment (no directories).
	Name string
}

// maxBufferedSegment bounds the fallback for an archive whose reader does
// not seek (neither the directory nor the S3 archive needs it).
const maxBufferedSegment = 256 << 20

// OpenSegment opens the segment at chain index index of a recording: the
// object and version the manifest names, so bytes written under the same key
// later are never served as the recording.
func (s *Service) OpenSegment(ctx context.Context, id string, index uint64) (*Segment, error) {
	m, err := s.manifest(ctx, id)
	if err != nil {
		return nil, err
	}
	var seg *evidence.SegmentEntry
	for i := range m.Segments {
		if m.Segments[i].Index == index {
			seg = &m.Segments[i]
			break
		}
	}
	switch {
	case seg == nil:
		return nil, fmt.Errorf("%w: %s #%d", ErrSegmentNotFound, id, index)
	case seg.State == evidence.StateLost:
		return nil, fmt.Errorf("%w: %s #%d: %s", ErrSegmentLost, id, index, seg.LostReason)
	case seg.Key == "":
		return nil, fmt.Errorf("%w: %s #%d has no object key", ErrSegmentMissing, id, index)
	}
	rc, info, err := s.cfg.Archive.Get(ctx, seg.Key, seg.VersionID)
	if errors.Is(err, archive.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrSegmentMissing, seg.Key)
	}
	if err != nil {
		return nil, fmt.Errorf("replay: open %s: %w", seg.Key, err)
	}
	body, ok := rc.(io.ReadSeekCloser)
	if !ok {
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, maxBufferedSegment+1))
		if err != nil {
			return nil, fmt.Errorf("replay: read %s: %w", seg.Key, err)
		}
		if len(b) > maxBufferedSegment {
			return nil, fmt.Errorf("replay: %s is too large to serve from a non-seekable archive", seg.Key)
		}
		body = nopCloser{bytes.NewReader(b)}
	}
	return &Segment{Entry: *seg, Body: body, Size: info.Size, Modified: seg.End, ContentType: contentType(seg.Container),
		Name: segmentName(*seg)}, nil
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }

func contentType(container string) string {
	switch container {
	case "webm", "":
		return "video/webm"
	case "mp4":
		return "video/mp4"
	}
	return "application/octet-stream"
}

// segmentName is the last component of the segment's key (already escaped
// into safe characters), or a name made from its place in the chain.
func segmentName(seg evidence.SegmentEntry) string {
	for i := len(seg.Key) - 1; i >= 0; i-- {
		if seg.Key[i] == '/' {
			return seg.Key[i+1:]
		}
	}
	ext := seg.Container
	if ext == "" {
		ext = "webm"
	}
	return fmt.Sprintf("segment-%06d.%s", seg.Index, ext)
}
