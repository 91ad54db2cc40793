package evidence

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ducha-dev/ducha/recording/archive"
)

// Exit codes of `ducha verify`.
const (
	ExitIntact        = 0
	ExitAltered       = 1
	ExitCouldNotCheck = 2
)

const verifyUsage = `usage: ducha verify [--data-dir DIR | --s3-endpoint HOST:PORT --s3-bucket B ...] [--pubkey FILE] [--json] [--lang zh|en] SESSION

Checks an archived session against its signed manifest: the Ed25519 signature,
every record of the hash chain, and the SHA-256 of every segment recomputed
from the archive. Exit status: 0 intact, 1 altered or missing, 2 could not check.

The archive is the directory archive under --data-dir, or the S3 bucket given by
--s3-* flags or the DUCHA_S3_* environment (flags win). Without --pubkey the
public half of DIR/keys/node-ed25519.pem is used.

`

// RunVerifyCLI implements `ducha verify`; args exclude the "verify" word.
func RunVerifyCLI(args []string, stdout, stderr io.Writer) int {
	return runVerify(args, stdout, stderr, os.Getenv)
}

type verifyFlags struct {
	dataDir, pubkey, lang    string
	endpoint, access, secret string
	bucket, region           string
	tls, asJSON              bool
	timeout                  time.Duration
	set                      map[string]bool
}

func runVerify(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var f verifyFlags
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, verifyUsage); fs.PrintDefaults() }
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory holding the directory archive (and the node key)")
	fs.StringVar(&f.pubkey, "pubkey", "", "PEM file with the node's Ed25519 public key")
	fs.StringVar(&f.endpoint, "s3-endpoint", "", "S3 endpoint host:port (default $DUCHA_S3_ENDPOINT)")
	fs.StringVar(&f.access, "s3-access-key", "", "S3 access key (default $DUCHA_S3_ACCESS_KEY)")
	fs.StringVar(&f.secret, "s3-secret-key", "", "S3 secret key (default $DUCHA_S3_SECRET_KEY; prefer the environment)")
	fs.StringVar(&f.bucket, "s3-bucket", "", "S3 bucket (default $DUCHA_S3_BUCKET or ducha-evidence)")
	fs.StringVar(&f.region, "s3-region", "", "S3 region (default $DUCHA_S3_REGION)")
	fs.BoolVar(&f.tls, "s3-tls", false, "use HTTPS for S3 (default $DUCHA_S3_TLS)")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&f.lang, "lang", "", "report language: zh (default) or en (default $DUCHA_LANG)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Minute, "give up after this long")

	// Flags may follow the session id too (ducha verify S1 --json).
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			// -h included: a script must never read help as "intact".
			return ExitCouldNotCheck
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "ducha verify: exactly one SESSION id is needed")
		fs.Usage()
		return ExitCouldNotCheck
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if f.lang == "" {
		f.lang = getenv("DUCHA_LANG")
	}
	if f.lang = trimSpaceLower(f.lang); f.lang != LangEN {
		f.lang = LangZH
	}

	src, desc, err := f.openArchive(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "ducha verify: %v\n", err)
		return ExitCouldNotCheck
	}
	pub, err := f.publicKey()
	if err != nil {
		fmt.Fprintf(stderr, "ducha verify: %v\n", err)
		return ExitCouldNotCheck
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	rep := Verify(ctx, src, pos[0], pub)
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "ducha verify: %v\n", err)
			return ExitCouldNotCheck
		}
	} else {
		fmt.Fprintf(stdout, "%s\n%s", desc, rep.Text(f.lang))
	}
	switch rep.Result {
	case Intact:
		return ExitIntact
	case Altered:
		return ExitAltered
	}
	return ExitCouldNotCheck
}

// openArchive picks the archive: explicit S3 flags, else --data-dir, else the
// DUCHA_S3_* environment, else DUCHA_DATA_DIR.
func (f *verifyFlags) openArchive(getenv func(string) string) (Source, string, error) {
	s3Flags := f.set["s3-endpoint"]
	if !s3Flags && f.dataDir == "" {
		if getenv(archive.EnvS3Endpoint) != "" {
			s3Flags = true
		} else {
			f.dataDir = getenv("DUCHA_DATA_DIR")
		}
	}
	if !s3Flags {
		if f.dataDir == "" {
			return nil, "", errors.New("no archive: give --data-dir DIR or --s3-endpoint (or set DUCHA_S3_ENDPOINT)")
		}
		root := archive.DefaultDirRoot(f.dataDir)
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			return nil, "", fmt.Errorf("no archive directory at %s", root)
		}
		d, err := archive.NewDir(root)
		if err != nil {
			return nil, "", err
		}
		return d, "archive: " + root, nil
	}
	// Environment first, flags over it. Retention does not matter: verify only reads.
	cfg := archive.S3Config{
		Endpoint: getenv(archive.EnvS3Endpoint), AccessKey: getenv(archive.EnvS3AccessKey),
		SecretKey: getenv(archive.EnvS3SecretKey), Bucket: getenv(archive.EnvS3Bucket),
		Region: getenv(archive.EnvS3Region), UseTLS: trimSpaceLower(getenv(archive.EnvS3TLS)) == "true",
	}
	override := func(name string, dst *string, v string) {
		if f.set[name] {
			*dst = v
		}
	}
	override("s3-endpoint", &cfg.Endpoint, f.endpoint)
	override("s3-access-key", &cfg.AccessKey, f.access)
	override("s3-secret-key", &cfg.SecretKey, f.secret)
	override("s3-bucket", &cfg.Bucket, f.bucket)
	override("s3-region", &cfg.Region, f.region)
	if f.set["s3-tls"] {
		cfg.UseTLS = f.tls
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "ducha-evidence"
	}
	s, err := archive.NewS3(cfg, nil)
	if err != nil {
		return nil, "", err
	}
	scheme := "http"
	if cfg.UseTLS {
		scheme = "https"
	}
	return s, fmt.Sprintf("archive: %s://%s/%s", scheme, cfg.Endpoint, cfg.Bucket), nil
}

func (f *verifyFlags) publicKey() (ed25519.PublicKey, error) {
	path := f.pubkey
	if path == "" {
		if f.dataDir == "" {
			return nil, errors.New("no public key: give --pubkey FILE (the node's published node-ed25519.pub.pem)")
		}
		path = NodeKeyPath(f.dataDir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	pub, err := ParsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

func trimSpaceLower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
