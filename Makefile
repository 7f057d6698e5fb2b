# hakuban — top-level build. `make help` lists the targets.
GO        ?= go
GOFLAGS   ?=
RACE      ?= -race
BENCHTIME ?= 1s
COUNT     ?= 1

.PHONY: all build test test-go lint vet fmt bench fuzz demo clean help

all: build ## build everything

build: ## build the Go packages and commands
	$(GO) build $(GOFLAGS) ./...

test: lint test-go ## run every test suite (the README's test command)

test-go: ## Go tests with the race detector
	$(GO) test $(GOFLAGS) $(RACE) -count=1 ./...

lint: vet fmt ## gofmt + go vet

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench: ## benchmarks (COUNT=6 for benchstat-ready output)
	$(GO) test $(GOFLAGS) -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -count=$(COUNT) ./...

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; done

demo: ## the main job: a live demo of exposers and observers
	$(GO) run ./examples/demo

.PHONY: router
router: ## build the standalone router: build/hakuban-router
	$(GO) build $(GOFLAGS) -o build/hakuban-router ./cmd/router

clean: ## remove build outputs
	rm -rf build dist
	$(GO) clean -testcache

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
