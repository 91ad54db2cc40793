// Command ducha-load puts a ducha server under the loads the design names
// (S1 county calls, the S2 province-wide session, and a ramp of S1 rooms)
// with real Pion WebRTC participants speaking ducha's signaling protocol:
// DTLS, SRTP, NACK, PLI, receiver reports and TWCC like a browser; decodable
// VP8 and Opus-sized audio carrying send times; optionally a throttled
// downlink per participant. It reports what the server forwarded and what
// it cost (CPU per forwarded packet and track, memory per participant),
// loss after NACK, forwarding delay and time to first frame, as a table
// and as JSON.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// servePProf serves net/http/pprof (to profile the load tool itself).
func servePProf(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("pprof serving", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { _ = srv.Close() }, nil
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "ducha-load: %v\n", err)
		return 2
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.PProf != "" {
		stopPProf, err := servePProf(cfg.PProf, log)
		if err != nil {
			log.Error("pprof", "err", err)
			return 1
		}
		defer stopPProf()
	}
	rep, err := run(ctx, cfg, stdout, log)
	code := 0
	if err != nil {
		log.Error("run failed", "err", err)
		code = 1
	}
	if rep != nil && (rep.Result != nil || len(rep.Steps) > 0) {
		printReport(stdout, rep)
	}
	if rep != nil && cfg.JSONPath != "" {
		if err := writeJSON(cfg.JSONPath, rep); err != nil {
			log.Error("could not write the JSON report", "path", cfg.JSONPath, "err", err)
			code = 1
		} else {
			log.Info("JSON report written", "path", cfg.JSONPath)
		}
	}
	return code
}
