package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// run carries out the configured scenario against a spawned or running
// server and returns the report, also when the run failed part way (the
// error then says why, and the report holds what was measured).
func run(ctx context.Context, cfg config, out io.Writer, log *slog.Logger) (rep *Report, err error) {
	now := time.Now
	rep = &Report{Tool: "ducha-load", Scenario: cfg.Scenario, StartedAt: now(), Config: cfg, LastGoodStep: -1,
		Notes: []string{
			"The server and the load tool share this machine: clients.load_tool_cpu_cores is what the simulated participants used.",
			"forwarding_delay is arrival at the receiver's socket minus the send time in the payload, same clock: it includes the sender's and the server's Pion stacks, loopback and scheduling, not only the SFU.",
			"loss_percent counts sequence numbers never received (after NACK); end_to_end_loss_percent counts publisher packets never received, which also shows packets the SFU dropped and renumbered around.",
			"streams_expected counts what the server's session descriptions send (a large room withholds some announced tracks, streams_withheld); audio held back because its publisher is not a loudest speaker is not missing, and it and the speaker slots are left out of end_to_end_loss_percent.",
		}}
	var srv *serverHandle
	if cfg.Spawn {
		srv, err = spawnServer(ctx, cfg, now, log)
	} else {
		srv, err = attachServer(cfg, now, log)
	}
	if err != nil {
		return rep, err
	}
	defer func() { srv.stop(err != nil) }()
	if cfg.Nice != 0 {
		if err := reniceSelf(cfg.Nice); err != nil {
			return rep, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("The load tool ran at nice %d: the simulated clients yield the CPU to the server, "+
			"as they would on their own machines (--nice).", cfg.Nice))
	}
	r := newRunner(cfg, srv, now, log)
	defer r.closeAll()
	base, err := srv.sample(ctx)
	if err != nil {
		return rep, err
	}
	r.baseRSS = base.rss
	if base.cpuSource != "proc" {
		rep.Notes = append(rep.Notes, "Server CPU and memory come from /metrics (process_cpu_seconds_total, "+
			"process_resident_memory_bytes sampled once a second): pass --server-pid for /proc.")
	}
	switch cfg.Scenario {
	case "ramp":
		err = r.runRamp(ctx, rep, out)
	default:
		err = r.runOnce(ctx, rep)
	}
	return rep, err
}

// runOnce: s1 or s2. Join everyone, wait for media everywhere, measure for
// --duration, stop the publishers, wait --grace, count loss.
func (r *runner) runOnce(ctx context.Context, rep *Report) error {
	var specs []agentSpec
	if r.cfg.Scenario == "s1" {
		for i := 0; i < r.cfg.Rooms; i++ {
			specs = append(specs, r.s1Room(i)...)
		}
		r.rooms = r.cfg.Rooms
	} else {
		specs, r.rooms = r.s2Room(), 1
	}
	r.log.Info("joining", "scenario", r.cfg.Scenario, "rooms", r.rooms, "participants", len(specs))
	t0 := r.now()
	if err := r.join(ctx, specs); err != nil {
		return err
	}
	r.log.Info("joined and published", "participants", len(r.agents), "took", r.now().Sub(t0).Round(time.Millisecond))
	missing, err := r.settle(ctx)
	if err != nil {
		return err
	}
	if missing > 0 {
		r.log.Warn("measuring anyway: some receivers miss tracks", "receivers", missing)
	}
	r.log.Info("measuring", "for", r.cfg.Duration)
	start, end, peak, err := r.window(ctx, r.cfg.Duration)
	if err != nil {
		return err
	}
	var late FirstFrameResult
	if r.cfg.Scenario == "s2" && r.cfg.LateJoiners > 0 {
		late = r.lateJoins(ctx, specs[0].Room)
	}
	r.stopMedia()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.cfg.Grace):
	}
	lossEnd, err := r.snapshot(ctx)
	if err != nil {
		return err
	}
	res := r.buildResult(start, end, lossEnd, peak, r.agents)
	res.LateJoinToFirstFrame = late
	rep.Result = &res
	if missing > 0 {
		return fmt.Errorf("%w: %d of %d participants miss tracks after %s", ErrNoMedia, missing, len(r.agents),
			r.cfg.SettleTimeout)
	}
	return nil
}

// runRamp adds --ramp-step s1 rooms at a time and measures each load until
// loss or p99 delay crosses its limit, media stops reaching everyone, a
// join fails, or --ramp-max rooms run. The last step within the limits is
// the answer. Loss per step is counted at the end of its window, without
// a grace period (media keeps flowing into the next step).
func (r *runner) runRamp(ctx context.Context, rep *Report, out io.Writer) error {
	printRampHeader(out)
	for r.rooms < r.cfg.RampMax {
		n := min(r.cfg.RampStep, r.cfg.RampMax-r.rooms)
		var specs []agentSpec
		for i := r.rooms; i < r.rooms+n; i++ {
			specs = append(specs, r.s1Room(i)...)
		}
		before := len(r.agents)
		r.log.Info("ramp step", "rooms", r.rooms+n, "participants", before+len(specs))
		if err := r.join(ctx, specs); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.StopReason = fmt.Sprintf("a participant could not join at %d rooms: %v", r.rooms+n, err)
			return nil
		}
		r.rooms += n
		missing, err := r.settle(ctx)
		if err != nil {
			return err
		}
		start, end, peak, err := r.window(ctx, r.cfg.Duration)
		if err != nil {
			return err
		}
		res := r.buildResult(start, end, nil, peak, r.agents[before:])
		rep.Steps = append(rep.Steps, res)
		loss := max(res.Clients.LossPercent, res.Clients.EndToEndLossPercent)
		verdict := ""
		switch {
		case missing > 0:
			verdict = fmt.Sprintf("media did not reach %d participants within %s", missing, r.cfg.SettleTimeout)
		case loss > r.cfg.MaxLoss:
			verdict = fmt.Sprintf("loss %.2f%% over the %.2f%% limit", loss, r.cfg.MaxLoss)
		case res.Delay.P99Ms > ms(r.cfg.MaxP99Delay):
			verdict = fmt.Sprintf("p99 delay %.1f ms over the %s limit", res.Delay.P99Ms, r.cfg.MaxP99Delay)
		}
		printRampStep(out, res, verdict)
		if verdict != "" {
			rep.StopReason = verdict
			return nil
		}
		rep.LastGoodStep = len(rep.Steps) - 1
	}
	rep.StopReason = fmt.Sprintf("reached --ramp-max %d rooms within the limits", r.cfg.RampMax)
	return nil
}
