# wsgrpo: the two commands are `make demo` and `make test`; both run `make setup` first.
GO          ?= go
WSGRPO_HOME ?= $(HOME)/.cache/wsgrpo
export WSGRPO_HOME
BIN         := bin/wsgrpo
TEST_TIMEOUT ?= 45m
LINT        := $(WSGRPO_HOME)/bin/golangci-lint
# Packages with concurrency, run again under the race detector.
RACE_PKGS   := ./pipeline/... ./stages/... ./tracelog/... ./replay/... ./prompts/...

.PHONY: setup setup-test setup-lint build demo test race test-short bench bench-tokenizer fuzz lint clean results results-short scaleout soak chaos gpu-check gpu-check-cpu

## setup: fetch and cache ONNX Runtime and libchdb (idempotent)
setup:
	bash scripts/setup.sh

## setup-test: setup plus the ClickHouse server and the tokenizer reference (npm, node) used by the tests
setup-test:
	bash scripts/setup.sh --clickhouse --tokref

## setup-lint: build golangci-lint (pinned) into $(WSGRPO_HOME)/bin
setup-lint:
	bash scripts/setup.sh --lint

## build: compile the wsgrpo binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/wsgrpo

## demo: the main job (see README)
demo: setup build
	rm -rf runs/demo
	./$(BIN) train --config testdata/configs/demo.yaml --dir runs/demo --progress --log-level warn

## results: GRPO, Dr. GRPO, a length penalty and WS-GRPO, 3 seeds each, from the shipped base (about two hours on 2 cores)
results: setup build
	./$(BIN) results --seeds 3 --runs runs/results --out runs/results/results.md --ship runs/results/policies --compare runs/results/compare --log-level warn

## results-short: the one-seed short version of `make results` (CI)
results-short: setup build
	rm -rf runs/results-short
	./$(BIN) results --seeds 1 --steps 2 --eval 16 --methods grpo,wsgrpo --runs runs/results-short --out runs/results-short/results.md --compare runs/results-short/compare --log-level warn

## test: vet and run every test against real NATS, ONNX Runtime, ClickHouse and chDB
test: setup-test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## race: the packages with concurrency under the race detector
race: setup-test
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(RACE_PKGS)

## scaleout: the multi-process scale-out test alone, verbose (nats-server and ClickHouse processes, every stage a process, kills and a NATS restart; part of make test)
scaleout: setup-test
	$(GO) test -count=1 -run TestScaleOutProcesses -v ./cmd/wsgrpo/

## soak: a 100,000-row wiring run, every stage a process against a nats-server process, with seeded random SIGKILLs and a NATS restart (about a minute; WSGRPO_SOAK_SEED=N replays a run, WSGRPO_SOAK_NATS_SIGNAL=KILL restarts NATS with SIGKILL)
soak: setup
	WSGRPO_SOAK=1 $(GO) test -count=1 -timeout 15m -run '^TestSoakWiring$$' -v ./cmd/wsgrpo/

## chaos: hostile inputs and faults against bin/wsgrpo (issue #13), each case in its own temporary directory; PASS/FAIL per case and the totals (scripts/chaos.sh PATTERN runs the matching cases)
chaos: setup
	bash scripts/chaos.sh

## gpu-check: wsgrpo on CUDA against CPU (greedy agreement, sampler and learner benches) on a GPU machine with a GPU build of ONNX Runtime in WSGRPO_ORT_LIB; gpu-check-cpu runs the same script with its device passes on CPU (a check of the script; in CI)
gpu-check: setup build
	bash scripts/gpu-check.sh

gpu-check-cpu: setup build
	bash scripts/gpu-check.sh --cpu-only --quick --n 8

## test-short: the quick subset (no multi-process or long tests)
test-short: setup
	$(GO) test -count=1 -short ./...

## bench: Go benchmarks of every package (figures go into docs/BENCHMARKS.md)
bench: setup-test build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
	./$(BIN) bench

## bench-tokenizer: the BPE tokenizer against the Hugging Face JS tokenizers on the same corpus, same run (docs/BENCHMARKS.md)
bench-tokenizer: setup-test
	WSGRPO_BENCH_TOKENIZER=1 $(GO) test -count=1 -run TestTokenizerSpeedVsJS -v ./model/tokenizer/
	$(GO) test -run '^$$' -bench 'BPE' -benchtime 3x ./model/tokenizer/

## fuzz: run each fuzz target for a short while
fuzz:
	bash scripts/fuzz.sh

## lint: golangci-lint (errcheck, staticcheck, revive, usetesting, ... see .golangci.yml)
lint: setup-lint
	$(LINT) run ./...

clean:
	rm -rf bin runs
