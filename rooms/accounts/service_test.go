package accounts

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/memstore"
	"github.com/ducha-dev/ducha/rooms/storetest"
)

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	clk := storetest.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	st := memstore.New(clk)
	svc, err := New(st, Options{Params: fast, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, " Zhang.San ", "张三", rooms.RoleSupervisor, "短"); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("weak password: %v", err)
	}
	a, err := svc.Create(ctx, " Zhang.San ", "张三", rooms.RoleSupervisor, "督查密码2026")
	if err != nil {
		t.Fatal(err)
	}
	if a.Username != "zhang.san" {
		t.Fatalf("username %q not normalised", a.Username)
	}
	if _, err := svc.Create(ctx, "zhang.san", "张三", rooms.RoleSupervisor, "督查密码2026"); !errors.Is(err, rooms.ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if got, err := svc.Authenticate(ctx, "ZHANG.SAN", "督查密码2026"); err != nil || got.ID != a.ID {
		t.Fatalf("right password: %+v, %v", got, err)
	}
	if _, err := svc.Authenticate(ctx, "nobody", "督查密码2026"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}

	// Four wrong passwords, a right one resets the count.
	for range 4 {
		if _, err := svc.Authenticate(ctx, "zhang.san", "wrong-password"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if got, _ := st.GetAccount(ctx, "zhang.san"); got.FailedLogins != 4 {
		t.Fatalf("failures recorded %d", got.FailedLogins)
	}
	if _, err := svc.Authenticate(ctx, "zhang.san", "督查密码2026"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetAccount(ctx, "zhang.san"); got.FailedLogins != 0 {
		t.Fatalf("success left %d failures", got.FailedLogins)
	}

	// Five wrong ones lock it; the fifth already says so.
	for i := range 5 {
		_, err := svc.Authenticate(ctx, "zhang.san", "wrong-password")
		want := ErrBadCredentials
		if i == 4 {
			want = ErrLocked
		}
		if !errors.Is(err, want) {
			t.Fatalf("failure %d: %v, want %v", i+1, err, want)
		}
	}
	// Locked: even the right password is refused.
	clk.Advance(14 * time.Minute)
	if _, err := svc.Authenticate(ctx, "zhang.san", "督查密码2026"); !errors.Is(err, ErrLocked) {
		t.Fatalf("right password while locked: %v", err)
	}
	clk.Advance(time.Minute)
	if _, err := svc.Authenticate(ctx, "zhang.san", "督查密码2026"); err != nil {
		t.Fatalf("after the lock expired: %v", err)
	}

	// An administrator's password reset lifts a lock.
	for range 5 {
		_, _ = svc.Authenticate(ctx, "zhang.san", "wrong-password")
	}
	if err := svc.SetPassword(ctx, "zhang.san", "新的督查密码"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, "zhang.san", "新的督查密码"); err != nil {
		t.Fatalf("after reset: %v", err)
	}
	if _, err := svc.Authenticate(ctx, "zhang.san", "督查密码2026"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password after reset: %v", err)
	}
}

// TestRehashOnLogin upgrades hashes made with older parameters.
func TestRehashOnLogin(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	old, _ := New(st, Options{Params: fast})
	if _, err := old.Create(ctx, "li.si", "李四", rooms.RoleAuditor, "审计密码2026"); err != nil {
		t.Fatal(err)
	}
	stronger := fast
	stronger.Time = 2
	svc, _ := New(st, Options{Params: stronger})
	if _, err := svc.Authenticate(ctx, "li.si", "审计密码2026"); err != nil {
		t.Fatal(err)
	}
	a, _ := st.GetAccount(ctx, "li.si")
	if NeedsRehash(a.PasswordHash, stronger) {
		t.Fatalf("hash not upgraded: %s", a.PasswordHash)
	}
	if _, err := svc.Authenticate(ctx, "li.si", "审计密码2026"); err != nil {
		t.Fatalf("upgraded hash does not verify: %v", err)
	}
}
