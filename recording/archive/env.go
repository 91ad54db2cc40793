package archive

import (
	"fmt"
	"strconv"
	"strings"
)

// Environment variables read by S3ConfigFromEnv.
const (
	EnvS3Endpoint      = "DUCHA_S3_ENDPOINT"
	EnvS3AccessKey     = "DUCHA_S3_ACCESS_KEY"
	EnvS3SecretKey     = "DUCHA_S3_SECRET_KEY"
	EnvS3Bucket        = "DUCHA_S3_BUCKET"
	EnvS3TLS           = "DUCHA_S3_TLS"
	EnvS3Region        = "DUCHA_S3_REGION"
	EnvS3RetentionMode = "DUCHA_S3_RETENTION_MODE"
	EnvS3RetentionDays = "DUCHA_S3_RETENTION_DAYS"
)

// S3ConfigFromEnv reads DUCHA_S3_* through getenv (os.Getenv in production, a
// map in tests). ok is false when no endpoint is set, meaning "use the
// directory archive". The bucket defaults to "ducha-evidence".
func S3ConfigFromEnv(getenv func(string) string) (cfg S3Config, ok bool, err error) {
	cfg.Endpoint = strings.TrimSpace(getenv(EnvS3Endpoint))
	if cfg.Endpoint == "" {
		return S3Config{}, false, nil
	}
	// Accept a URL too (http://minio:9000): the scheme says TLS, unless
	// DUCHA_S3_TLS says otherwise below.
	if rest, ok := strings.CutPrefix(cfg.Endpoint, "https://"); ok {
		cfg.Endpoint, cfg.UseTLS = strings.TrimRight(rest, "/"), true
	} else if rest, ok := strings.CutPrefix(cfg.Endpoint, "http://"); ok {
		cfg.Endpoint = strings.TrimRight(rest, "/")
	}
	cfg.AccessKey = getenv(EnvS3AccessKey)
	cfg.SecretKey = getenv(EnvS3SecretKey)
	cfg.Bucket = getenv(EnvS3Bucket)
	if cfg.Bucket == "" {
		cfg.Bucket = "ducha-evidence"
	}
	cfg.Region = getenv(EnvS3Region)
	if v := getenv(EnvS3TLS); v != "" {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			return S3Config{}, true, fmt.Errorf("%w: %s=%q is not true/false", ErrConfig, EnvS3TLS, v)
		}
		cfg.UseTLS = b
	}
	mode, err := ParseMode(getenv(EnvS3RetentionMode))
	if err != nil {
		return S3Config{}, true, fmt.Errorf("%s: %w", EnvS3RetentionMode, err)
	}
	cfg.Retention.Mode = mode
	if v := getenv(EnvS3RetentionDays); v != "" {
		d, perr := strconv.Atoi(v)
		if perr != nil {
			return S3Config{}, true, fmt.Errorf("%w: %s=%q is not a number of days", ErrConfig, EnvS3RetentionDays, v)
		}
		cfg.Retention.Days = d
	}
	return cfg, true, cfg.Validate()
}
