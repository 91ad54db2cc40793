// Command ducha is the ducha server and its tools:
//
//	ducha [serve] [flags]   run the server (the default)
//	ducha token [flags]     print a join link
//	ducha user add ...      manage console accounts
//	ducha verify SESSION    check an archived session (exit 0 intact, 1 altered, 2 could not check)
//
// Run "ducha <command> -h" for the flags of a command.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/ducha-dev/ducha/recording/evidence"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "token":
		return tokenCmd(args, stdout, stderr)
	case "verify":
		return evidence.RunVerifyCLI(args, stdout, stderr)
	case "user":
		return userCmd(args, os.Stdin, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ducha: unknown command %q\n\n%s\n", cmd, usage)
		return 2
	}
}

const usage = `usage:
  ducha [serve] [flags]   run the server (web UI, signaling, SFU)
  ducha token [flags]     print a join link for a room
  ducha user add|list|passwd [flags]
                          manage console accounts (supervisor, auditor, admin)
  ducha verify SESSION    check an archived session's segments, chain and signature
                          (exit 0 intact, 1 altered or missing, 2 could not check)
  ducha help              this text

Every flag can also be set as a DUCHA_* environment variable
(--udp-port -> DUCHA_UDP_PORT). See README.md.`
