package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/ducha-dev/ducha/recording/archive"
	"github.com/ducha-dev/ducha/rooms"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"
)

// config is the server's whole configuration: flags, each overridable by a
// DUCHA_* environment variable (the flag wins when both are given).
type config struct {
	HTTPAddr        string
	DataDir         string
	UDPPort         int
	TCPPort         int
	PublicIPs       []string
	PublicURL       string
	IncludeLoopback bool
	AllowedOrigins  []string
	LogLevel        string
	RedisURL        string
	Node            string
	AllowAdhoc      bool
	RecordAdhoc     bool
	RetentionMode   archive.Mode
	RetentionDays   int
	Segment         time.Duration
	PprofAddr       string
	BatchSend       bool
	OpusDTX         bool
	LargeRoom       int
	MaxSpeakers     int

	// store, when set (tests), is used instead of opening one.
	store rooms.Store
}

// envName maps a flag name to its environment variable: udp-port -> DUCHA_UDP_PORT.
func envName(flagName string) string {
	return "DUCHA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// knownEnv lists DUCHA_* variables read elsewhere (tests, tools), so they
// are not reported as unknown.
var knownEnv = map[string]bool{"DUCHA_MINIO_BIN": true, "DUCHA_TEST_DEBUG": true,
	"DUCHA_S3_ENDPOINT": true, "DUCHA_S3_ACCESS_KEY": true, "DUCHA_S3_SECRET_KEY": true, "DUCHA_S3_BUCKET": true,
	"DUCHA_S3_TLS": true, "DUCHA_S3_REGION": true, "DUCHA_S3_RETENTION_MODE": true, "DUCHA_S3_RETENTION_DAYS": true}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP address for the web pages, API and signaling")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory for keys, spool and the local archive")
	fs.IntVar(&c.UDPPort, "udp-port", 7881, "the one UDP port for all media (ICE UDP mux)")
	fs.IntVar(&c.TCPPort, "tcp-port", 7882, "ICE-TCP port for networks that block UDP; -1 disables")
	fs.Func("public-ips", "comma-separated IPs announced to clients as the media address (behind NAT)", func(s string) error {
		c.PublicIPs = nil
		for _, ip := range splitList(s) {
			if net.ParseIP(ip) == nil {
				return fmt.Errorf("not an IP address: %q", ip)
			}
			c.PublicIPs = append(c.PublicIPs, ip)
		}
		return nil
	})
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL of this server as browsers reach it (default http://<http-addr>)")
	fs.BoolVar(&c.IncludeLoopback, "include-loopback", false, "offer 127.0.0.1 ICE candidates (single-machine demos and tests)")
	fs.Func("allowed-origins", "comma-separated extra browser origins allowed to open the websocket", func(s string) error {
		c.AllowedOrigins = splitList(s)
		return nil
	})
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis URL (redis://host:6379/0) for sessions, accounts and event logs; empty keeps them in the data directory")
	host, _ := os.Hostname()
	fs.StringVar(&c.Node, "node", host, "this node's name, recorded with its participants and recordings")
	fs.BoolVar(&c.AllowAdhoc, "allow-adhoc", true, "accept `ducha token` links for rooms that are not scheduled sessions")
	fs.BoolVar(&c.RecordAdhoc, "record-adhoc", true, "record ad-hoc rooms too (scheduled sessions follow their recording switch)")
	c.RetentionMode = archive.Compliance
	fs.Func("retention-mode", "COMPLIANCE (default) or GOVERNANCE: object lock mode of archived recordings", func(s string) error {
		m, err := archive.ParseMode(s)
		c.RetentionMode = m
		return err
	})
	fs.IntVar(&c.RetentionDays, "retention-days", 3650, "days archived recordings stay locked")
	fs.DurationVar(&c.Segment, "segment", 60*time.Second, "longest recording segment (cut at the next keyframe)")
	fs.BoolVar(&c.OpusDTX, "opus-dtx", true, "ask browsers for Opus DTX (usedtx=1): silent microphones send a packet every 400 ms instead of 50 a second; recordings fill the gaps with concealment frames; false keeps the room's background noise between words")
	fs.BoolVar(&c.BatchSend, "batch-send", true, "write media datagrams in sendmmsg batches (no timer: batches form only while the previous one is being written); false writes each with its own sendto")
	fs.IntVar(&c.LargeRoom, "large-room", 10, "rooms with more participants than this forward only the loudest speakers' audio, on speaker slots")
	fs.IntVar(&c.MaxSpeakers, "max-speakers", 3, "how many loudest speakers are announced and, in large rooms, forwarded")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060; empty: off")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseFlags applies environment variables, then the command line.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}

// warnUnknownEnv names DUCHA_* variables no flag reads: usually a typo.
func warnUnknownEnv(fs *flag.FlagSet, environ []string, log *slog.Logger) {
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "DUCHA_") && !known[name] && !knownEnv[name] {
			log.Warn("unknown environment variable ignored", "name", name)
		}
	}
}

func (c *config) validate() error {
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("--http-addr %q: %w", c.HTTPAddr, err)
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		return fmt.Errorf("--udp-port %d out of range", c.UDPPort)
	}
	if c.TCPPort < -1 || c.TCPPort > 65535 {
		return fmt.Errorf("--tcp-port %d out of range", c.TCPPort)
	}
	if c.DataDir == "" {
		return errors.New("--data-dir must not be empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// publicURL is the base of join links.
func (c *config) publicURL(actualAddr string) string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "http://" + actualAddr
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
