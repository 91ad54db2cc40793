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
run s1-1room --scenario s1 --rooms 1 --size 4 --duration 20s
run s1-1room-norec --scenario s1 --rooms 1 --size 4 --duration 20s --server-arg=--record-adhoc=false
run s1-1room-single --scenario s1 --rooms 1 --size 4 --duration 20s --simulcast=false --server-arg=--record-adhoc=false
for n in 10 30 60 117; do
	run "s2-$n-norec" --scenario s2 --counties "$n" --duration 20s --server-arg=--record-adhoc=false
	run "s2-$n" --scenario s2 --counties "$n" --duration 20s
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
