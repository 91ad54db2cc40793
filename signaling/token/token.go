// Package token issues and verifies ducha join tokens: short JWTs signed
// with the node's Ed25519 key that let one identity join one room with one
// role. The join link carries the token in its URL fragment so it never
// reaches server logs or Referer headers.
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// IssuerClaim and AudienceClaim pin the token to this use: a JWT that ducha signs
	// for another purpose later can never be replayed as a join token.
	IssuerClaim   = "ducha"
	AudienceClaim = "ducha-join"

	// Roles, mirroring sfu.Role*; kept here so the token package stays a
	// leaf that cmd/ducha token can use without the media stack.
	RoleSupervisor = "supervisor"
	RoleCounty     = "county"
	RoleObserver   = "observer"

	// NotBeforeLeeway absorbs clock skew between the node that issued the
	// link and the one that checks it. Expiry gets no leeway: a link must
	// not outlive what its issuer chose.
	NotBeforeLeeway = 30 * time.Second

	maxFieldBytes = 128
	maxRoomBytes  = 64
	// maxTokenBytes bounds the work done on untrusted input; real tokens
	// are a few hundred bytes.
	maxTokenBytes = 4096
)

// Claims is what a join token says.
type Claims struct {
	Room      string
	Identity  string // stable user or unit code (JWT sub)
	Name      string // display name
	Role      string // supervisor, county or observer
	NotBefore time.Time
	ExpiresAt time.Time
	ID        string // jti
	// Invitation is the id of the invitation a county link was issued for
	// (claim "inv"), so the server can refuse the link once the invitation is
	// revoked even though the token itself is still validly signed. Optional.
	Invitation string
	// Unit is the invited unit's code (claim "unit"). Optional.
	Unit string
}

// wireClaims is the JWT payload.
type wireClaims struct {
	Room string `json:"room"`
	Name string `json:"name"`
	Role string `json:"role"`
	Inv  string `json:"inv,omitempty"`
	Unit string `json:"unit,omitempty"`
	jwt.RegisteredClaims
}

// ValidRoomID reports whether s is a room id: 1 to 64 of [A-Za-z0-9_-].
func ValidRoomID(s string) bool {
	if len(s) == 0 || len(s) > maxRoomBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidRole reports whether r is one of the three roles.
func ValidRole(r string) bool {
	return r == RoleSupervisor || r == RoleCounty || r == RoleObserver
}

// checkText validates identity and name: short printable UTF-8.
func checkText(field, s string, required bool) error {
	if required && s == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if len(s) > maxFieldBytes {
		return fmt.Errorf("%s is %d bytes, at most %d allowed", field, len(s), maxFieldBytes)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s contains a control character", field)
		}
	}
	return nil
}

// Issuer signs join tokens.
type Issuer struct {
	key ed25519.PrivateKey
	now func() time.Time
}

// NewIssuer returns an Issuer signing with key; now is the clock (nil means
// time.Now).
func NewIssuer(key ed25519.PrivateKey, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{key: key, now: now}
}

// Issue signs c. ExpiresAt is required; NotBefore defaults to now and ID to
// a random value.
func (i *Issuer) Issue(c Claims) (string, error) {
	if len(i.key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("%w: issuer has no Ed25519 private key", ErrBadClaims)
	}
	if !ValidRole(c.Role) {
		return "", fmt.Errorf("%w: %q", ErrBadRole, c.Role)
	}
	if !ValidRoomID(c.Room) {
		return "", fmt.Errorf("%w: room id %q must be 1-64 of A-Z a-z 0-9 _ -", ErrBadClaims, c.Room)
	}
	if err := checkText("identity", c.Identity, true); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadClaims, err)
	}
	if err := checkText("name", c.Name, false); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadClaims, err)
	}
	if err := checkText("invitation", c.Invitation, false); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadClaims, err)
	}
	if err := checkText("unit", c.Unit, false); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadClaims, err)
	}
	now := i.now()
	if c.ExpiresAt.IsZero() {
		return "", fmt.Errorf("%w: ExpiresAt is required", ErrBadClaims)
	}
	if !c.ExpiresAt.After(now) {
		return "", fmt.Errorf("%w: ExpiresAt %v is not in the future", ErrBadClaims, c.ExpiresAt)
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = now
	}
	if !c.ExpiresAt.After(c.NotBefore) {
		return "", fmt.Errorf("%w: ExpiresAt is not after NotBefore", ErrBadClaims)
	}
	if c.ID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("token: random id: %w", err)
		}
		c.ID = hex.EncodeToString(b[:])
	} else if err := checkText("id", c.ID, true); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadClaims, err)
	}
	wc := wireClaims{
		Room: c.Room,
		Name: c.Name,
		Role: c.Role,
		Inv:  c.Invitation,
		Unit: c.Unit,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    IssuerClaim,
			Subject:   c.Identity,
			Audience:  jwt.ClaimStrings{AudienceClaim},
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			NotBefore: jwt.NewNumericDate(c.NotBefore),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        c.ID,
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, wc).SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return s, nil
}

// Verifier checks join tokens against one public key.
type Verifier struct {
	pub    ed25519.PublicKey
	now    func() time.Time
	parser *jwt.Parser
}

// NewVerifier returns a Verifier for tokens signed by pub's private key; now
// is the clock (nil means time.Now).
func NewVerifier(pub ed25519.PublicKey, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{
		pub: pub,
		now: now,
		// Only EdDSA: this closes the alg=none and HS256-with-public-key
		// confusions. Time claims are checked below because the library's
		// leeway would also extend exp.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithoutClaimsValidation(),
			jwt.WithStrictDecoding(),
		),
	}
}

// Verify checks token for room and returns its claims. Errors wrap
// ErrInvalid, ErrExpired, ErrWrongRoom or ErrBadRole.
func (v *Verifier) Verify(token, room string) (Claims, error) {
	if token == "" {
		return Claims{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(token) > maxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes, too long", ErrInvalid, len(token))
	}
	if len(v.pub) != ed25519.PublicKeySize {
		return Claims{}, fmt.Errorf("%w: verifier has no Ed25519 public key", ErrInvalid)
	}
	var wc wireClaims
	_, err := v.parser.ParseWithClaims(token, &wc, func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return v.pub, nil
	})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if wc.Issuer != IssuerClaim {
		return Claims{}, fmt.Errorf("%w: issuer %q", ErrInvalid, wc.Issuer)
	}
	if !hasAudience(wc.Audience) {
		return Claims{}, fmt.Errorf("%w: audience %q", ErrInvalid, []string(wc.Audience))
	}
	if wc.ExpiresAt == nil {
		return Claims{}, fmt.Errorf("%w: no exp", ErrInvalid)
	}
	now := v.now()
	if !now.Before(wc.ExpiresAt.Time) {
		return Claims{}, fmt.Errorf("%w: expired at %v", ErrExpired, wc.ExpiresAt.Time)
	}
	if wc.NotBefore != nil && now.Add(NotBeforeLeeway).Before(wc.NotBefore.Time) {
		return Claims{}, fmt.Errorf("%w: not valid before %v", ErrExpired, wc.NotBefore.Time)
	}
	if err := checkText("sub", wc.Subject, true); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkText("name", wc.Name, false); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkText("inv", wc.Inv, false); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := checkText("unit", wc.Unit, false); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if wc.Room != room {
		return Claims{}, fmt.Errorf("%w: token is for room %q", ErrWrongRoom, wc.Room)
	}
	if !ValidRole(wc.Role) {
		return Claims{}, fmt.Errorf("%w: %q", ErrBadRole, wc.Role)
	}
	c := Claims{
		Room:       wc.Room,
		Identity:   wc.Subject,
		Name:       wc.Name,
		Role:       wc.Role,
		ExpiresAt:  wc.ExpiresAt.Time,
		ID:         wc.ID,
		Invitation: wc.Inv,
		Unit:       wc.Unit,
	}
	if wc.NotBefore != nil {
		c.NotBefore = wc.NotBefore.Time
	}
	return c, nil
}

func hasAudience(aud jwt.ClaimStrings) bool {
	for _, a := range aud {
		if a == AudienceClaim {
			return true
		}
	}
	return false
}

// JoinURL builds the link a participant opens. The token rides in the
// fragment, which browsers never send to the server.
func JoinURL(base, room, token string) string {
	return strings.TrimRight(base, "/") + "/join/" + url.PathEscape(room) + "#t=" + token
}
