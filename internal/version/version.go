// Package version names the goldsync release the binaries were built from.
// The image server and the agent compare it to decide whether the agent on
// a golden node must be replaced.
package version

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sync"
)

// Version is the release; bump it with every change to the protocol or the
// agent's behaviour.
const Version = "0.1.0"

// The handshake names of the two programs start with these: the image
// server's is ServerPrefix plus Build(), the agent's AgentPrefix plus
// Build().
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
