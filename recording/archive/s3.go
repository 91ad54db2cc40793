package archive

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config is how to reach an S3-compatible bucket with object lock.
type S3Config struct {
	Endpoint  string // host:port, no scheme
	AccessKey string
	SecretKey string
	Bucket    string
	UseTLS    bool
	// Region defaults to us-east-1; setting it spares a bucket-location round trip.
	Region string
	// Retention becomes the bucket's default lock rule when EnsureBucket finds
	// none, so even an object written without explicit retention is protected.
	Retention Policy
	// MaxRetries bounds minio-go's own retries of one request (default 2): the
	// uploader retries with its own backoff, and a long hidden retry loop would
	// hide that the archive is down.
	MaxRetries int
}

// Validate checks the configuration is complete.
func (c S3Config) Validate() error {
	var missing []string
	if c.Endpoint == "" {
		missing = append(missing, "endpoint")
	}
	if c.AccessKey == "" {
		missing = append(missing, "access key")
	}
	if c.SecretKey == "" {
		missing = append(missing, "secret key")
	}
	if c.Bucket == "" {
		missing = append(missing, "bucket")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: S3 %s not set", ErrConfig, strings.Join(missing, ", "))
	}
	if strings.Contains(c.Endpoint, "://") {
		return fmt.Errorf("%w: S3 endpoint %q must be host:port without scheme (use the TLS setting)", ErrConfig, c.Endpoint)
	}
	return c.Retention.Validate()
}

// S3 is the archive over an S3 bucket created with object lock.
type S3 struct {
	client *minio.Client
	cfg    S3Config
	log    *slog.Logger
}

// NewS3 builds the client; it does not contact the server (see EnsureBucket).
func NewS3(cfg S3Config, log *slog.Logger) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 2
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseTLS,
		Region: cfg.Region,
		// Required for the SHA-256 trailer that the server checks on every write.
		TrailingHeaders: true,
		MaxRetries:      cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return &S3{client: client, cfg: cfg, log: log.With(slog.String("bucket", cfg.Bucket))}, nil
}

// Bucket returns the bucket name.
func (s *S3) Bucket() string { return s.cfg.Bucket }

// EnsureBucket creates the bucket with object lock, or checks that an existing
// one has it. Object lock can only be turned on at creation, so a bucket
// without it is an error the operator must fix (a new bucket), never ignored.
func (s *S3) EnsureBucket(ctx context.Context) error {
	exists, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("archive: check bucket %s: %w", s.cfg.Bucket, err)
	}
	if !exists {
		err := s.client.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region, ObjectLocking: true})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return fmt.Errorf("archive: create bucket %s with object lock: %w", s.cfg.Bucket, err)
		}
		s.log.Info("archive: bucket created with object lock")
	}
	enabled, mode, _, _, err := s.client.GetObjectLockConfig(ctx, s.cfg.Bucket)
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "ObjectLockConfigurationNotFoundError" {
			return fmt.Errorf("%w: bucket %s exists without object lock; object lock can only be enabled when a bucket is created, so create a new bucket (or let ducha create it)", ErrNoObjectLock, s.cfg.Bucket)
		}
		return fmt.Errorf("archive: read object lock of %s: %w", s.cfg.Bucket, err)
	}
	if enabled != "Enabled" {
		return fmt.Errorf("%w: bucket %s reports object lock %q", ErrNoObjectLock, s.cfg.Bucket, enabled)
	}
	if mode == nil && s.cfg.Retention.Mode != NoRetention {
		m := minio.RetentionMode(s.cfg.Retention.Mode)
		days := uint(s.cfg.Retention.Days)
		unit := minio.Days
		if err := s.client.SetObjectLockConfig(ctx, s.cfg.Bucket, &m, &days, &unit); err != nil {
			return fmt.Errorf("archive: set default retention on %s: %w", s.cfg.Bucket, err)
		}
	}
	return nil
}

const metaSHA256 = "Ducha-Sha256"

// Put implements Archive. The body is streamed once through a verifying reader
// (the request is aborted if the bytes do not hash to req.SHA256), the server
// checks the SHA-256 trailer against what it received, and the checksum the
// server reports back must equal the one we were given.
func (s *S3) Put(ctx context.Context, req PutRequest) (ObjectInfo, error) {
	if err := req.validate(); err != nil {
		return ObjectInfo{}, err
	}
	opts := minio.PutObjectOptions{
		ContentType:  req.ContentType,
		Checksum:     minio.ChecksumSHA256,
		UserMetadata: map[string]string{metaSHA256: req.SHA256},
		// One request per object so the checksum returned is of the whole
		// object, not a composite of parts; segments are far below 5 GiB.
		DisableMultipart: true,
	}
	if !req.Retention.IsZero() {
		opts.Mode = minio.RetentionMode(req.Retention.Mode)
		opts.RetainUntilDate = req.Retention.Until.UTC()
	}
	vr := newVerifyingReader(req.Body, req.Size, req.SHA256)
	info, err := s.client.PutObject(ctx, s.cfg.Bucket, req.Key, vr, req.Size, opts)
	if err != nil {
		// The verifying reader's verdict is the precise cause; the HTTP layer
		// would only say the body was cut short.
		if vr.verified || vr.n == vr.size {
			if cerr := vr.check(); cerr != nil {
				return ObjectInfo{}, fmt.Errorf("archive: put %s: %w", req.Key, cerr)
			}
		}
		return ObjectInfo{}, fmt.Errorf("archive: put %s: %w", req.Key, mapS3Error(err, ""))
	}
	if info.ChecksumSHA256 != "" {
		got, derr := base64.StdEncoding.DecodeString(info.ChecksumSHA256)
		if derr != nil || hex.EncodeToString(got) != req.SHA256 {
			return ObjectInfo{}, fmt.Errorf("%w: server stored %s with checksum %s, expected %s", ErrChecksumMismatch, req.Key, info.ChecksumSHA256, req.SHA256)
		}
	}
	s.log.Debug("archive: stored", slog.String("key", req.Key), slog.String("version", info.VersionID), slog.Int64("size", req.Size))
	return ObjectInfo{
		Key: req.Key, VersionID: normVersion(info.VersionID), SHA256: req.SHA256, Size: req.Size,
		Modified: info.LastModified, Retention: req.Retention,
	}, nil
}

// Stat implements Archive.
func (s *S3) Stat(ctx context.Context, key, versionID string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	oi, err := s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{VersionID: versionID, Checksum: true})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("archive: stat %s: %w", key, mapS3Error(err, versionID))
	}
	return s.toInfo(key, oi), nil
}

func (s *S3) toInfo(key string, oi minio.ObjectInfo) ObjectInfo {
	info := ObjectInfo{Key: key, VersionID: normVersion(oi.VersionID), Size: oi.Size, Modified: oi.LastModified}
	if b, err := base64.StdEncoding.DecodeString(oi.ChecksumSHA256); err == nil && len(b) == 32 {
		info.SHA256 = hex.EncodeToString(b)
	} else if v := oi.UserMetadata[metaSHA256]; v != "" {
		info.SHA256 = v
	}
	h := oi.Metadata
	if m := h.Get("X-Amz-Object-Lock-Mode"); m != "" {
		info.Retention.Mode = Mode(strings.ToUpper(m))
		if t, err := time.Parse(time.RFC3339, h.Get("X-Amz-Object-Lock-Retain-Until-Date")); err == nil {
			info.Retention.Until = t
		}
	}
	info.LegalHold = strings.EqualFold(h.Get("X-Amz-Object-Lock-Legal-Hold"), "ON")
	return info
}

// Get implements Archive. The version is resolved by Stat first so the bytes
// returned are those of the version described, even if a new one lands between.
func (s *S3) Get(ctx context.Context, key, versionID string) (io.ReadCloser, ObjectInfo, error) {
	info, err := s.Stat(ctx, key, versionID)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{VersionID: info.VersionID})
	if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("archive: get %s: %w", key, mapS3Error(err, info.VersionID))
	}
	return obj, info, nil
}

// List implements Archive.
func (s *S3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	var out []ObjectInfo
	for oi := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if oi.Err != nil {
			return nil, fmt.Errorf("archive: list %q: %w", prefix, mapS3Error(oi.Err, ""))
		}
		if !oi.IsLatest || oi.IsDeleteMarker {
			continue
		}
		out = append(out, ObjectInfo{Key: oi.Key, VersionID: normVersion(oi.VersionID), Size: oi.Size, Modified: oi.LastModified})
	}
	return out, nil
}

// SetLegalHold implements Archive.
func (s *S3) SetLegalHold(ctx context.Context, key, versionID string, on bool) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	status := minio.LegalHoldDisabled
	if on {
		status = minio.LegalHoldEnabled
	}
	err := s.client.PutObjectLegalHold(ctx, s.cfg.Bucket, key, minio.PutObjectLegalHoldOptions{VersionID: versionID, Status: &status})
	if err != nil {
		return fmt.Errorf("archive: legal hold %s on %s: %w", status, key, mapS3Error(err, versionID))
	}
	return nil
}

// Delete removes one version ("" means the latest, not a delete marker). The
// server refuses versions under retention or legal hold; that refusal is
// reported as ErrRetained. Not part of Archive: ducha never deletes evidence.
func (s *S3) Delete(ctx context.Context, key, versionID string) error {
	info, err := s.Stat(ctx, key, versionID)
	if err != nil {
		return err
	}
	err = s.client.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID})
	if err != nil {
		return fmt.Errorf("archive: delete %s version %s: %w", key, info.VersionID, mapS3Error(err, info.VersionID))
	}
	return nil
}

// normVersion maps S3's "null" version (unversioned bucket) to "".
func normVersion(v string) string {
	if v == "null" {
		return ""
	}
	return v
}

// mapS3Error turns the S3 answers callers act on into sentinels, keeping the
// original text.
func mapS3Error(err error, versionID string) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchVersion" || resp.Code == "NoSuchObject":
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case resp.StatusCode == http.StatusMethodNotAllowed && versionID != "":
		// The version is a delete marker.
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case resp.StatusCode == http.StatusBadRequest && versionID != "" && resp.Code == "InvalidArgument":
		// A version id the server cannot even parse names nothing it holds.
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case resp.Code == "ObjectLocked" || strings.Contains(resp.Message, "WORM"):
		return fmt.Errorf("%w: %v", ErrRetained, err)
	case resp.Code == "ObjectLockConfigurationNotFoundError" || resp.Code == "InvalidBucketState":
		return fmt.Errorf("%w: %v", ErrNoObjectLock, err)
	}
	return err
}
