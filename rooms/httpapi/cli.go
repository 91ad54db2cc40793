package httpapi

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/accounts"
)

const userUsage = `usage / 用法:
  ducha user add --username U --name N --role supervisor|auditor|admin [--password-stdin]
  ducha user passwd --username U [--password-stdin]
  ducha user list

The password is asked twice on a terminal (not echoed); otherwise, or with
--password-stdin, one line is read from standard input.
在终端中会提示输入两次密码（不回显）；否则或使用 --password-stdin 时，从标准输入读取一行作为密码。`

// RunUserCLI runs `ducha user ...`: args are what follows "user" (a leading
// "user" is also accepted). open opens the configured store and returns a
// function that closes it. It returns the process exit code: 0 done, 1
// failed, 2 usage error.
func RunUserCLI(args []string, open func() (rooms.Store, func(), error), stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "user" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, userUsage)
		return 2
	}
	cli := userCLI{open: open, stdin: stdin, stdout: stdout, stderr: stderr}
	switch args[0] {
	case "add":
		return cli.add(args[1:])
	case "passwd":
		return cli.passwd(args[1:])
	case "list":
		return cli.list(args[1:])
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, userUsage)
		return 0
	}
	fmt.Fprintf(stderr, "未知的子命令 / unknown subcommand %q\n\n%s\n", args[0], userUsage)
	return 2
}

type userCLI struct {
	open           func() (rooms.Store, func(), error)
	stdin          io.Reader
	stdout, stderr io.Writer
}

func (u userCLI) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("ducha user "+name, flag.ContinueOnError)
	fs.SetOutput(u.stderr)
	fs.Usage = func() { fmt.Fprintln(u.stderr, userUsage) }
	return fs
}

func (u userCLI) fail(zh, en string, err error) int {
	if err != nil {
		fmt.Fprintf(u.stderr, "错误：%s / error: %s: %v\n", zh, en, err)
	} else {
		fmt.Fprintf(u.stderr, "错误：%s / error: %s\n", zh, en)
	}
	return 1
}

func (u userCLI) withService(fn func(context.Context, rooms.Store, *accounts.Service) int) int {
	st, closeFn, err := u.open()
	if err != nil {
		return u.fail("无法打开数据存储", "cannot open the store", err)
	}
	defer closeFn()
	svc, err := accounts.New(st, accounts.Options{})
	if err != nil {
		return u.fail("无法初始化账号服务", "cannot start the account service", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return fn(ctx, st, svc)
}

func (u userCLI) add(args []string) int {
	fs := u.flags("add")
	username := fs.String("username", "", "sign-in name: 1-64 of a-z 0-9 . - _")
	name := fs.String("name", "", "display name, e.g. 张三")
	role := fs.String("role", "", "supervisor, auditor or admin")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(u.stderr, "多余的参数 / unexpected arguments: %q\n", fs.Args())
		return 2
	}
	if *username == "" || *name == "" || *role == "" {
		fmt.Fprintf(u.stderr, "需要 --username、--name 和 --role / --username, --name and --role are required\n\n%s\n", userUsage)
		return 2
	}
	*name = strings.TrimSpace(*name)
	if err := checkAccountInput(*username, *name, rooms.Role(*role), "placeholder-password"); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return u.fail(e.Zh, e.En, nil)
		}
		return u.fail("输入无效", "invalid input", err)
	}
	pw, code := u.password(*fromStdin)
	if code != 0 {
		return code
	}
	return u.withService(func(ctx context.Context, _ rooms.Store, svc *accounts.Service) int {
		a, err := svc.Create(ctx, *username, *name, rooms.Role(*role), pw)
		switch {
		case errors.Is(err, rooms.ErrExists):
			return u.fail("用户名 "+accounts.NormalizeUsername(*username)+" 已存在", "username "+accounts.NormalizeUsername(*username)+" is taken", nil)
		case err != nil:
			return u.fail("创建账号失败", "could not create the account", err)
		}
		fmt.Fprintf(u.stdout, "已创建账号 %s（%s，%s）/ created account %s (%s, %s)\n",
			a.Username, a.DisplayName, roleZh(a.Role), a.Username, a.DisplayName, a.Role)
		return 0
	})
}

func (u userCLI) passwd(args []string) int {
	fs := u.flags("passwd")
	username := fs.String("username", "", "account to change")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *username == "" || fs.NArg() > 0 {
		fmt.Fprintf(u.stderr, "需要 --username / --username is required\n\n%s\n", userUsage)
		return 2
	}
	pw, code := u.password(*fromStdin)
	if code != 0 {
		return code
	}
	return u.withService(func(ctx context.Context, _ rooms.Store, svc *accounts.Service) int {
		err := svc.SetPassword(ctx, *username, pw)
		switch {
		case errors.Is(err, rooms.ErrNotFound):
			return u.fail("账号 "+accounts.NormalizeUsername(*username)+" 不存在", "no account "+accounts.NormalizeUsername(*username), nil)
		case err != nil:
			return u.fail("修改密码失败", "could not set the password", err)
		}
		fmt.Fprintf(u.stdout, "已修改 %s 的密码并解除锁定 / password of %s set, lock lifted\n",
			accounts.NormalizeUsername(*username), accounts.NormalizeUsername(*username))
		return 0
	})
}

func (u userCLI) list(args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(u.stderr, "多余的参数 / unexpected arguments: %q\n", args)
		return 2
	}
	return u.withService(func(ctx context.Context, st rooms.Store, _ *accounts.Service) int {
		as, err := st.ListAccounts(ctx)
		if err != nil {
			return u.fail("读取账号失败", "could not list accounts", err)
		}
		if len(as) == 0 {
			fmt.Fprintln(u.stdout, "还没有账号，用 ducha user add 创建 / no accounts yet; create one with ducha user add")
			return 0
		}
		tw := tabwriter.NewWriter(u.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "用户名/USERNAME\t姓名/NAME\t角色/ROLE\t状态/STATUS\t创建/CREATED")
		now := time.Now()
		for _, a := range as {
			status := "正常/active"
			if now.Before(a.LockedUntil) {
				status = "锁定至/locked until " + a.LockedUntil.Local().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\n", a.Username, a.DisplayName, roleZh(a.Role), a.Role,
				status, a.CreatedAt.Local().Format("2006-01-02 15:04"))
		}
		if err := tw.Flush(); err != nil {
			return u.fail("输出失败", "could not write", err)
		}
		return 0
	})
}

// password reads and checks the new password: twice without echo on a
// terminal, otherwise one line from stdin.
func (u userCLI) password(fromStdin bool) (string, int) {
	var pw string
	if f, ok := u.stdin.(*os.File); ok && !fromStdin && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(u.stderr, "密码 / Password: ")
		b1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(u.stderr)
		if err != nil {
			return "", u.fail("读取密码失败", "could not read the password", err)
		}
		fmt.Fprint(u.stderr, "再输入一次 / Repeat: ")
		b2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(u.stderr)
		if err != nil {
			return "", u.fail("读取密码失败", "could not read the password", err)
		}
		if string(b1) != string(b2) {
			return "", u.fail("两次输入的密码不一致", "the passwords do not match", nil)
		}
		pw = string(b1)
	} else {
		line, err := bufio.NewReaderSize(u.stdin, 4096).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", u.fail("读取密码失败", "could not read the password", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if len(pw) < accounts.MinPasswordLen || len(pw) > accounts.MaxPasswordLen {
		return "", u.fail(fmt.Sprintf("密码长度应为 %d 到 %d 字节", accounts.MinPasswordLen, accounts.MaxPasswordLen),
			fmt.Sprintf("the password must have %d to %d bytes", accounts.MinPasswordLen, accounts.MaxPasswordLen), nil)
	}
	return pw, 0
}

func roleZh(r rooms.Role) string {
	switch r {
	case rooms.RoleSupervisor:
		return "督查人员"
	case rooms.RoleAuditor:
		return "审计人员"
	case rooms.RoleAdmin:
		return "管理员"
	}
	return string(r)
}
