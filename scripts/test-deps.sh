#!/usr/bin/env bash
# Ensures everything `make test` needs is installed and running, on a fresh Debian 12 machine as well as on a
# developer's machine where it all exists already. Idempotent: each step checks before it acts, so a second run
# takes a second or two. Prints one line per dependency: "found" or "installed"/"started"/"built".
#
# Exports nothing: the Makefile tells the tests where MinIO is (DUCHA_MINIO_BIN).
set -euo pipefail

# The MinIO community server ships as source only; this commit is the one known to build with our Go and to
# support object lock on a single drive (see /work/shared/RECIPES.md).
readonly MINIO_MODULE="github.com/minio/minio"
readonly MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

readonly REDIS_ADDR_HOST="127.0.0.1"
readonly REDIS_PORT="6379"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT

say() { printf '%-22s %s\n' "$1" "$2"; }
die() {
	printf 'test-deps: %s\n' "$*" >&2
	exit 1
}

# sudo only when we are not root and it exists; CI runs as root.
SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	fi
fi
readonly SUDO

# --- 1. Debian packages ------------------------------------------------------------------------------------
# Checked by the binary the tests run, not by package name, so a Redis built from source (or a Chromium
# installed some other way) counts as present.
declare -a apt_missing=()
declare -a apt_labels=()
need_binary() { # need_binary BINARY PACKAGE
	if command -v "$1" >/dev/null 2>&1; then
		say "$2" "found ($(command -v "$1"))"
	else
		apt_missing+=("$2")
		apt_labels+=("$1")
	fi
}

need_binary chromium chromium
need_binary ffprobe ffmpeg
need_binary mkvinfo mkvtoolnix
need_binary redis-server redis-server
# The race detector needs cgo, hence a C compiler (make test runs the load tool's smoke test under -race).
need_binary gcc gcc

if ((${#apt_missing[@]} > 0)); then
	if [[ "$(id -u)" -ne 0 && -z "$SUDO" ]]; then
		die "need to install ${apt_missing[*]} but am not root and sudo is missing"
	fi
	command -v apt-get >/dev/null 2>&1 || die "need ${apt_missing[*]} but apt-get is missing (not Debian?)"
	echo "installing Debian packages: ${apt_missing[*]} (apt-get update first)"
	# Quiet unless it fails: apt's progress output would bury the test results.
	apt_log="$(mktemp)"
	trap 'rm -f "$apt_log"' EXIT
	if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >"$apt_log" 2>&1 ||
		! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "${apt_missing[@]}" >>"$apt_log" 2>&1; then
		tail -n 40 "$apt_log" >&2
		die "apt-get failed for ${apt_missing[*]}"
	fi
	for i in "${!apt_missing[@]}"; do
		command -v "${apt_labels[$i]}" >/dev/null 2>&1 ||
			die "installed ${apt_missing[$i]} but ${apt_labels[$i]} is still not on PATH"
		say "${apt_missing[$i]}" "installed ($(command -v "${apt_labels[$i]}"))"
	done
fi

# --- 2. npm packages for the browser tests -----------------------------------------------------------------
# The stamp holds a hash of package.json and the lockfile: node_modules is reinstalled when either changes,
# which mtimes cannot tell reliably after a git checkout.
E2E="$ROOT/web/e2e"
if [[ -f "$E2E/package.json" ]]; then
	command -v npm >/dev/null 2>&1 || die "web/e2e/package.json exists but npm is missing"
	stamp="$E2E/node_modules/.ducha-deps.sha256"
	want="$(cat "$E2E/package.json" "$E2E/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)"
	if [[ -d "$E2E/node_modules" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
		say "npm web/e2e" "found"
	else
		# Playwright must never download a browser: we drive Debian's chromium.
		npm_cmd=(ci)
		if [[ ! -f "$E2E/package-lock.json" ]]; then
			echo "web/e2e/package-lock.json is missing: using npm install (commit the lockfile)" >&2
			npm_cmd=(install)
		fi
		npm_log="$(mktemp)"
		if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm "${npm_cmd[@]}" --prefix "$E2E" --no-audit --no-fund \
			--loglevel=error >"$npm_log" 2>&1; then
			cat "$npm_log" >&2
			rm -f "$npm_log"
			die "npm ${npm_cmd[*]} failed in web/e2e"
		fi
		rm -f "$npm_log"
		printf '%s\n' "$want" >"$stamp"
		say "npm web/e2e" "installed"
	fi
else
	say "npm web/e2e" "not needed (no web/e2e/package.json)"
fi

# --- 3. Redis on 127.0.0.1:6379 ----------------------------------------------------------------------------
redis_pong() {
	[[ "$(redis-cli -h "$REDIS_ADDR_HOST" -p "$REDIS_PORT" ping 2>/dev/null || true)" == "PONG" ]]
}
command -v redis-cli >/dev/null 2>&1 || die "redis-cli is missing (Debian package redis-tools)"
if redis_pong; then
	say "redis" "found (PONG on $REDIS_ADDR_HOST:$REDIS_PORT)"
else
	$SUDO mkdir -p /var/lib/redis /var/log/redis
	# The same command the machines use, so tests see the same server (no persistence, loopback only).
	$SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
	for _ in $(seq 1 50); do
		redis_pong && break
		sleep 0.2
	done
	if ! redis_pong; then
		tail -n 20 /var/log/redis/ci.log >&2 2>/dev/null || true
		die "started redis-server but it does not answer PONG on $REDIS_ADDR_HOST:$REDIS_PORT"
	fi
	say "redis" "started (PONG on $REDIS_ADDR_HOST:$REDIS_PORT)"
fi

# --- 4. MinIO, built from source at a pinned commit ---------------------------------------------------------
command -v go >/dev/null 2>&1 || die "go is missing"
gopath="$(go env GOPATH)"
gopath="${gopath%%:*}" # the first entry is where go install writes
minio_bin="$gopath/bin/minio"
minio_stamp="$gopath/bin/.minio-version"

# The module version recorded in the binary's build info; empty if unreadable.
minio_built_version() {
	go version -m "$minio_bin" 2>/dev/null |
		awk -v m="$MINIO_MODULE" '$1 == "mod" && $2 == m { print $3; exit }'
}

minio_ok() {
	[[ -x "$minio_bin" ]] || return 1
	# Fast path: a stamp written after the binary, naming the pinned version.
	if [[ -f "$minio_stamp" && "$minio_stamp" -nt "$minio_bin" && "$(cat "$minio_stamp")" == "$MINIO_VERSION" ]]; then
		return 0
	fi
	# A binary without a (fresh) stamp, e.g. built by hand: trust its build info, then stamp it.
	if [[ "$(minio_built_version)" == "$MINIO_VERSION" ]]; then
		printf '%s\n' "$MINIO_VERSION" >"$minio_stamp"
		return 0
	fi
	return 1
}

# Another `go install` of MinIO (a developer's background build, a parallel make) would race ours on the same
# output file and double a 10-minute build on 2 cores: wait for it instead. The pattern matches only a process
# whose command line starts with go, not a shell whose script merely mentions it.
other_minio_build() {
	pgrep -f '(^|/)go install github\.com/minio/minio' >/dev/null 2>&1
}

if minio_ok; then
	say "minio" "found ($minio_bin $MINIO_VERSION)"
else
	if other_minio_build; then
		echo "another go install of MinIO is running: waiting for it (up to 30 min)"
		for i in $(seq 1 180); do
			other_minio_build || break
			((i % 6 == 0)) && echo "  still waiting for the other MinIO build ($((i / 6)) min)"
			sleep 10
		done
		other_minio_build && die "the other MinIO build is still running after 30 min"
	fi
	if minio_ok; then
		say "minio" "found ($minio_bin $MINIO_VERSION, built by another process)"
	else
		echo "building MinIO $MINIO_VERSION from source (8-12 min on 2 cores)"
		start=$SECONDS
		GOBIN="$gopath/bin" go install "$MINIO_MODULE@$MINIO_VERSION"
		got="$(minio_built_version)"
		[[ "$got" == "$MINIO_VERSION" ]] || die "built $minio_bin but its build info says version '$got'"
		printf '%s\n' "$MINIO_VERSION" >"$minio_stamp"
		say "minio" "built ($minio_bin $MINIO_VERSION in $((SECONDS - start)) s)"
	fi
fi
