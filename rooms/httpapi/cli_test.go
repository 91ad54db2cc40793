package httpapi

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/accounts"
	"github.com/ducha-dev/ducha/rooms/memstore"
)

type cliRun struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, st rooms.Store, stdin string, args ...string) cliRun {
	t.Helper()
	opened, closed := 0, 0
	open := func() (rooms.Store, func(), error) {
		opened++
		return st, func() { closed++ }, nil
	}
	var out, errb bytes.Buffer
	code := RunUserCLI(args, open, strings.NewReader(stdin), &out, &errb)
	if opened != closed {
		t.Fatalf("store opened %d times, closed %d", opened, closed)
	}
	return cliRun{code, out.String(), errb.String()}
}

func TestRunUserCLI(t *testing.T) {
	st := memstore.New(nil)
	ctx := context.Background()

	r := runCLI(t, st, "first-admin-pw\n", "user", "add", "--username", "Admin", "--name", "系统管理员", "--role", "admin", "--password-stdin")
	if r.code != 0 || !strings.Contains(r.stdout, "已创建账号 admin") || !strings.Contains(r.stdout, "created account admin") {
		t.Fatalf("add: %+v", r)
	}
	a, err := st.GetAccount(ctx, "admin")
	if err != nil || a.Role != rooms.RoleAdmin || a.DisplayName != "系统管理员" {
		t.Fatalf("stored %+v %v", a, err)
	}
	if ok, _ := accounts.Verify(a.PasswordHash, "first-admin-pw"); !ok {
		t.Fatal("password not stored as given (newline must be stripped)")
	}

	// Without --password-stdin and without a terminal: one line from stdin.
	r = runCLI(t, st, "supervisor-pw\r\n", "add", "--username", "zhang.san", "--name", "张三", "--role", "supervisor")
	if r.code != 0 {
		t.Fatalf("add from pipe: %+v", r)
	}
	if ok, _ := accounts.Verify(must(st.GetAccount(ctx, "zhang.san")).PasswordHash, "supervisor-pw"); !ok {
		t.Fatal("piped password (CRLF) not stored as given")
	}

	for name, tc := range map[string]struct {
		stdin string
		args  []string
		code  int
		msg   string
	}{
		"duplicate":     {"another-pw-1\n", []string{"add", "--username", "ZHANG.SAN", "--name", "x", "--role", "auditor"}, 1, "已存在"},
		"weak password": {"short\n", []string{"add", "--username", "wang", "--name", "王", "--role", "auditor"}, 1, "8 到 1024"},
		"no password":   {"", []string{"add", "--username", "wang", "--name", "王", "--role", "auditor"}, 1, "password must have"},
		"bad role":      {"long-enough-1\n", []string{"add", "--username", "wang", "--name", "王", "--role", "county"}, 1, "role must be"},
		"bad username":  {"long-enough-1\n", []string{"add", "--username", "王五", "--name", "王", "--role", "auditor"}, 1, "username must be"},
		"missing flags": {"", []string{"add", "--username", "wang"}, 2, "--role are required"},
		"unknown flag":  {"", []string{"add", "--user", "wang"}, 2, "flag provided but not defined"},
		"no command":    {"", nil, 2, "ducha user add"},
		"unknown cmd":   {"", []string{"delete"}, 2, "unknown subcommand"},
		"passwd nobody": {"long-enough-1\n", []string{"passwd", "--username", "nobody"}, 1, "no account nobody"},
	} {
		r := runCLI(t, st, tc.stdin, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%s: code %d stderr %q; want %d and %q", name, r.code, r.stderr, tc.code, tc.msg)
		}
	}
	if _, err := st.GetAccount(ctx, "wang"); err == nil {
		t.Fatal("a refused add stored an account")
	}

	// Lock zhang.san, then passwd lifts the lock.
	svc := must(accounts.New(st, accounts.Options{Params: fastParams}))
	for range 5 {
		_, _ = svc.Authenticate(ctx, "zhang.san", "wrong-password")
	}
	r = runCLI(t, st, "", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "admin") || !strings.Contains(r.stdout, "督查人员/supervisor") || !strings.Contains(r.stdout, "locked until") {
		t.Fatalf("list: %+v", r)
	}
	r = runCLI(t, st, "brand-new-pw\n", "passwd", "--username", "zhang.san", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("passwd: %+v", r)
	}
	if _, err := svc.Authenticate(ctx, "zhang.san", "brand-new-pw"); err != nil {
		t.Fatalf("after passwd: %v", err)
	}
	if r := runCLI(t, memstore.New(nil), "", "list"); r.code != 0 || !strings.Contains(r.stdout, "no accounts yet") {
		t.Fatalf("empty list: %+v", r)
	}
}
