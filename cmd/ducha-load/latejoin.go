package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ducha-dev/ducha/sfu"
)

// lateJoinTimeout bounds how long one late joiner waits for its first frame;
// one that gets none counts as missing.
const lateJoinTimeout = 15 * time.Second

// lateJoins measures what the first-frame target describes: a county
// joining a room whose participants are all in and sending (the join phase
// of a run brings everyone in at once, a harder and different case). After
// the measurement window, --late-joiners receive-only counties join one at a
// time; each counts from its dial to the first complete keyframe of any
// video, and leaves before the next joins. They are kept out of every other
// figure of the report.
func (r *runner) lateJoins(ctx context.Context, room string) FirstFrameResult {
	var ds []time.Duration
	missing := 0
	for i := 0; i < r.cfg.LateJoiners; i++ {
		spec := agentSpec{Room: room, Identity: fmt.Sprintf("late%02d", i+1), Role: sfu.RoleCounty,
			Down: r.cfg.downFor(sfu.RoleCounty), PacketBytes: r.cfg.PacketBytes,
			Tiles: tilePlan{Supervisor: r.cfg.S2CountyTile, Others: r.cfg.S2PeerTile}}
		d, err := r.lateJoin(ctx, spec, len(r.agents)+1000+i)
		if err != nil {
			r.log.Warn("late joiner saw no frame", "identity", spec.Identity, "err", err)
			missing++
			continue
		}
		ds = append(ds, d)
	}
	return durationStats(ds, missing)
}

func (r *runner) lateJoin(ctx context.Context, spec agentSpec, index int) (time.Duration, error) {
	jctx, cancel := context.WithTimeout(ctx, lateJoinTimeout)
	defer cancel()
	a, err := startAgent(jctx, spec, r.env, index)
	if err != nil {
		return 0, err
	}
	defer a.close()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, t := range a.receiving() {
			if at := t.firstFrameAt.Load(); t.video && at != 0 {
				d := time.Unix(0, at).Sub(a.joinStart)
				// Where the time went, for the slow ones: the join, and
				// whether the video had to ask for a keyframe (it did not
				// start with one).
				r.log.Info("late joiner's first frame", "identity", spec.Identity, "took", d.Round(time.Millisecond),
					"joined_after", a.joined.Sub(a.joinStart).Round(time.Millisecond), "keyframe_requests", t.plis.Load(),
					"layer", layerName(t.layer.Load()))
				return d, nil
			}
		}
		select {
		case <-jctx.Done():
			return 0, fmt.Errorf("%w: %s: no video frame within %s", ErrNoMedia, spec.Identity, lateJoinTimeout)
		case <-tick.C:
		}
	}
}
