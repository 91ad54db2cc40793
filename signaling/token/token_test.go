package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func goodClaims() Claims {
	return Claims{
		Room:      "case-2026_0117",
		Identity:  "county-3205",
		Name:      "昆山市信访局",
		Role:      RoleCounty,
		ExpiresAt: t0.Add(2 * time.Hour),
	}
}

// signRaw signs arbitrary claims with key, bypassing Issue's validation, to
// build tokens a careless or hostile issuer might produce.
func signRaw(t *testing.T, key ed25519.PrivateKey, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rawClaims(mod func(*wireClaims)) wireClaims {
	wc := wireClaims{
		Room: "room1",
		Name: "n",
		Role: RoleSupervisor,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    IssuerClaim,
			Subject:   "sup-1",
			Audience:  jwt.ClaimStrings{AudienceClaim},
			ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
			NotBefore: jwt.NewNumericDate(t0),
			IssuedAt:  jwt.NewNumericDate(t0),
			ID:        "j1",
		},
	}
	if mod != nil {
		mod(&wc)
	}
	return wc
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	key := newKey(t)
	iss := NewIssuer(key, fixedClock(t0))
	c := goodClaims()
	tok, err := iss.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(key.Public().(ed25519.PublicKey), fixedClock(t0.Add(time.Minute)))
	got, err := v.Verify(tok, c.Room)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.Room != c.Room || got.Identity != c.Identity || got.Name != c.Name || got.Role != c.Role {
		t.Fatalf("claims mismatch: got %+v want %+v", got, c)
	}
	if !got.ExpiresAt.Equal(c.ExpiresAt) || !got.NotBefore.Equal(t0) {
		t.Fatalf("times: got nbf %v exp %v", got.NotBefore, got.ExpiresAt)
	}
	if len(got.ID) != 32 {
		t.Fatalf("generated jti %q, want 32 hex chars", got.ID)
	}
	tok2, err := iss.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	got2, _ := v.Verify(tok2, c.Room)
	if got2.ID == got.ID {
		t.Fatal("two tokens share a jti")
	}
}

func TestVerifyRejects(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	other := newKey(t)
	good := signRaw(t, key, rawClaims(nil))

	tampered := func() string {
		parts := strings.Split(good, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatal(err)
		}
		m["role"] = RoleSupervisor
		m["room"] = "room2"
		b, _ := json.Marshal(m)
		parts[1] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(parts, ".")
	}()

	algNone := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, rawClaims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	// The classic confusion: HMAC keyed with the public key, which an
	// attacker knows.
	hsConfusion := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, rawClaims(nil)).SignedString([]byte(pub))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	// Strip the signature and keep a valid header/payload.
	noSig := good[:strings.LastIndex(good, ".")+1]

	tests := []struct {
		name  string
		token string
		room  string
		now   time.Time
		want  error
	}{
		{"valid", good, "room1", t0.Add(time.Minute), nil},
		{"forged by other key", signRaw(t, other, rawClaims(nil)), "room1", t0, ErrInvalid},
		{"tampered payload", tampered, "room2", t0, ErrInvalid},
		{"signature stripped", noSig, "room1", t0, ErrInvalid},
		{"expired", good, "room1", t0.Add(time.Hour), ErrExpired},
		{"expired by one second, no leeway", good, "room1", t0.Add(time.Hour + time.Second), ErrExpired},
		{"not yet valid", good, "room1", t0.Add(-time.Minute), ErrExpired},
		{"nbf within 30s skew", good, "room1", t0.Add(-29 * time.Second), nil},
		{"nbf just beyond skew", good, "room1", t0.Add(-31 * time.Second), ErrExpired},
		{"wrong room", good, "room2", t0, ErrWrongRoom},
		{"empty room asked", good, "", t0, ErrWrongRoom},
		{"bad role", signRaw(t, key, rawClaims(func(w *wireClaims) { w.Role = "admin" })), "room1", t0, ErrBadRole},
		{"empty role", signRaw(t, key, rawClaims(func(w *wireClaims) { w.Role = "" })), "room1", t0, ErrBadRole},
		{"alg none", algNone, "room1", t0, ErrInvalid},
		{"HS256 keyed with public key", hsConfusion, "room1", t0, ErrInvalid},
		{"garbage", "not.a.jwt", "room1", t0, ErrInvalid},
		{"random bytes", "\x00\xff\xfe", "room1", t0, ErrInvalid},
		{"empty", "", "room1", t0, ErrInvalid},
		{"huge", strings.Repeat("a", 10000), "room1", t0, ErrInvalid},
		{"wrong issuer", signRaw(t, key, rawClaims(func(w *wireClaims) { w.Issuer = "evil" })), "room1", t0, ErrInvalid},
		{"wrong audience", signRaw(t, key, rawClaims(func(w *wireClaims) { w.Audience = jwt.ClaimStrings{"ducha-api"} })), "room1", t0, ErrInvalid},
		{"no exp", signRaw(t, key, rawClaims(func(w *wireClaims) { w.ExpiresAt = nil })), "room1", t0, ErrInvalid},
		{"no sub", signRaw(t, key, rawClaims(func(w *wireClaims) { w.Subject = "" })), "room1", t0, ErrInvalid},
		{"sub too long", signRaw(t, key, rawClaims(func(w *wireClaims) { w.Subject = strings.Repeat("x", 129) })), "room1", t0, ErrInvalid},
		{"no nbf is fine", signRaw(t, key, rawClaims(func(w *wireClaims) { w.NotBefore = nil })), "room1", t0, nil},
		{"inv too long", signRaw(t, key, rawClaims(func(w *wireClaims) { w.Inv = strings.Repeat("x", 129) })), "room1", t0, ErrInvalid},
		{"unit with control character", signRaw(t, key, rawClaims(func(w *wireClaims) { w.Unit = "32\n05" })), "room1", t0, ErrInvalid},
		{"inv and unit are fine", signRaw(t, key, rawClaims(func(w *wireClaims) { w.Inv, w.Unit = "INV1", "3205" })), "room1", t0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVerifier(pub, fixedClock(tc.now))
			c, err := v.Verify(tc.token, tc.room)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if c.Identity != "sup-1" || c.Room != "room1" {
					t.Fatalf("claims %+v", c)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if c != (Claims{}) {
				t.Fatalf("claims returned with error: %+v", c)
			}
		})
	}
}

func TestIssueValidates(t *testing.T) {
	iss := NewIssuer(newKey(t), fixedClock(t0))
	tests := []struct {
		name string
		mod  func(*Claims)
		want error
	}{
		{"ok", func(*Claims) {}, nil},
		{"observer ok", func(c *Claims) { c.Role = RoleObserver }, nil},
		{"empty name ok", func(c *Claims) { c.Name = "" }, nil},
		{"128-byte identity ok", func(c *Claims) { c.Identity = strings.Repeat("i", 128) }, nil},
		{"64-byte room ok", func(c *Claims) { c.Room = strings.Repeat("r", 64) }, nil},
		{"bad role", func(c *Claims) { c.Role = "admin" }, ErrBadRole},
		{"no role", func(c *Claims) { c.Role = "" }, ErrBadRole},
		{"empty room", func(c *Claims) { c.Room = "" }, ErrBadClaims},
		{"room too long", func(c *Claims) { c.Room = strings.Repeat("r", 65) }, ErrBadClaims},
		{"room with slash", func(c *Claims) { c.Room = "a/b" }, ErrBadClaims},
		{"room with space", func(c *Claims) { c.Room = "a b" }, ErrBadClaims},
		{"room non-ascii", func(c *Claims) { c.Room = "会议" }, ErrBadClaims},
		{"empty identity", func(c *Claims) { c.Identity = "" }, ErrBadClaims},
		{"identity too long", func(c *Claims) { c.Identity = strings.Repeat("i", 129) }, ErrBadClaims},
		{"name too long", func(c *Claims) { c.Name = strings.Repeat("名", 43) }, ErrBadClaims},
		{"name invalid utf8", func(c *Claims) { c.Name = "\xff" }, ErrBadClaims},
		{"name control char", func(c *Claims) { c.Name = "a\nb" }, ErrBadClaims},
		{"no expiry", func(c *Claims) { c.ExpiresAt = time.Time{} }, ErrBadClaims},
		{"expiry in past", func(c *Claims) { c.ExpiresAt = t0.Add(-time.Second) }, ErrBadClaims},
		{"expiry before nbf", func(c *Claims) { c.NotBefore = t0.Add(3 * time.Hour) }, ErrBadClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := goodClaims()
			tc.mod(&c)
			tok, err := iss.Issue(c)
			if tc.want == nil {
				if err != nil || tok == "" {
					t.Fatalf("Issue: %q %v", tok, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || tok != "" {
				t.Fatalf("Issue = %q, %v; want error %v", tok, err, tc.want)
			}
		})
	}
}

func TestIssuedTokenIsEdDSAWithPinnedClaims(t *testing.T) {
	tok, err := NewIssuer(newKey(t), fixedClock(t0)).Issue(goodClaims())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if !strings.Contains(string(hdr), `"alg":"EdDSA"`) {
		t.Fatalf("header %s", hdr)
	}
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"iss": "ducha", "sub": "county-3205", "role": "county", "room": "case-2026_0117"} {
		if m[k] != want {
			t.Errorf("claim %s = %v, want %v", k, m[k], want)
		}
	}
	if aud, ok := m["aud"].([]any); !ok || len(aud) != 1 || aud[0] != "ducha-join" {
		t.Errorf("aud = %v", m["aud"])
	}
	for _, k := range []string{"exp", "nbf", "iat", "jti"} {
		if _, ok := m[k]; !ok {
			t.Errorf("claim %s missing", k)
		}
	}
}

// TestInvitationClaims checks the optional county-link claims: they round
// trip under their short wire names, are absent from tokens that do not set
// them, and are validated like the other text claims.
func TestInvitationClaims(t *testing.T) {
	key := newKey(t)
	iss := NewIssuer(key, fixedClock(t0))
	v := NewVerifier(key.Public().(ed25519.PublicKey), fixedClock(t0))

	c := goodClaims()
	c.Invitation, c.Unit = "N4BQ3XKJ7ZV2YH6TPMAW5DCRFE", "3205"
	tok, err := iss.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok, c.Room)
	if err != nil {
		t.Fatal(err)
	}
	if got.Invitation != c.Invitation || got.Unit != c.Unit {
		t.Fatalf("inv/unit = %q/%q, want %q/%q", got.Invitation, got.Unit, c.Invitation, c.Unit)
	}
	body, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if m["inv"] != c.Invitation || m["unit"] != c.Unit {
		t.Fatalf("wire claims inv=%v unit=%v", m["inv"], m["unit"])
	}

	plain, err := iss.Issue(goodClaims())
	if err != nil {
		t.Fatal(err)
	}
	body, _ = base64.RawURLEncoding.DecodeString(strings.Split(plain, ".")[1])
	if strings.Contains(string(body), `"inv"`) || strings.Contains(string(body), `"unit"`) {
		t.Fatalf("unset claims are on the wire: %s", body)
	}
	if got, err := v.Verify(plain, c.Room); err != nil || got.Invitation != "" || got.Unit != "" {
		t.Fatalf("plain token: %+v, %v", got, err)
	}

	for name, mod := range map[string]func(*Claims){
		"inv too long":     func(c *Claims) { c.Invitation = strings.Repeat("x", 129) },
		"unit not UTF-8":   func(c *Claims) { c.Unit = "\xff" },
		"unit has control": func(c *Claims) { c.Unit = "a\tb" },
	} {
		bad := goodClaims()
		mod(&bad)
		if tok, err := iss.Issue(bad); !errors.Is(err, ErrBadClaims) || tok != "" {
			t.Errorf("%s: Issue = %q, %v; want ErrBadClaims", name, tok, err)
		}
	}
}

func TestJoinURL(t *testing.T) {
	tests := []struct{ base, room, tok, want string }{
		{"http://127.0.0.1:8080", "r1", "a.b.c", "http://127.0.0.1:8080/join/r1#t=a.b.c"},
		{"https://ducha.example.cn/", "case_7-x", "t", "https://ducha.example.cn/join/case_7-x#t=t"},
		{"http://h", "a b/c", "t", "http://h/join/a%20b%2Fc#t=t"},
	}
	for _, tc := range tests {
		if got := JoinURL(tc.base, tc.room, tc.tok); got != tc.want {
			t.Errorf("JoinURL(%q,%q,%q) = %q, want %q", tc.base, tc.room, tc.tok, got, tc.want)
		}
	}
}
