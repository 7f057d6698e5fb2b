# hakuban — top-level build. `make help` lists the targets.
GO        ?= go
GOFLAGS   ?=
RACE      ?= -race
BENCHTIME ?= 1s
COUNT     ?= 1

.PHONY: all build setup test test-go lint vet fmt bench fuzz demo clean help lib test-c bench-c install

all: build ## build everything

build: ## build the Go packages and commands
	$(GO) build $(GOFLAGS) ./...

setup: ## install what the test suites need (Ruby, ffi, cmake, pytest) when missing
	@scripts/setup.sh

test: setup lint test-go test-c test-ruby test-python ## run every test suite (the README's test command)

test-go: ## Go tests with the race detector
	$(GO) test $(GOFLAGS) $(RACE) -count=1 ./...

lint: vet fmt ## gofmt + go vet

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

bench: bench-c bench-net bench-nats ## benchmarks (COUNT=6 for benchstat-ready output)
	$(GO) test $(GOFLAGS) -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -count=$(COUNT) ./...

# The C library (libhakuban.so, include/hakuban.h) is built by CMake, which
# runs go build -buildmode=c-shared; see CMakeLists.txt and docs/c.md.
CMAKE     ?= cmake
BUILD_DIR ?= build
PREFIX    ?= /usr/local
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)

$(BUILD_DIR)/CMakeCache.txt:
	@command -v $(CMAKE) >/dev/null || { echo "cmake not found (Debian: apt-get install cmake)"; exit 1; }
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo

lib: $(BUILD_DIR)/CMakeCache.txt ## build the C library: build/lib/libhakuban.so
	$(CMAKE) --build $(BUILD_DIR) --target hakuban_lib

test-c: $(BUILD_DIR)/CMakeCache.txt ## C library tests (ctest: API, bad handles, fd, callbacks, threads, ASan, install)
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

bench-c: $(BUILD_DIR)/CMakeCache.txt ## C API benchmarks (3 runs each, medians)
	$(CMAKE) --build $(BUILD_DIR) --target bench_capi
	$(BUILD_DIR)/tests/c/bench_capi

install: $(BUILD_DIR)/CMakeCache.txt ## install the C library, header, CMake and pkg-config files under PREFIX
	$(CMAKE) --build $(BUILD_DIR) --target hakuban_lib
	$(CMAKE) --install $(BUILD_DIR) --prefix $(PREFIX)

# Network benchmarks (issue 6): latency, absorption, fan-out and resync on
# loopback with a real hakuban-router and peer processes; a table of
# medians over 5 runs each, about 5 minutes. NETBENCH_FLAGS passes flags,
# e.g. NETBENCH_FLAGS="-n 3 -scenarios latency,fanout" or "-cpuprofile prof".
NETBENCH_FLAGS ?=
.PHONY: bench-net
bench-net: ## network benchmarks: latency, absorption, fan-out, resync (real router processes)
	$(GO) build $(GOFLAGS) -o $(BUILD_DIR)/hakuban-netbench ./bench/netbench
	$(BUILD_DIR)/hakuban-netbench $(NETBENCH_FLAGS)

# The nats-server reference for bench-net (bench/natsref/README.md): latency
# and fan-out of nats-server measured the same way, in the same run, with
# the raw TCP floor; medians over 3 runs, about a minute. bench/natsref is a
# separate Go module (the hakuban module has no nats dependency; ./... does
# not include it). NATSREF_FLAGS passes flags, e.g. NATSREF_FLAGS="-n 5".
NATSREF_FLAGS ?=
.PHONY: bench-nats
bench-nats: ## nats-server reference for the network benchmarks (same method, same run)
	cd bench/natsref && $(GO) build $(GOFLAGS) -o $(abspath $(BUILD_DIR))/hakuban-natsref .
	$(BUILD_DIR)/hakuban-natsref $(NATSREF_FLAGS)

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=2s $$pkg; \
	  done; done

.PHONY: router
router: ## build the standalone router: build/hakuban-router
	$(GO) build $(GOFLAGS) -o build/hakuban-router ./cmd/router

# The Python binding (bindings/python): pytest against a copy of the library
# `make lib` builds (a copy, so a concurrent rebuild cannot change it under a
# running test), imported from the source tree. The tests also pip-install
# the package offline. bench-python: 3 runs, medians.
PYTHON    ?= python3
PY_LIB    := $(BUILD_DIR)/python/libhakuban.so
PY_ENV     = HAKUBAN_LIBRARY=$(CURDIR)/$(PY_LIB) PYTHONPATH=$(CURDIR)/bindings/python/src

.PHONY: test-python bench-python
$(PY_LIB): lib
	@mkdir -p $(dir $@)
	cp -L $(BUILD_DIR)/lib/libhakuban.so $@.tmp && mv -f $@.tmp $@

test-python: $(PY_LIB) router ## Python binding tests (pytest; router tests use build/hakuban-router)
	$(PY_ENV) $(PYTHON) -m pytest -q -p no:cacheprovider bindings/python/tests

bench-python: $(PY_LIB) ## Python binding benchmark (3 runs, medians)
	$(PY_ENV) $(PYTHON) bindings/python/bench.py

# The Ruby binding (bindings/ruby): minitest via rake against the library
# `make lib` builds, copied into the gem's lib/hakuban/native/ (where the
# installed gem finds it; the suite also gem-builds and installs it offline).
# bench-ruby: 3 runs, medians.
RAKE      ?= rake
RUBY      ?= ruby
RB_LIB    := bindings/ruby/lib/hakuban/native/libhakuban.so
RB_ENV     = HAKUBAN_LIBRARY=$(CURDIR)/$(RB_LIB)

.PHONY: test-ruby bench-ruby
$(RB_LIB): lib
	@mkdir -p $(dir $@)
	cp -L $(BUILD_DIR)/lib/libhakuban.so $@.tmp && mv -f $@.tmp $@

test-ruby: $(RB_LIB) router ## Ruby binding tests (minitest via rake; network tests use build/hakuban-router)
	cd bindings/ruby && $(RB_ENV) $(RAKE) test

bench-ruby: $(RB_LIB) ## Ruby binding benchmark (3 runs, medians)
	cd bindings/ruby && $(RB_ENV) $(RUBY) -Ilib bench.rb

clean: ## remove build outputs
	rm -rf build dist
	$(GO) clean -testcache

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# The main job (after the variables it uses).
demo: setup $(BUILD_DIR)/CMakeCache.txt $(PY_LIB) $(RB_LIB) ## the main job: a router with exposers and observers in Go, C, Python and Ruby, live
	$(CMAKE) --build $(BUILD_DIR) --target hakuban_example_exposer hakuban_example_observer
	$(PY_ENV) HAKUBAN_DEMO_C=$(CURDIR)/$(BUILD_DIR)/examples/c HAKUBAN_DEMO_PYTHON=$(CURDIR)/bindings/python/examples \
		HAKUBAN_DEMO_RUBY=$(CURDIR)/bindings/ruby $(GO) run ./examples/demo

