#!/bin/sh
# Check that $GO (default go) is the Go go.mod needs; say how to get it if
# not. Run by make before building.
GO=${GO:-go}
need=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' go.mod)
how="Get Go $need from https://go.dev/dl/ (as root:
  tar -C /usr/local -xzf go$need.linux-amd64.tar.gz; export PATH=/usr/local/go/bin:\$PATH),
or use any Go 1.21 or newer (e.g. from your distribution's backports): it fetches
the go $need toolchain go.mod asks for by itself (GOTOOLCHAIN=auto, needs network).
Debian 12's golang package is Go 1.19 and cannot build goldsync. Then: make GO=/path/to/go ..."
if ! command -v "$GO" >/dev/null 2>&1; then
	printf 'goldsync needs Go %s; "%s" is not installed.\n%s\n' "$need" "$GO" "$how" >&2
	exit 1
fi
have=$("$GO" env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9][0-9.]*\).*/\1/p')
if [ -z "$have" ]; then
	have=$("$GO" version 2>/dev/null | sed -n 's/.* go\([0-9][0-9.]*\).*/\1/p')
fi
older() { # is $1 older than $2 (dotted versions)?
	[ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -t. -k1,1n -k2,2n -k3,3n | head -n1)" = "$1" ]
}
if [ -z "$have" ] || older "$have" "$need"; then
	printf 'goldsync needs Go %s (go.mod); %s is Go %s.\n%s\n' "$need" "$GO" "${have:-of unknown version}" "$how" >&2
	exit 1
fi
