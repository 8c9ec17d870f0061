# wsgrpo: the two commands are `make demo` and `make test`; both run `make setup` first.
GO          ?= go
WSGRPO_HOME ?= $(HOME)/.cache/wsgrpo
export WSGRPO_HOME
BIN         := bin/wsgrpo
TEST_TIMEOUT ?= 45m

.PHONY: setup setup-test build demo test test-short bench fuzz lint clean

## setup: fetch and cache ONNX Runtime and libchdb (idempotent)
setup:
	bash scripts/setup.sh

## setup-test: setup plus the ClickHouse server used by the tests
setup-test:
	bash scripts/setup.sh --clickhouse

## build: compile the wsgrpo binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/wsgrpo

## demo: the main job (see README)
demo: setup build
	rm -rf runs/demo
	./$(BIN) train --wiring --run demo --dir runs/demo --progress --log-level warn

## test: vet and run every test against real NATS, ONNX Runtime, ClickHouse and chDB
test: setup-test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## test-short: the quick subset (no multi-process or long tests)
test-short: setup
	$(GO) test -count=1 -short ./...

## bench: Go benchmarks of every package (figures go into docs/BENCHMARKS.md)
bench: setup-test build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...
	./$(BIN) bench

## fuzz: run each fuzz target for a short while
fuzz:
	bash scripts/fuzz.sh

## lint: gofmt and go vet (staticcheck when installed)
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; fi

clean:
	rm -rf bin runs
