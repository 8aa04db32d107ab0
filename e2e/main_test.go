package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/goldsync/goldsync/internal/testbin"
)

// binDir holds the goldsync and goldsync-agent binaries under test.
var binDir string

// skipReason says why the end-to-end tests cannot run here, or "".
func skipReason() string {
	if os.Getenv("GOLDSYNC_E2E") == "" {
		return "GOLDSYNC_E2E is not set: the diskless boot tests run with `make e2e`"
	}
	if os.Geteuid() != 0 {
		return "not root: the diskless boot tests need namespaces, chroot and debootstrap"
	}
	for _, c := range []string{"qemu-system-x86_64", "ganesha.nfsd", "rpcbind", "unshare", "nsenter", "debootstrap"} {
		if _, err := exec.LookPath(c); err != nil {
			return c + " not found: `make e2e` installs it (scripts/ci-deps.sh e2e)"
		}
	}
	return ""
}

func TestMain(m *testing.M) {
	if why := skipReason(); why != "" {
		fmt.Fprintln(os.Stderr, "e2e: SKIPPING the diskless boot tests:", why)
		os.Exit(m.Run())
	}
	testbin.Main(m, func(d string) { binDir = d }, testbin.Goldsync, testbin.Agent)
}

func requireE2E(t *testing.T) {
	t.Helper()
	if why := skipReason(); why != "" {
		t.Skip("SKIPPED: " + why)
	}
}
