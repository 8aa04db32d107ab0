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
	cd bench && $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# The diskless boot tests: QEMU (TCG) PXE-boots nodes from goldsync's files,
# nfs-ganesha serves the image; the golden roots are debootstrapped once and
# cached in GOLDSYNC_E2E_CACHE (default /var/cache/goldsync-e2e). About 13 min
# with the cache; a first run adds the debootstraps (about 7 min each, in
# parallel).
E2E_TIMEOUT ?= 40m

.PHONY: e2e
e2e: ## Boot diskless nodes for real: QEMU + nfs-ganesha from goldsync's files (root; installs QEMU, ganesha, loaders)
	@bash scripts/ci-deps.sh e2e
	GOLDSYNC_E2E=1 $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v ./e2e/

.PHONY: race
race: ## Run the tests with the race detector
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Per-test time budget of the long reliability forms (make stress).
STRESS_BUDGET ?= 90s

.PHONY: stress
stress: deps ## Long reliability forms (crash kills, readers, disk full, broken transport), each bounded by STRESS_BUDGET
	GOLDSYNC_STRESS=1 GOLDSYNC_STRESS_BUDGET=$(STRESS_BUDGET) $(GO) test -count=1 -timeout 40m -v ./reliability/

.PHONY: lint
lint: $(STATICCHECK) ## gofmt, go vet, staticcheck, and go mod tidy changing nothing (both modules)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	cd bench && $(GO) vet ./... && $(STATICCHECK) ./...
	@for m in . bench; do (cd $$m && $(GO) mod tidy -diff) || { echo "go mod tidy would change $$m/go.mod or go.sum: run it there"; exit 1; }; done

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Synthetic tree sizes for `make bench` and extra benchrun flags (see
# bench/README.md), e.g. BENCH_SIZES=10000 BENCH_ARGS='-modes warm -pairs 1'.
BENCH_SIZES ?= 10000,50000,200000
BENCH_ARGS  ?=

.PHONY: bench
bench: build ## Microbenchmarks, then goldsync vs rsync over loopback ssh (root; BENCH_SIZES, BENCH_ARGS)
	cd bench && $(GO) build -o $(abspath $(BIN))/ ./cmd/benchrun ./cmd/gentree ./cmd/rusage
	{ $(GO) test -run '^$$' -bench . -benchmem ./imaging/... && cd bench && $(GO) test -run '^$$' -bench . -benchmem . ; } | tee bench/results/micro.txt
	$(BIN)/benchrun -sizes $(BENCH_SIZES) -out bench/results $(BENCH_ARGS)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Where install puts things. Units go under PREFIX, which systemd searches
# (/usr/local/lib/systemd/system by default), so /etc/systemd/system stays
# the admin's for overrides; set UNITDIR=/etc/systemd/system to put them
# there instead. The example config goes to /etc/goldsync, where goldsync
# looks for goldsync.toml; an existing goldsync.toml is never touched.
UNITDIR   ?= $(PREFIX)/lib/systemd/system
MANDIR    ?= $(PREFIX)/share/man
DOCDIR    ?= $(PREFIX)/share/doc/goldsync
CONFDIR   ?= /etc/goldsync
UNITS     := goldsync-sync.service goldsync-sync.timer goldsync-agent-watch.service

.PHONY: install
install: build ## Install binaries, systemd units, man pages, example config (PREFIX, DESTDIR honoured)
	install -d $(BINDIR)
	install -m 0755 $(BIN)/goldsync $(BIN)/goldsync-agent $(BINDIR)/
	install -d $(DESTDIR)$(UNITDIR)
	@set -e; for u in $(UNITS); do \
	  sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' dist/$$u > $(DESTDIR)$(UNITDIR)/$$u; \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; echo "installed $(DESTDIR)$(UNITDIR)/$$u"; \
	done
	install -d $(DESTDIR)$(MANDIR)/man1
	$(BIN)/goldsync man $(DESTDIR)$(MANDIR)/man1
	install -d -m 0755 $(DESTDIR)$(CONFDIR)
	install -m 0644 dist/goldsync.toml.example $(DESTDIR)$(CONFDIR)/goldsync.toml.example
	install -d $(DESTDIR)$(DOCDIR)
	install -m 0644 dist/cron.example $(DESTDIR)$(DOCDIR)/cron.example
	@echo "next: edit $(CONFDIR)/goldsync.toml (from the example), then systemctl daemon-reload && systemctl enable --now goldsync-sync.timer"
	@echo "push: in root's authorized_keys on this server, give each golden node's key only its image (see docs/SECURITY.md):"
	@echo '  restrict,command="$(PREFIX)/bin/goldsync receive --stdio --image NAME" ssh-ed25519 AAAA... root@golden'

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN)
