package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/ducha-dev/ducha/recording"
	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/recording/evidence"
	"github.com/ducha-dev/ducha/recording/replay"
	"github.com/ducha-dev/ducha/rooms"
)

// evidenceParts is the recording pipeline: recorder -> spool -> uploader ->
// archive (a directory by default, S3/MinIO with object lock when
// DUCHA_S3_* is set).
type evidenceParts struct {
	recorder *recording.Recorder
	spool    *evidence.Spool
	uploader *evidence.Uploader
	archive  interface {
		archive.Archive
	}
	pubPEM []byte
	// replay is the auditors' index, verification, export and access log.
	replay *replay.Service
}

func setupEvidence(ctx context.Context, cfg config, store rooms.Store, log *slog.Logger) (*evidenceParts, error) {
	key, err := evidence.LoadOrCreateNodeKey(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("node key is not Ed25519")
	}
	pubPEM, err := evidence.PublicKeyPEM(pub)
	if err != nil {
		return nil, err
	}
	policy := archive.Policy{Mode: cfg.RetentionMode, Days: cfg.RetentionDays}
	var arch archive.Archive
	s3cfg, useS3, err := archive.S3ConfigFromEnv(os.Getenv)
	switch {
	case err != nil:
		return nil, fmt.Errorf("DUCHA_S3_*: %w", err)
	case useS3:
		s3, err := archive.NewS3(s3cfg, log.With("component", "archive"))
		if err != nil {
			return nil, err
		}
		if err := s3.EnsureBucket(ctx); err != nil {
			// The node still records into the spool; uploads retry.
			log.Error("archive bucket not ready; recordings wait in the spool", "bucket", s3cfg.Bucket, "err", err)
		}
		arch, policy = s3, s3cfg.Retention
	default:
		d, err := archive.NewDir(archive.DefaultDirRoot(cfg.DataDir))
		if err != nil {
			return nil, err
		}
		arch = d
	}
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	spool, err := evidence.OpenSpool(filepath.Join(cfg.DataDir, "spool"), log.With("component", "spool"))
	if err != nil {
		return nil, err
	}
	idx, err := replay.NewDirStore(replay.DefaultDirStorePath(cfg.DataDir))
	if err != nil {
		return nil, err
	}
	rp, err := replay.New(ctx, replay.Config{Archive: arch, Index: idx, PublicKey: pub, Directory: store,
		AccessRetention: policy, Logger: log.With("component", "replay")})
	if err != nil {
		return nil, err
	}
	// The uploader's writes go through the replay index's watcher, so a
	// sealed recording is searchable at once.
	up, err := evidence.NewUploader(spool, rp.WatchSeals(arch), evidence.UploaderConfig{Retention: policy, Signer: key,
		NodeID: cfg.Node, Logger: log.With("component", "uploader")})
	if err != nil {
		return nil, err
	}
	rec, err := recording.New(recording.Config{
		WorkDir: filepath.Join(cfg.DataDir, "recording"), Spool: spool,
		Sessions:   recording.StoreSessions{Store: store, RecordAdhoc: cfg.RecordAdhoc},
		MaxSegment: cfg.Segment, Logger: log.With("component", "recorder"),
	})
	if err != nil {
		return nil, err
	}
	log.Info("evidence archive ready", "s3", useS3, "retention", string(policy.Mode), "days", policy.Days,
		"node_key", evidence.Fingerprint(pub))
	return &evidenceParts{recorder: rec, spool: spool, uploader: up, archive: arch, pubPEM: pubPEM, replay: rp}, nil
}

// publicKeyHandler publishes the node's manifest-signing key so anyone can
// verify an exported session.
func (e *evidenceParts) publicKeyHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(e.pubPEM)
}
