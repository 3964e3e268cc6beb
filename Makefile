# Tavern: `make` prints this help. Targets are documented by their `## ` line.
SHELL := /bin/bash
GO ?= go
CONFIG ?= ./sys.config
HOST ?= $(shell hostname -f 2>/dev/null || hostname)
export CGO_ENABLED ?= 0

.DEFAULT_GOAL := help

help: ## print this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/tavern-server and bin/tavern-console
	$(GO) build -o bin/tavern-server ./nodes/server
	@if [ -d nodes/console ]; then $(GO) build -o bin/tavern-console ./nodes/console; fi

run: build ## run one node with the embedded SQLite default (CONFIG=./sys.config)
	./bin/tavern-server -config $(CONFIG)

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
RELEASE_LDFLAGS := -X github.com/tavernhq/tavern/apps/console.Version=$(VERSION)
release: ## build bin/ and write rel/sys.config from ./sys.config with a fresh random node name and cookie (HOST=...)
	$(GO) build -ldflags "$(RELEASE_LDFLAGS)" -o bin/tavern-server ./nodes/server
	$(GO) build -ldflags "$(RELEASE_LDFLAGS)" -o bin/tavern-console ./nodes/console
	$(GO) run ./tools/release -from ./sys.config -out rel/sys.config -host $(HOST)

attach: ## attach a console to the node of CONFIG=path (a REPL; CMD="boards" runs one command)
	$(GO) build -o bin/tavern-console ./nodes/console
	./bin/tavern-console -config $(CONFIG) $(CMD)

.PHONY: release attach

cluster: build ## run N=2 local nodes sharing the local Postgres (DSN=...); prints their URLs
	$(GO) run ./tools/cluster -n $(or $(N),2) $(if $(DSN),-dsn $(DSN))

test: ## run every test with the race detector (Postgres at 127.0.0.1:5432, erl)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...

bench: ## every benchmark vs its baseline, A B A B A B (Postgres); writes docs/BENCHMARKS.md + docs/bench/ (BENCH_FLAGS=...)
	$(GO) run ./tools/bench $(BENCH_FLAGS)

chaos: ## chaos run: 3 node processes, faults under load, invariant check (DURATION=10m, CHAOS_FLAGS=...)
	$(GO) run ./tools/chaos -duration $(or $(DURATION),10m) $(CHAOS_FLAGS)

lint: ## go vet + staticcheck
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...

tidy: ## go mod tidy + gofmt
	$(GO) mod tidy
	gofmt -w $$(git ls-files '*.go')

.PHONY: help build run cluster test bench chaos lint tidy
