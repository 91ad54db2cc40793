package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ducha-dev/ducha/signaling/token"
)

// tokenCmd prints a join URL signed with the data directory's key, which the
// server created (or will create) on its first start.
func tokenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ducha token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	cfg.register(fs)
	room := fs.String("room", "", "room id (letters, digits, - and _)")
	identity := fs.String("identity", "", "stable identity: a user id or a county unit code")
	name := fs.String("name", "", "display name shown on the tile, e.g. 小店区信访局")
	role := fs.String("role", "county", "supervisor, county or observer")
	ttl := fs.Duration("ttl", 12*time.Hour, "how long the link stays valid")
	base := fs.String("url", "", "server base URL for the link (default --public-url or http://<http-addr>)")
	if err := parseFlags(fs, args, os.Getenv, stderr); err != nil {
		return 2
	}
	if *room == "" || *identity == "" {
		fmt.Fprintln(stderr, "ducha token: --room and --identity are required")
		return 2
	}
	if *name == "" {
		*name = *identity
	}
	if *ttl <= 0 {
		fmt.Fprintln(stderr, "ducha token: --ttl must be positive")
		return 2
	}
	key, err := token.LoadOrCreateKey(cfg.DataDir)
	if err != nil {
		fmt.Fprintf(stderr, "ducha token: signing key: %v\n", err)
		return 1
	}
	now := time.Now()
	tok, err := token.NewIssuer(key, time.Now).Issue(token.Claims{
		Room: *room, Identity: *identity, Name: *name, Role: *role, ExpiresAt: now.Add(*ttl),
	})
	if err != nil {
		fmt.Fprintf(stderr, "ducha token: %v\n", err)
		return 2
	}
	u := *base
	if u == "" {
		u = cfg.publicURL(cfg.HTTPAddr)
	}
	fmt.Fprintln(stdout, token.JoinURL(u, *room, tok))
	return 0
}
