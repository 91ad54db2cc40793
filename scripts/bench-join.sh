#!/bin/bash
# Browser joins behind docs/benchmarks.md ("eighth session"): headless
# Chromium opens invitation links one after another and reports, per join,
# the milliseconds from navigation to each step up to its first decoded
# frame of the supervisor's video (web/e2e/joinbench.mjs). Needs what
# `make test` installs (Chromium, web/e2e/node_modules).
#
#   scripts/bench-join.sh quiet [JOINS] [ROLE]   a supervisor's browser and one joiner at a time
#                                                (ROLE county: publishes its camera; observer: only receives)
#   scripts/bench-join.sh full [JOINS] [COUNTIES] the joiners are counties of a live S2 room of
#                                                1+COUNTIES simulated participants (ducha-load)
#
# BIN (default /tmp/bench-join/ducha) is the server binary, built from this
# checkout unless it exists; OUT (default /tmp/bench-join/out) gets the
# server log, one JSON line per join and the summary (last line).
# LOAD_ARGS adds ducha-load flags in full mode (e.g. "--nice 10"); SERVER_ARGS
# adds `ducha serve` flags (e.g. "--public-ips 127.0.0.1": one announced
# address, as a deployment has, where loopback clients reach two); JOIN_ARGS
# adds joinbench.mjs flags (e.g. "--parallel 4": waves of joins at once).
set -eu
MODE=${1:-quiet}
JOINS=${2:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=/tmp/bench-join
BIN=${BIN:-$WORK/ducha}
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK"
rm -rf "$OUT" && mkdir -p "$OUT"
[ -x "$BIN" ] || (cd "$ROOT" && go build -o "$BIN" ./cmd/ducha)
PORT=$((18000 + RANDOM % 1000))
URL=http://127.0.0.1:$PORT
"$BIN" serve --http-addr 127.0.0.1:$PORT --data-dir "$OUT/data" --udp-port $((PORT + 1000)) --tcp-port -1 \
	--include-loopback --record-adhoc=false --log-level debug ${SERVER_ARGS:-} >"$OUT/server.log" 2>&1 &
SERVER=$!
LOAD=
cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null
	kill "$SERVER" 2>/dev/null
	wait 2>/dev/null
}
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.2; done
token() { "$BIN" token --data-dir "$OUT/data" --url "$URL" --room "$1" --identity "$2" --name "$2" --role "$3" --ttl 2h; }
: >"$OUT/joiners"
case $MODE in
quiet)
	ROLE=${3:-county}
	SUP=$(token r1 sup supervisor)
	for i in 1 2 3 4; do token r1 "j$i" "$ROLE" >>"$OUT/joiners"; done
	ARGS=(--supervisor "$SUP")
	;;
full)
	N=${3:-100}
	(cd "$ROOT" && go build -o "$WORK/ducha-load" ./cmd/ducha-load)
	"$WORK/ducha-load" --server "$URL" --data-dir "$OUT/data" --server-pid "$SERVER" --scenario s2 --counties "$N" \
		--late-joiners 0 --duration 600s ${LOAD_ARGS:-} >"$OUT/load.log" 2>&1 &
	LOAD=$!
	# Everyone has joined and published, and media reached every receiver.
	for _ in $(seq 1200); do
		grep -q 'msg=measuring' "$OUT/load.log" && break
		kill -0 "$LOAD" 2>/dev/null || { echo "ducha-load ended early: $OUT/load.log" >&2; exit 1; }
		sleep 0.5
	done
	ROOM=$(grep -m1 'participant joined' "$OUT/server.log" | sed -E 's/.* room=([^ ]+).*/\1/')
	for i in 1 2 3 4; do token "$ROOM" "bj$i" county >>"$OUT/joiners"; done
	ARGS=()
	;;
*)
	echo "usage: $0 quiet|full [JOINS] [ROLE|COUNTIES]" >&2
	exit 2
	;;
esac
(cd "$ROOT/web/e2e" && node joinbench.mjs "${ARGS[@]}" --joiners "$OUT/joiners" --joins "$JOINS" ${JOIN_ARGS:-}) \
	>"$OUT/joins.jsonl" 2>"$OUT/joinbench.log"
tail -1 "$OUT/joins.jsonl"
