package signaling

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
)

// newParticipantID returns "P" and 12 base32 characters (60 random bits):
// unique enough per room and easy to read in logs.
func newParticipantID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("signaling: participant id: %w", err)
	}
	return "P" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:12], nil
}
