package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// joinbench.mjs is a measurement tool (docs/benchmarks.md), not a test.
// This runs it for two joins in a quiet room so that it keeps working:
// every step of each join is stamped, in an order a join can have, and the
// summary counts them. It asserts no speed.
func TestJoinBenchSmoke(t *testing.T) {
	node := requireBrowserTools(t)
	root := repoRoot(t)
	dir := t.TempDir()
	srv := startServer(t, buildDucha(t, root, dir), dir)
	const room = "dc-joinbench"
	sup := srv.token(t, room, "jb-sup", "督查", "supervisor", "1h")
	joiners := filepath.Join(dir, "joiners")
	links := srv.token(t, room, "jb-county", "城关县", "county", "1h") + "\n" +
		srv.token(t, room, "jb-obs", "观察", "observer", "1h") + "\n"
	if err := os.WriteFile(joiners, []byte(links), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := nodeCommand(ctx, node, "joinbench.mjs", "--supervisor", sup, "--joiners", joiners,
		"--joins", "2", "--settle-ms", "500")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("joinbench.mjs: %v\nstdout:\n%s\nstderr (tail):\n%s", err, out, tailString(stderr.String(), 30))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 2 join lines and a summary, got:\n%s", out)
	}
	for i, line := range lines[:2] {
		var row map[string]*float64
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("join line %d: %v: %s", i, err, line)
		}
		at := func(step string) float64 {
			v := row[step]
			if v == nil {
				t.Fatalf("join %d: no %q stamp: %s", i, step, line)
			}
			return *v
		}
		// The order every join has: the server's offer follows joined, our
		// answer follows the offer, the connection needs the answer, and
		// no frame is decoded before the answer went out.
		if !(at("ws-open") <= at("rx-joined") && at("rx-joined") <= at("rx-offer") && at("rx-offer") <= at("tx-answer") &&
			at("tx-answer") <= at("pc-connected") && at("tx-answer") <= at("first-frame")) {
			t.Errorf("join %d: steps out of order: %s", i, line)
		}
		at("ice-checking")
		at("track-video")
	}
	var sum struct {
		Joins, Failed int
		JoinedToFirst *struct{ P50, P95, Max *float64 } `json:"joined to first frame"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil {
		t.Fatalf("summary: %v: %s", err, lines[2])
	}
	if sum.Joins != 2 || sum.Failed != 0 || sum.JoinedToFirst == nil || sum.JoinedToFirst.P50 == nil || sum.JoinedToFirst.Max == nil {
		t.Fatalf("summary %s: want 2 joins, none failed, and the joined-to-first-frame spread", lines[2])
	}
}
