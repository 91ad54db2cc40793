package accounts

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// fast keeps tests quick; production uses DefaultParams.
var fast = Params{Time: 1, Memory: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestHashVerify(t *testing.T) {
	h, err := Hash("正确的密码123", fast, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("not a PHC argon2id string: %s", h)
	}
	ok, err := Verify(h, "正确的密码123")
	if err != nil || !ok {
		t.Fatalf("right password: %v %v", ok, err)
	}
	for _, wrong := range []string{"正确的密码124", "", "正确的密码12", strings.Repeat("x", MaxPasswordLen+1)} {
		if ok, err := Verify(h, wrong); err != nil || ok {
			t.Fatalf("wrong password %q accepted: %v %v", wrong, ok, err)
		}
	}
	h2, _ := Hash("正确的密码123", fast, nil)
	if h2 == h {
		t.Fatal("two hashes of one password share a salt")
	}
	// A fixed salt source gives a fixed hash: the salt really comes from rnd.
	a, _ := Hash("password-1", fast, bytes.NewReader(make([]byte, 16)))
	b, _ := Hash("password-1", fast, bytes.NewReader(make([]byte, 16)))
	if a != b {
		t.Fatal("same salt, different hash")
	}
	if _, err := Hash("short", fast, nil); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("short password: %v", err)
	}
}

// TestKnownVector checks against the argon2 reference implementation
// (Debian package argon2: echo -n password | argon2 somesalt -id -t 2 -m 16
// -p 4 -l 32 -e), both ways, so our PHC strings are the standard ones.
func TestKnownVector(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	ok, err := Verify(ref, "password")
	if err != nil || !ok {
		t.Fatalf("reference vector: %v %v", ok, err)
	}
	h, err := Hash("password", Params{Time: 2, Memory: 65536, Threads: 4, KeyLen: 32, SaltLen: 8}, strings.NewReader("somesalt"))
	if err != nil || h != ref {
		t.Fatalf("our hash %s, want %s (%v)", h, ref, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := Hash("password-1", fast, nil)
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	cases := map[string]string{
		"empty":          "",
		"bcrypt":         "$2a$10$abcdefghijklmnopqrstuu",
		"argon2i":        with(1, "argon2i"),
		"old version":    with(2, "v=16"),
		"huge memory":    with(3, "m=4294967295,t=1,p=1"),
		"zero time":      with(3, "m=64,t=0,p=1"),
		"huge time":      with(3, "m=64,t=1000,p=1"),
		"zero threads":   with(3, "m=64,t=1,p=0"),
		"garbage params": with(3, "m=x"),
		"bad salt":       with(4, "!!!"),
		"short salt":     with(4, "YWI"),
		"bad hash":       with(5, "!!!"),
		"short hash":     with(5, "YWJj"),
		"extra field":    good + "$x",
	}
	for name, enc := range cases {
		if _, err := Verify(enc, "password-1"); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: %v, want ErrMalformedHash", name, err)
		}
	}
	// A tampered hash value parses but does not verify.
	tampered := with(5, strings.Repeat("A", len(parts[5])))
	if ok, err := Verify(tampered, "password-1"); err != nil || ok {
		t.Fatalf("tampered hash: %v %v", ok, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	h, _ := Hash("password-1", fast, nil)
	if NeedsRehash(h, fast) {
		t.Fatal("same params need rehash")
	}
	stronger := fast
	stronger.Time = 2
	if !NeedsRehash(h, stronger) {
		t.Fatal("weaker hash does not need rehash")
	}
	if !NeedsRehash("garbage", fast) {
		t.Fatal("malformed hash does not need rehash")
	}
}
