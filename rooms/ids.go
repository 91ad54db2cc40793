package rooms

import "crypto/rand"

// NewID returns a random 128-bit identifier as 26 base32 characters. IDs are
// unguessable because invitation IDs double as link tokens.
func NewID() string { return rand.Text() }
