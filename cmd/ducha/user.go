package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/ducha-dev/ducha/rooms"
	"github.com/ducha-dev/ducha/rooms/httpapi"
)

// userCmd manages console accounts: `ducha user [--data-dir D | --redis-url U] add|list|passwd ...`.
// With the embedded store the server must be stopped (it holds the data
// directory); with Redis it may run.
func userCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ducha user", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	cfg.register(fs)
	if err := parseFlags(fs, args, os.Getenv, stderr); err != nil {
		return 2
	}
	log := newLogger("warn", stderr)
	open := func() (rooms.Store, func(), error) {
		return openStore(context.Background(), cfg, log)
	}
	return httpapi.RunUserCLI(fs.Args(), open, stdin, stdout, stderr)
}
