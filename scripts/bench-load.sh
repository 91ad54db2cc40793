#!/bin/bash
# The load runs behind docs/benchmarks.md ("Current figures"). Run on a quiet
# machine: every figure is CPU-sensitive. Reports go to $OUT (text and JSON).
set -u
OUT=${OUT:-/tmp/bench/out}
BIN=${BIN:-/tmp/bench}
mkdir -p "$OUT" "$BIN"
go build -o "$BIN/" ./cmd/ducha ./cmd/ducha-load || exit 1
run() {
	name=$1
	shift
	echo "=== $name: $*"
	timeout 900 "$BIN/ducha-load" --spawn --server-bin "$BIN/ducha" "$@" --json "$OUT/$name.json" >"$OUT/$name.txt" 2>&1
	echo "exit $? $name"
}
# Pairs against an older build (fourth session):
#   BASE_BIN=/path/to/old/ducha scripts/bench-load.sh pairs
# runs only these, alternating the two servers so that the host's drift
# affects both alike.
if [ "${1:-}" = pairs ]; then
	: "${BASE_BIN:?set BASE_BIN to the older ducha binary}"
	pair() {
		name=$1
		shift
		for b in base new; do
			srv="$BIN/ducha"
			[ "$b" = base ] && srv=$BASE_BIN
			echo "=== $name-$b: $*"
			timeout 900 "$BIN/ducha-load" --spawn --server-bin "$srv" "$@" --json "$OUT/$name-$b.json" >"$OUT/$name-$b.txt" 2>&1
			echo "exit $? $name-$b"
		done
	}
	for i in 1 2; do
		pair "s1-8rooms-single-$i" --scenario s1 --rooms 8 --size 4 --duration 30s --simulcast=false \
			--server-arg=--record-adhoc=false
	done
	pair s1-8rooms-simulcast --scenario s1 --rooms 8 --size 4 --duration 30s --server-arg=--record-adhoc=false
	for i in 1 2; do
		pair "s2-117-norec-$i" --scenario s2 --counties 117 --duration 30s --late-joiners 20 \
			--server-arg=--record-adhoc=false
	done
	pair s2-117 --scenario s2 --counties 117 --duration 30s --late-joiners 20
	exit 0
fi
run s1-1room --scenario s1 --rooms 1 --size 4 --duration 20s
run s1-1room-norec --scenario s1 --rooms 1 --size 4 --duration 20s --server-arg=--record-adhoc=false
run s1-1room-single --scenario s1 --rooms 1 --size 4 --duration 20s --simulcast=false --server-arg=--record-adhoc=false
for n in 10 30 60 117; do
	run "s2-$n-norec" --scenario s2 --counties "$n" --duration 20s --server-arg=--record-adhoc=false
	run "s2-$n" --scenario s2 --counties "$n" --duration 20s
done
# The reference shape (the figures it quotes for another SFU): one
# 720p video at 1.75 Mbit/s, single stream, to 40 viewers that send nothing.
for i in 1 2; do
	run "fanout-1to40-$i" --scenario s2 --counties 40 --duration 30s --late-joiners 0 --simulcast=false \
		--video-kbps 1750 --audio=false --small-video-kbps 0 --server-arg=--record-adhoc=false
done
run ramp-norec --scenario ramp --size 4 --ramp-step 1 --ramp-max 12 --duration 10s --server-arg=--record-adhoc=false
run ramp-single-norec --scenario ramp --size 4 --ramp-step 1 --ramp-max 12 --duration 10s --simulcast=false \
	--server-arg=--record-adhoc=false
# Batched against direct sends (sendto per packet), interleaved so that the
# machine's drift affects both alike.
for i in 1 2; do
	for b in true false; do
		run "s1-8rooms-single-batch-$b-$i" --scenario s1 --rooms 8 --size 4 --duration 20s --simulcast=false \
			--server-arg=--record-adhoc=false --server-arg=--batch-send=$b
	done
done
run s2-117-norec-direct --scenario s2 --counties 117 --duration 20s --server-arg=--record-adhoc=false \
	--server-arg=--batch-send=false
