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
# The binaries carry the commit they were built from (goldsync --version):
# the go command's VCS stamp, asked for here even when GOFLAGS says
# -buildvcs=false. Outside a git checkout (a release tarball) there is none
# and --version shows the executable's hash instead.
BUILDFLAGS ?= -buildvcs=auto

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install the Debian packages the tests need (as root; only what is missing)
	@bash scripts/ci-deps.sh

.PHONY: toolchain
toolchain: ## Check that the Go in use is the one go.mod needs (and say how to get it)
	@GO=$(GO) sh scripts/check-go.sh

.PHONY: build
build: toolchain ## Build bin/goldsync and bin/goldsync-agent
	@# Neither links a C library. The agent is uploaded to golden nodes of
	@# any libc, and libc and the loader were 1.5 MiB of its resident
	@# memory. goldsync starts once per replica update and per push (the
	@# forced command receive): without libc and the NSS lookups an
	@# imported package's init makes, it starts in 15 ms of CPU, not 23.
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $(BIN)/ ./cmd/goldsync
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $(BIN)/ ./cmd/goldsync-agent

.PHONY: demo
demo: build ## Run the whole flow on an embedded sample in a temp dir
	$(BIN)/goldsync demo

.PHONY: test
test: deps toolchain ## Install test dependencies, then run every test (root-only ones too when root)
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
# there instead. Every unit's ExecStart names PREFIX/bin. The example config
# goes to SYSCONFDIR/goldsync: /etc/goldsync, where goldsync looks for
# goldsync.toml, for the system's prefixes (/usr, /usr/local), else
# PREFIX/etc/goldsync, as GNU's sysconfdir, so a PREFIX=/tmp/x trial
# writes nothing outside DESTDIR and PREFIX; an existing goldsync.toml is
# never touched. The golden node's package-manager hooks
# (agent/hooks) are installed only when asked, on the golden node:
# HOOKS=auto puts them where apt, dnf and yum read them, for the package
# managers this machine has; HOOKS=all: every one; HOOKS=none (the
# default): none, so an image server or a PREFIX=/tmp/x trial gets no hook.
UNITDIR   ?= $(PREFIX)/lib/systemd/system
MANDIR    ?= $(PREFIX)/share/man
DOCDIR    ?= $(PREFIX)/share/doc/goldsync
ifneq ($(filter /usr /usr/local /usr/ /usr/local/,$(PREFIX)),)
SYSCONFDIR ?= /etc
else
SYSCONFDIR ?= $(PREFIX)/etc
endif
CONFDIR   ?= $(SYSCONFDIR)/goldsync
UNITS     := dist/goldsync-sync.service dist/goldsync-sync.timer dist/goldsync-agent-watch.service \
             agent/hooks/systemd/goldsync-agent-push.service agent/hooks/systemd/goldsync-agent-push.path
HOOKS     ?= none
APT_CONFDIR   ?= /etc/apt/apt.conf.d
DNF_ACTIONDIR ?= /etc/dnf/plugins/post-transaction-actions.d
YUM_PLUGINDIR ?= /usr/lib/yum-plugins
YUM_CONFDIR   ?= /etc/yum/pluginconf.d

.PHONY: install
install: build ## Install binaries, systemd units, package-manager hooks, man pages, example config (PREFIX, DESTDIR, HOOKS honoured)
	install -d $(BINDIR)
	install -m 0755 $(BIN)/goldsync $(BIN)/goldsync-agent $(BINDIR)/
	install -d $(DESTDIR)$(UNITDIR)
	@set -e; for u in $(UNITS); do \
	  n=$$(basename $$u); \
	  sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' $$u > $(DESTDIR)$(UNITDIR)/$$n; \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$n; echo "installed $(DESTDIR)$(UNITDIR)/$$n"; \
	done
	@set -e; hook() { [ "$(HOOKS)" = all ] || { [ "$(HOOKS)" = auto ] && command -v $$1 >/dev/null 2>&1; }; }; \
	if hook apt-get; then \
	  install -D -m 0644 agent/hooks/apt/99goldsync $(DESTDIR)$(APT_CONFDIR)/99goldsync; echo "installed $(DESTDIR)$(APT_CONFDIR)/99goldsync"; fi; \
	if hook dnf; then \
	  install -D -m 0644 agent/hooks/dnf/goldsync.action $(DESTDIR)$(DNF_ACTIONDIR)/goldsync.action; echo "installed $(DESTDIR)$(DNF_ACTIONDIR)/goldsync.action"; fi; \
	if hook yum; then \
	  install -D -m 0644 agent/hooks/yum/goldsync.py $(DESTDIR)$(YUM_PLUGINDIR)/goldsync.py; \
	  install -D -m 0644 agent/hooks/yum/goldsync.conf $(DESTDIR)$(YUM_CONFDIR)/goldsync.conf; echo "installed $(DESTDIR)$(YUM_PLUGINDIR)/goldsync.py"; fi
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	$(BIN)/goldsync man $(DESTDIR)$(MANDIR)/man1
	$(BIN)/goldsync-agent man $(DESTDIR)$(MANDIR)/man1
	install -m 0644 dist/goldsync.toml.5 $(DESTDIR)$(MANDIR)/man5/goldsync.toml.5
	install -d -m 0755 $(DESTDIR)$(CONFDIR)
	install -m 0644 dist/goldsync.toml.example $(DESTDIR)$(CONFDIR)/goldsync.toml.example
	install -d $(DESTDIR)$(DOCDIR)
	install -m 0644 dist/cron.example $(DESTDIR)$(DOCDIR)/cron.example
	@echo "image server: write /etc/goldsync/goldsync.toml (from $(CONFDIR)/goldsync.toml.example; or name another with --config), then systemctl daemon-reload && systemctl enable --now goldsync-sync.timer"
	@echo "push: in root's authorized_keys on the image server, give each golden node's key only its image (see docs/SECURITY.md):"
	@echo '  restrict,command="$(PREFIX)/bin/goldsync receive --stdio --image NAME" ssh-ed25519 AAAA... root@golden'
	@echo "golden node: put PUSH_TO=... in /etc/goldsync/agent.env (the units read it there), then systemctl enable --now goldsync-agent-push.path goldsync-agent-watch.service"

.PHONY: clean
clean: ## Remove build output
	rm -rf $(BIN)
