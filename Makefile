# goldsync — keep diskless-cluster images in sync with a golden node.
# `make` lists the targets.

GO        ?= go
PREFIX    ?= /usr/local
DESTDIR   ?=
BINDIR    := $(DESTDIR)$(PREFIX)/bin
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
# Test timeout: the whole suite must stay well under 15 minutes.
TEST_TIMEOUT ?= 12m
FUZZTIME  ?= 20s
BIN       := bin

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install the Debian packages the tests need (as root; only what is missing)
	@bash scripts/ci-deps.sh

.PHONY: build
build: ## Build bin/goldsync and bin/goldsync-agent
	$(GO) build -o $(BIN)/ ./cmd/goldsync ./cmd/goldsync-agent

.PHONY: demo
demo: build ## Run the whole flow on an embedded sample in a temp dir
	$(BIN)/goldsync demo

.PHONY: test
test: deps ## Install test dependencies, then run every test (root-only ones too when root)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: race
race: ## Run the tests with the race detector
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Per-test time budget of the long reliability forms (make stress).
STRESS_BUDGET ?= 90s

.PHONY: stress
stress: deps ## Long reliability forms (crash kills, readers, disk full, broken transport), each bounded by STRESS_BUDGET
	GOLDSYNC_STRESS=1 GOLDSYNC_STRESS_BUDGET=$(STRESS_BUDGET) $(GO) test -count=1 -timeout 40m -v ./reliability/

.PHONY: lint
lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: bench
bench: build ## Microbenchmarks, then the side-by-side comparison with rsync
	$(GO) test -run '^$$' -bench . -benchmem ./imaging/... | tee bench/results/micro.txt
	@if [ -x bench/run.sh ]; then bench/run.sh; fi

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: install
install: build ## Install binaries (PREFIX, DESTDIR honoured)
	install -d $(BINDIR)
	install -m 0755 $(BIN)/goldsync $(BIN)/goldsync-agent $(BINDIR)/

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN)
