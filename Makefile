# ducha: the two commands are `make run` (or `go run ./cmd/ducha`) and `make test`.
# `make test` installs and starts what the tests need (scripts/test-deps.sh), then vets and tests everything.

GO ?= go
GOPATH_BIN := $(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin

# Tests that need an S3 server start their own MinIO from this binary (built by scripts/test-deps.sh).
DUCHA_MINIO_BIN ?= $(GOPATH_BIN)/minio
export DUCHA_MINIO_BIN

# Two packages at a time: the machines have 2 cores and several suites start browsers or servers.
TEST_FLAGS ?= -p 2 -count=1 -timeout 30m
FUZZ_TIME ?= 20s

# Go files we own: node_modules may ship .go files of its own, and .git never holds ours.
GO_FILES = $(shell find . -path ./.git -prune -o -path ./web/e2e/node_modules -prune -o -name '*.go' -print)

.PHONY: all run build deps test test-race race-smoke fuzz bench lint fmt vet check-deploy clean

all: build

run:
	$(GO) run ./cmd/ducha

# Every main package under cmd/ lands in bin/ under its directory name (bin/ducha, ...).
build:
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/...

deps:
	@echo "==> dependencies (scripts/test-deps.sh)"
	@bash scripts/test-deps.sh

test: deps
	@echo "==> go vet ./..."
	@$(GO) vet ./...
	@echo "==> go test $(TEST_FLAGS) ./... (DUCHA_MINIO_BIN=$(DUCHA_MINIO_BIN))"
	@$(GO) test $(TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory race-smoke
	@$(MAKE) --no-print-directory fuzz

# The load tool's smoke test under the race detector: real Pion clients, our
# signaling client and a spawned server, a few seconds. A data race in the
# client once let both ends of a call wait as DTLS servers (sixth session);
# only a -race build showed it. The whole suite under -race is test-race.
race-smoke:
	@echo "==> go test -race -run TestSmoke ./cmd/ducha-load/"
	@CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m -run '^TestSmoke$$' ./cmd/ducha-load/

# A short fuzz run of the signaling decoder (the corpus in signaling/testdata/fuzz is replayed by go test too).
fuzz:
	@echo "==> fuzz signaling FuzzDecode for $(FUZZ_TIME)"
	@$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZ_TIME) ./signaling/

# The race detector needs cgo (gcc); slower, so not part of `make test`.
test-race: deps
	$(GO) test -race $(TEST_FLAGS) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./sfu/...

lint: vet check-deploy
	@echo "==> gofmt -l"
	@files="$(GO_FILES)"; [ -z "$$files" ] && exit 0; \
	out="$$(gofmt -l $$files)" || exit 1; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	@$(GO) vet ./...

fmt:
	gofmt -w $(GO_FILES)

# YAML validity of deploy/ (needs python3 with PyYAML; says so and passes when it is missing).
check-deploy:
	@bash scripts/check-deploy.sh

clean:
	rm -rf bin
