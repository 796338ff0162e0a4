# koshin — make targets. `make demo` and `make test` are the two commands the
# README promises work on a fresh machine with only Go installed.
GO      ?= go
BIN     ?= bin
GOFLAGS ?=

.PHONY: all build demo test bench bench-fleet bench-agent fuzz cross clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/koshin ./cmd/koshin-agent ./cmd/koshin-tuf-client

demo:
	$(GO) run ./cmd/koshin quickstart

# test: go vet + go test ./... . With KOSHIN_INTEGRATION=1 (set by .ci/run,
# which installs the tools) the integration tests run too — SoftHSM2,
# bootloader tools, swtpm, PostgreSQL, loop devices — and the PKCS#11
# signer is built (-tags pkcs11, needs cgo). Without it they skip, saying why.
ifeq ($(KOSHIN_INTEGRATION),1)
TEST_TAGS := -tags pkcs11
TEST_FLAGS := -count=1
endif

test:
	$(GO) vet $(TEST_TAGS) ./...
	$(GO) test $(TEST_TAGS) $(TEST_FLAGS) ./...

# bench: the figures of docs/benchmarks.md (each section there names its
# exact command; this runs them all).
bench:
	$(GO) test -run '^$$' -bench 'SHA256|PayloadReader|DecryptVerify' -benchtime 3x -count 3 ./trust/verify
	$(GO) test -run '^$$' -bench 'RefreshImage10k' -benchtime 5x -count 3 ./trust/verify
	$(GO) test -run '^$$' -bench . -benchmem ./trust/encryption
	$(GO) test -run '^$$' -bench DirectorSignTargets -count 3 ./trust/repo
	$(GO) build -o $(BIN)/koshin ./cmd/koshin
	$(BIN)/koshin bench checkin --devices 50 --duration 10s
	$(BIN)/koshin bench checkin --devices 50 --duration 10s --resign
	$(BIN)/koshin bench checkin --devices 1000 --duration 10s

# bench-fleet: the simulator's fleet figures (docs/benchmarks.md, "Fleet")
# at FLEET devices, results in FLEET_OUT: a phased rollout, a reconnect
# storm and a power-cut campaign. docs/benchmarks.md names the sizes it ran.
FLEET     ?= 2000
FLEET_OUT ?= /tmp/koshin-bench-fleet
bench-fleet:
	$(GO) build -o $(BIN)/koshin ./cmd/koshin
	KOSHIN=$(BIN)/koshin sim/bench/fleet.sh $(FLEET_OUT)/rollout $(FLEET) --poll 60s --timeout 2h
	ROLLOUT=none KOSHIN=$(BIN)/koshin sim/bench/fleet.sh $(FLEET_OUT)/storm $(FLEET) \
	  --poll 10m --start-jitter 30s --timeout 40m --outage-at 20s --outage-for 30s
	IMAGE_SIZE=65536 ROLLOUT=10%,100% MAX_FAILURE_PERCENT=40 KOSHIN=$(BIN)/koshin \
	  sim/bench/fleet.sh $(FLEET_OUT)/cuts $(FLEET) --poll 10s --timeout 40m --power-cuts 10 --health-fail 0.05 --boot-fail 0.02

# bench-agent: agent size, idle memory and install speed against RAUC,
# SWUpdate and (with KOSHIN_BENCH_MENDER=1) Mender; needs root and the
# packages bench/agent/README.md lists.
bench-agent:
	bench/agent/run.sh

# fuzz: every fuzz target for FUZZTIME each (seed corpora also run in
# `make test`). Minimisation is bounded so large inputs don't eat the budget.
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 50x $$pkg || exit 1; \
	  done; \
	done

cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -o $(BIN)/linux-arm64/ ./cmd/koshin-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -o $(BIN)/linux-arm/ ./cmd/koshin-agent

clean:
	rm -rf $(BIN) test-output
