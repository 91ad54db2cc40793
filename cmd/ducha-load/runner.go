package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ducha-dev/ducha/sfu"
	"github.com/ducha-dev/ducha/signaling/client"
)

// runner owns the simulated participants of one run.
type runner struct {
	cfg   config
	srv   *serverHandle
	env   agentEnv
	log   *slog.Logger
	now   func() time.Time
	runID string // keeps rooms of runs against one server apart

	agents  []*agent
	byID    map[string]*agent // server participant id -> agent
	rooms   int
	baseRSS int64 // server RSS before anyone joined
}

func newRunner(cfg config, srv *serverHandle, now func() time.Time, log *slog.Logger) *runner {
	var b [3]byte
	_, _ = rand.Read(b[:])
	// The signaling client logs only what went wrong (refused offers and
	// answers): those belong in the run's log.
	clientLog := log.With("component", "client")
	r := &runner{cfg: cfg, srv: srv, log: log, now: now, runID: hex.EncodeToString(b[:]), byID: map[string]*agent{}}
	r.env = agentEnv{wsURL: srv.wsURL, localIP: cfg.LocalIP, token: srv.token, now: now, log: clientLog, seed: cfg.Seed,
		pionLogs: cfg.LogLevel == "debug", nat: cfg.NAT}
	return r
}

// s1Room plans room number i: a supervisor and cfg.Size counties, all
// sending video (and audio), everyone receiving everyone.
func (r *runner) s1Room(i int) []agentSpec {
	room := fmt.Sprintf("load-%s-s1-%03d", r.runID, i)
	var video *videoSpec
	if r.cfg.VideoKbps > 0 {
		video = &videoSpec{Kbps: r.cfg.VideoKbps, FPS: r.cfg.FPS, Width: 640, Height: 360,
			Layers: r.cfg.layersFor(r.cfg.VideoKbps, r.cfg.LayerKbps)}
	}
	tiles := tilePlan{Supervisor: r.cfg.S1Tile, Others: r.cfg.S1Tile}
	specs := make([]agentSpec, 0, r.cfg.Size+1)
	for p := 0; p <= r.cfg.Size; p++ {
		role, id := sfu.RoleCounty, fmt.Sprintf("r%03d-county%03d", i, p)
		if p == 0 {
			role, id = sfu.RoleSupervisor, fmt.Sprintf("r%03d-supervisor", i)
		}
		specs = append(specs, agentSpec{Room: room, Identity: id, Role: role, Video: video, Audio: r.cfg.Audio,
			Down: r.cfg.downFor(role), PacketBytes: r.cfg.PacketBytes, Tiles: tiles})
	}
	r.setSpeakers(specs)
	return specs
}

// setSpeakers gives the first --speakers participants of a room a speech
// level, each a little quieter than the one before, and the rest silence.
func (r *runner) setSpeakers(room []agentSpec) {
	n := r.cfg.speakersIn(len(room))
	for i := range room {
		room[i].Level = client.LevelSilence
		if i < n {
			room[i].Level = speechLevel(i)
		}
	}
}

// s2Room plans the province-wide session: the supervisor's 720p video and
// audio, and each county's small video and audio.
func (r *runner) s2Room() []agentSpec {
	room := fmt.Sprintf("load-%s-s2", r.runID)
	var big, small *videoSpec
	if r.cfg.VideoKbps > 0 {
		big = &videoSpec{Kbps: r.cfg.VideoKbps, FPS: r.cfg.FPS, Width: 1280, Height: 720,
			Layers: r.cfg.layersFor(r.cfg.VideoKbps, r.cfg.LayerKbps)}
	}
	if r.cfg.SmallVideoKbps > 0 {
		small = &videoSpec{Kbps: r.cfg.SmallVideoKbps, FPS: r.cfg.SmallFPS, Width: 320, Height: 180,
			Layers: r.cfg.layersFor(r.cfg.SmallVideoKbps, r.cfg.SmallLayerKbps)}
	}
	// The supervisor shows every county as a small tile; a county shows
	// the supervisor large and the other counties as --s2-peer-tile.
	specs := []agentSpec{{Room: room, Identity: "supervisor", Role: sfu.RoleSupervisor, Video: big, Audio: r.cfg.Audio,
		Down: r.cfg.downFor(sfu.RoleSupervisor), PacketBytes: r.cfg.PacketBytes,
		Tiles: tilePlan{Supervisor: r.cfg.S2SupervisorTile, Others: r.cfg.S2SupervisorTile}}}
	countyTiles := tilePlan{Supervisor: r.cfg.S2CountyTile, Others: r.cfg.S2PeerTile}
	for c := 1; c <= r.cfg.Counties; c++ {
		specs = append(specs, agentSpec{Room: room, Identity: fmt.Sprintf("county%03d", c), Role: sfu.RoleCounty,
			Video: small, Audio: r.cfg.Audio, Down: r.cfg.downFor(sfu.RoleCounty), PacketBytes: r.cfg.PacketBytes,
			Tiles: countyTiles})
	}
	r.setSpeakers(specs)
	return specs
}

// join brings in the planned participants: supervisors first (they open
// the session: which participants join a large room, and so get speaker
// slots, depends on the order), then the others, cfg.JoinParallel at a
// time; then they publish, one at a time within a room (a Pion client
// cannot resolve glare), rooms side by side. On error the ones that did
// connect stay in r.agents, so closeAll releases them.
func (r *runner) join(ctx context.Context, specs []agentSpec) error {
	t0 := r.now()
	results := make(chan joinResult, len(specs))
	sem := make(chan struct{}, r.cfg.JoinParallel)
	var wg sync.WaitGroup
	base := len(r.agents)
	joinOrder := make([]int, 0, len(specs))
	for pass := 0; pass < 2; pass++ {
		for i, spec := range specs {
			if (spec.Role == sfu.RoleSupervisor) == (pass == 0) {
				joinOrder = append(joinOrder, i)
			}
		}
	}
	for n, i := range joinOrder {
		spec := specs[i]
		if n > 0 && spec.Role != sfu.RoleSupervisor && specs[joinOrder[n-1]].Role == sfu.RoleSupervisor {
			wg.Wait() // the supervisors are in
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			jctx, cancel := context.WithTimeout(ctx, r.cfg.JoinTimeout)
			defer cancel()
			a, err := startAgent(jctx, spec, r.env, base+i)
			results <- joinResult{a, err}
		}()
	}
	wg.Wait()
	close(results)
	if err := r.collect(results); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Publish in the planned order (supervisor first), not in the order
	// the connections completed.
	slices.SortFunc(r.agents[base:], func(x, y *agent) int { return cmp.Compare(x.source, y.source) })
	r.log.Info("connected", "participants", len(specs), "took", r.now().Sub(t0).Round(time.Millisecond))
	byRoom := map[string][]*agent{}
	var order []string
	for _, a := range r.agents[base:] {
		if byRoom[a.spec.Room] == nil {
			order = append(order, a.spec.Room)
		}
		byRoom[a.spec.Room] = append(byRoom[a.spec.Room], a)
	}
	errs := make(chan error, len(order))
	for _, room := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			prior := 0 // tracks the room's earlier publishers published
			quiet := quietGap(len(byRoom[room]))
			for _, a := range byRoom[room] {
				pctx, cancel := context.WithTimeout(ctx, r.cfg.JoinTimeout)
				err := a.publishAll(pctx, prior, r.cfg.LargeRoom, quiet)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				prior += a.spec.tracks()
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

type joinResult struct {
	a   *agent
	err error
}

func (r *runner) collect(results <-chan joinResult) error {
	var errs []error
	for res := range results {
		if res.err != nil {
			errs = append(errs, res.err)
			continue
		}
		r.agents = append(r.agents, res.a)
		r.byID[res.a.c.Self().ID] = res.a
	}
	return errors.Join(errs...)
}

// quietGap is how long a participant about to publish waits after the
// last announcement or description: the server subscribes a room to a new
// track one participant after another (an offer each) after announcing it
// to all, and an offer of ours crossing one of the server's would stall
// (a Pion client cannot roll back). The loop grows with the room.
func quietGap(roomSize int) time.Duration {
	return 100*time.Millisecond + time.Duration(roomSize)*2*time.Millisecond
}

// settle waits until every participant receives every track the server
// sends it (see expect). It returns how many receivers still miss some
// when the timeout ends.
func (r *runner) settle(ctx context.Context) (int, error) {
	deadline := r.now().Add(r.cfg.SettleTimeout)
	for {
		missing := 0
		var example string
		for _, a := range r.agents {
			if e := a.expect(r.cfg.LargeRoom, everReceived); len(e.missing) > 0 {
				missing++
				if example == "" {
					example = fmt.Sprintf("%s misses %v", a.spec.Identity, e.missing)
				}
			}
		}
		if missing == 0 {
			return 0, nil
		}
		if r.now().After(deadline) {
			r.log.Warn("media did not reach every receiver", "receivers", missing, "example", example)
			return missing, nil
		}
		select {
		case <-ctx.Done():
			return missing, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// snapshot is everything counted at one moment.
type snapshot struct {
	at          time.Time
	server      serverSample
	selfCPU     float64
	selfSched   cumBuckets
	sentPackets int64
	sentBytes   int64
	tracks      map[*recvTrack]trackCounts
	hist        histSnap
	stackHist   histSnap
	roleHist    map[string]*histSnap // hist by the receiver's role
	slotHist    histSnap
	cpuBusy     uint64 // machine-wide jiffies, /proc/stat
	cpuTotal    uint64
	loadAvg     float64
}

func (r *runner) snapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{tracks: map[*recvTrack]trackCounts{}, roleHist: map[string]*histSnap{}}
	var err error
	if s.server, err = r.srv.sample(ctx); err != nil {
		return nil, err
	}
	s.at = r.now()
	s.selfCPU, _ = selfUsage()
	s.selfSched = selfSchedBuckets()
	s.cpuBusy, s.cpuTotal, _ = machineCPU()
	s.loadAvg = loadAverage()
	var h histSnap
	for _, a := range r.agents {
		p, b := a.sent()
		s.sentPackets += p
		s.sentBytes += b
		for _, t := range a.receiving() {
			s.tracks[t] = t.counts()
		}
		a.hist.snapshot(&h)
		s.hist.add(&h)
		rh := s.roleHist[a.spec.Role]
		if rh == nil {
			rh = &histSnap{}
			s.roleHist[a.spec.Role] = rh
		}
		rh.add(&h)
		a.slotHist.snapshot(&h)
		s.slotHist.add(&h)
		a.stackHist.snapshot(&h)
		s.stackHist.add(&h)
	}
	return s, nil
}

// window measures for d, after --warmup: snapshots at both ends, and the server's memory
// sampled every second in between for its peak.
func (r *runner) window(ctx context.Context, d time.Duration) (start, end *snapshot, peakRSS int64, err error) {
	select {
	case <-ctx.Done():
		return nil, nil, 0, ctx.Err()
	case <-time.After(r.cfg.Warmup):
	}
	if start, err = r.snapshot(ctx); err != nil {
		return nil, nil, 0, err
	}
	peakRSS = start.server.rss
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return nil, nil, 0, ctx.Err()
		case <-tick.C:
			if s, err := r.srv.sample(ctx); err == nil {
				peakRSS = max(peakRSS, s.rss)
			}
		case <-timer.C:
			done = true
		}
	}
	if end, err = r.snapshot(ctx); err != nil {
		return nil, nil, 0, err
	}
	peakRSS = max(peakRSS, end.server.rss, end.server.hwm)
	return start, end, peakRSS, nil
}

// stopMedia stops every publisher.
func (r *runner) stopMedia() {
	var wg sync.WaitGroup
	for _, a := range r.agents {
		wg.Add(1)
		go func() { defer wg.Done(); a.stopMedia() }()
	}
	wg.Wait()
}

// closeAll makes every participant leave, a few at a time.
func (r *runner) closeAll() {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, a := range r.agents {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a.close()
		}()
	}
	wg.Wait()
	r.agents = nil
}
