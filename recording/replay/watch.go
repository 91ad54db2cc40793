package replay

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

// Putter is the one method of an archive the evidence uploader uses
// (evidence.Putter).
type Putter interface {
	Put(ctx context.Context, req archive.PutRequest) (archive.ObjectInfo, error)
}

// WatchSeals wraps the archive the uploader writes to: when a manifest's
// signature is archived (the uploader's last step of sealing a recording),
// the recording is indexed at once. Pass the result to evidence.NewUploader
// in place of the archive.
func (s *Service) WatchSeals(p Putter) Putter { return sealWatcher{p: p, s: s} }

type sealWatcher struct {
	p Putter
	s *Service
}

func (w sealWatcher) Put(ctx context.Context, req archive.PutRequest) (archive.ObjectInfo, error) {
	info, err := w.p.Put(ctx, req)
	if err != nil {
		return info, err
	}
	if id, ok := sealedID(req.Key); ok {
		// The upload succeeded whatever happens here; a failure is caught up
		// by Run's next scan.
		// Index even if the uploader is being stopped right now: the
		// recording is sealed, and an index that lags until the next scan
		// would hide it from auditors meanwhile.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if ierr := w.s.Sealed(ictx, id); ierr != nil {
			w.s.log.Warn("replay: sealed recording not indexed yet", slog.String("recording", id), slog.Any("err", ierr))
		}
	}
	return info, nil
}

// sealedID recognises sessions/<escaped id>/manifest.sig.
func sealedID(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "sessions/")
	if !ok {
		return "", false
	}
	part, ok := strings.CutSuffix(rest, "/manifest.sig")
	if !ok || strings.Contains(part, "/") {
		return "", false
	}
	id, err := archive.UnescapePart(part)
	return id, err == nil
}
