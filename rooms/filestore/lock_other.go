//go:build !unix

package filestore

import (
	"errors"
	"fmt"
	"os"
)

// lockDir refuses: without flock two servers could write one journal.
func lockDir(dir string) (*os.File, error) {
	return nil, fmt.Errorf("filestore: cannot lock %s on this system: %w", dir, errors.ErrUnsupported)
}

func unlockDir(f *os.File) error { return f.Close() }
