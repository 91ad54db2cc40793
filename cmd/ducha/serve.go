package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ducha-dev/ducha/rooms/live"
	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling"
	"github.com/ducha-dev/ducha/signaling/token"
	"github.com/ducha-dev/ducha/web"
)

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("ducha serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	cfg.register(fs)
	if err := parseFlags(fs, args, os.Getenv, stderr); err != nil {
		return 2
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "ducha: %v\n", err)
		return 2
	}
	log := newLogger(cfg.LogLevel, stderr)
	warnUnknownEnv(fs, os.Environ(), log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runServer(ctx, cfg, log, nil); err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	return 0
}

// runServer serves until ctx ends. ready, if not nil, receives the HTTP
// address once listening.
func runServer(ctx context.Context, cfg config, log *slog.Logger, ready chan<- string) error {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	key, err := token.LoadOrCreateKey(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("join token key: %w", err)
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return errors.New("join token key is not Ed25519")
	}

	store, closeStore, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStore()
	ev, err := setupEvidence(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	// What a crash left behind goes to the spool (with a gap record)
	// before anything new is recorded.
	if err := ev.recorder.Recover(ctx); err != nil {
		log.Error("recovering recordings after a crash", "err", err)
	}
	upCtx, stopUploads := context.WithCancel(context.Background())
	uploadsDone := make(chan struct{})
	go func() {
		defer close(uploadsDone)
		if err := ev.uploader.Run(upCtx); err != nil {
			log.Error("uploader stopped", "err", err)
		}
	}()
	defer func() { stopUploads(); <-uploadsDone }()
	// The replay index: catches up with the archive at start, then verifies
	// what gets sealed and rescans now and then.
	replayCtx, stopReplay := context.WithCancel(context.Background())
	replayDone := make(chan struct{})
	go func() {
		defer close(replayDone)
		if err := ev.replay.Run(replayCtx); err != nil {
			log.Error("replay index stopped", "err", err)
		}
	}()
	defer func() { stopReplay(); <-replayDone }()

	media, err := sfu.New(sfu.Config{
		UDPPort: cfg.UDPPort, TCPPort: cfg.TCPPort, PublicIPs: cfg.PublicIPs, IncludeLoopback: cfg.IncludeLoopback,
		Observer: ev.recorder, DirectSend: !cfg.BatchSend, NoDTX: !cfg.OpusDTX, LargeRoom: cfg.LargeRoom, MaxSpeakers: cfg.MaxSpeakers,
	}, log.With("component", "sfu"))
	if err != nil {
		return err
	}
	defer media.Close()
	ev.recorder.Attach(media)

	ctl, err := live.New(live.Config{
		Store: store, Media: sfuMedia{media}, Recording: ev.recorder, Logger: log.With("component", "live"),
		Node: cfg.Node, AllowAdhoc: cfg.AllowAdhoc,
	})
	if err != nil {
		return err
	}
	hbCtx, stopHB := context.WithCancel(context.Background())
	defer stopHB()
	go ctl.Heartbeats(hbCtx, 10*time.Second)

	sig, err := signaling.NewHandler(signaling.Config{
		Conference:     ctl,
		Tokens:         token.NewVerifier(pub, time.Now),
		AllowedOrigins: cfg.AllowedOrigins,
		Logger:         log.With("component", "signaling"),
	})
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler)), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newMetrics(media, sig, store))

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	addr := ln.Addr().String()
	api, err := newAPI(cfg, store, key, ctl, ev, cfg.publicURL(addr), log)
	if err != nil {
		_ = ln.Close()
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api)
	mux.Handle("/ws", sig)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok"})
	})
	mux.HandleFunc("/.well-known/ducha-node-key.pem", ev.publicKeyHandler)
	mux.Handle("/", web.Handler())

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("ducha serving", "url", cfg.publicURL(addr), "http", addr, "data_dir", cfg.DataDir,
		"media_udp", media.UDPAddr().String(), "media_tcp", media.TCPAddr())
	if ready != nil {
		ready <- addr
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sig.Shutdown(sctx); err != nil {
		log.Warn("signaling shutdown", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	// Everyone has left: close the recordings so their last segments reach
	// the spool (ad-hoc rooms are sealed; scheduled sessions go on).
	media.Close()
	ev.recorder.Close()
	return nil
}

// sfuMedia adapts *sfu.SFU to the interface the live controller declares.
type sfuMedia struct{ s *sfu.SFU }

func (m sfuMedia) Join(room string, info sfu.ParticipantInfo, n sfu.Notifier) (live.MediaSession, sfu.JoinResult, error) {
	p, res, err := m.s.Join(room, info, n)
	if err != nil {
		return nil, res, err
	}
	return p, res, nil
}
