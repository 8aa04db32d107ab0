// Package version names the goldsync release the binaries were built from.
// The image server and the agent compare it to decide whether the agent on
// a golden node must be replaced.
package version

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"runtime/debug"
	"sync"
)

// Version is the release; bump it with every change to the protocol or the
// agent's behaviour.
const Version = "0.1.0"

// The handshake names of the two programs start with these: the image
// server's is ServerPrefix plus Stamp() (only shown, never compared), the
// agent's AgentPrefix plus Build() (the image server compares it with the
// agent binary it holds).
const (
	ServerPrefix = "goldsync/"
	AgentPrefix  = "goldsync-agent/"
)

var (
	selfOnce sync.Once
	selfHash string
)

// Build returns Version plus a short hash of the running executable, so two
// development builds of the same release still tell each other apart.
func Build() string {
	selfOnce.Do(func() {
		selfHash = "unknown"
		p, err := os.Executable()
		if err != nil {
			return
		}
		if h, err := FileSHA256(p); err == nil {
			selfHash = h[:12]
		}
	})
	return Version + "+" + selfHash
}

// FileSHA256 returns the hex SHA-256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Stamp returns Version plus the commit the go command stamped into the
// binary ("+dev" without one), reading nothing: Build hashes the whole
// executable (15 MB, a tenth of a replica update's CPU in a receiver that
// starts for each one), which a name that is only shown does not need.
func Stamp() string {
	info, _ := debug.ReadBuildInfo()
	return stamp(info)
}

// vcs returns the commit the go command stamped into info
// (vcs.revision) and whether the tree had uncommitted changes
// (vcs.modified, "true"); both "" without a stamp.
func vcs(info *debug.BuildInfo) (rev, modified string) {
	if info != nil {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	return rev, modified
}

// stamp is Stamp over the given build info.
func stamp(info *debug.BuildInfo) string {
	rev, modified := vcs(info)
	switch {
	case rev == "":
		return Version + "+dev"
	case modified == "true":
		return Version + "+" + rev[:min(12, len(rev))] + "-modified"
	}
	return Version + "+" + rev[:min(12, len(rev))]
}

// Describe says which build this is, for --version: the release and the
// commit the go command stamped into the binary (vcs.revision, with
// "modified" when the tree had uncommitted changes, vcs.modified). A
// binary without a stamp (built with -buildvcs=false, outside a git
// checkout, or by go test) gets Build's executable hash instead.
func Describe() string {
	info, _ := debug.ReadBuildInfo()
	return describe(info, Build)
}

// describe is Describe over the given build info; build gives the
// fallback.
func describe(info *debug.BuildInfo, build func() string) string {
	rev, modified := vcs(info)
	if rev == "" {
		return build() + " (no commit stamp: executable hash)"
	}
	if modified == "true" {
		return Version + " (commit " + rev + ", modified)"
	}
	return Version + " (commit " + rev + ")"
}
