package archive

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// verifyingReader passes exactly size bytes through and checks their SHA-256
// on the read that completes them. On a mismatch that read returns no bytes
// and an error, so an uploading client aborts the request instead of
// finishing it: the store never commits bytes that differ from the digest the
// caller vouched for. It does not rely on the consumer reading to EOF, because
// S3 clients stop at the declared content length.
type verifyingReader struct {
	r        io.Reader
	want     string
	size     int64
	n        int64
	h        hash.Hash
	verified bool
}

func newVerifyingReader(r io.Reader, size int64, wantHex string) *verifyingReader {
	return &verifyingReader{r: r, want: wantHex, size: size, h: sha256.New()}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.n >= v.size {
		if !v.verified {
			if err := v.check(); err != nil {
				return 0, err
			}
		}
		// The body must end here; a longer body is not the object that was hashed.
		var one [1]byte
		k, err := v.r.Read(one[:])
		if k > 0 {
			return 0, fmt.Errorf("%w: body longer than %d bytes", ErrSizeMismatch, v.size)
		}
		if err == nil || errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		return 0, err
	}
	if rest := v.size - v.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	k, err := v.r.Read(p)
	v.h.Write(p[:k])
	v.n += int64(k)
	if v.n == v.size {
		if cerr := v.check(); cerr != nil {
			return 0, cerr
		}
		return k, nil
	}
	if errors.Is(err, io.EOF) {
		return k, fmt.Errorf("%w: body ended after %d of %d bytes", ErrSizeMismatch, v.n, v.size)
	}
	return k, err
}

func (v *verifyingReader) check() error {
	v.verified = true
	if got := hexString(v.h.Sum(nil)); got != v.want {
		return fmt.Errorf("%w: body hashes to %s, expected %s", ErrChecksumMismatch, got, v.want)
	}
	return nil
}

// hashReader hashes everything r yields.
func hashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return hexString(h.Sum(nil)), n, nil
}
