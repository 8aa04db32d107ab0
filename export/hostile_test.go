package export

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// secretMarker is in the file outside the image that hostile requests
// try to reach.
const secretMarker = "GOLDSYNC-OUTSIDE-SECRET-7f3a9c"

// hostileImage builds an image full of ways out, next to a secret
// directory, and returns the image root and the secret directory:
//
//	etc/motd, etc/hostname     the image's own files
//	rootonly                   mode 0600 (the child can read it; served
//	                           with Options.ServeRootOnly only)
//	evil -> /etc               absolute symlink to the host's /etc
//	chain -> chain2 -> /etc    a symlink chain
//	outdir -> SECRETDIR        absolute symlink to the secret directory
//	relout -> ../../..SECRETDIR relative symlink climbing out
//	up -> ..                   the image's parent
//	hard                       a hard link to a file created outside
//	                           (inside the image by definition: served)
func hostileImage(t *testing.T) (img, secretDir string) {
	t.Helper()
	img = mkImage(t, "img")
	secretDir = filepath.Join(filepath.Dir(img), "secret") // the image's sibling
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(secretDir, 0o700))
	must(os.WriteFile(filepath.Join(secretDir, "secret"), []byte(secretMarker+"\n"), 0o600))
	must(os.WriteFile(filepath.Join(secretDir, "linked"), []byte("hard-linked from outside\n"), 0o644))
	must(os.Mkdir(filepath.Join(img, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(img, "etc", "motd"), []byte("image motd\n"), 0o644))
	must(os.WriteFile(filepath.Join(img, "etc", "hostname"), []byte("image-hostname\n"), 0o644))
	must(os.WriteFile(filepath.Join(img, "rootonly"), []byte("image root-only file\n"), 0o600))
	must(os.Symlink("/etc", filepath.Join(img, "evil")))
	must(os.Symlink("chain2", filepath.Join(img, "chain")))
	must(os.Symlink("/etc", filepath.Join(img, "chain2")))
	must(os.Symlink(secretDir, filepath.Join(img, "outdir")))
	rel, err := filepath.Rel(img, secretDir)
	must(err)
	must(os.Symlink(rel, filepath.Join(img, "relout")))
	must(os.Symlink("..", filepath.Join(img, "up")))
	must(os.Link(filepath.Join(secretDir, "linked"), filepath.Join(img, "hard")))
	return img, secretDir
}

// contents returns the contents of every regular file beneath dir,
// following no symlink.
func contents(t *testing.T, dir string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		set[string(b)] = true
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// leaks returns what beneath got is not a file of the image: every
// regular file must have the content of one of the image's files, and
// none may hold the host's /etc/hostname, /etc/shadow, /etc/passwd or the
// secret.
func leaks(t *testing.T, got string, image map[string]bool) []string {
	t.Helper()
	var forbidden [][]byte
	for _, p := range []string{"/etc/hostname", "/etc/shadow", "/etc/passwd"} {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
			forbidden = append(forbidden, b)
		}
	}
	var out []string
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read %s: %v", p, err)
			return nil
		}
		rel, _ := filepath.Rel(got, p)
		if bytes.Contains(b, []byte(secretMarker)) {
			out = append(out, rel+": holds the secret from outside the image")
		}
		for _, f := range forbidden {
			if bytes.Equal(b, f) {
				out = append(out, rel+": has the content of a host file")
			}
		}
		if !image[string(b)] {
			out = append(out, fmt.Sprintf("%s: content in no file of the image: %q", rel, truncate(string(b))))
		}
		return nil
	})
	return out
}

// TestHostileRequests asks for ways out of the image, with every layer of
// defence and then with the outer layers switched off, and checks that
// nothing from outside the image ever arrives.
func TestHostileRequests(t *testing.T) {
	img, _ := hostileImage(t)
	image := contents(t, img)
	layers := []struct {
		name string
		hook func(*Server)
		root bool // the layer left needs root (chroot)
	}{
		{name: "all layers", hook: nil},
		{name: "no path checks", hook: func(s *Server) { s.noPathCheck = true }},
		{name: "landlock and mount only", hook: func(s *Server) { s.noPathCheck, s.noChroot = true, true }},
		// --unconfined on a kernel without Landlock, as root.
		{name: "no landlock", hook: func(s *Server) { s.landlock = false }, root: true},
		{name: "no landlock no path checks", hook: func(s *Server) { s.landlock, s.noPathCheck = false, true }, root: true},
	}
	requests := []struct {
		name string
		path string // after rsync://HOST:PORT/
	}{
		{name: "dotdot to etc", path: "img/../../etc/"},
		{name: "dotdot to a file", path: "img/../../etc/hostname"},
		{name: "dotdot deep", path: "img/../../../../../../../../etc/shadow"},
		{name: "dotdot to the secret", path: "img/../secret/"},
		{name: "percent-encoded dotdot", path: "img/%2e%2e/%2e%2e/etc/"},
		{name: "absolute inside module", path: "img//etc/hostname"},
		{name: "absolute without module", path: "/etc/hostname"},
		{name: "symlink to etc, a file", path: "img/evil/hostname"},
		{name: "symlink to etc, shadow", path: "img/evil/shadow"},
		{name: "symlink to etc, contents", path: "img/evil/"},
		{name: "symlink to etc, dotdot after", path: "img/evil/../etc/hostname"},
		{name: "symlink chain", path: "img/chain/hostname"},
		{name: "absolute symlink to secret dir", path: "img/outdir/secret"},
		{name: "absolute symlink to secret dir contents", path: "img/outdir/"},
		{name: "relative symlink climbing out", path: "img/relout/secret"},
		{name: "symlink to parent", path: "img/up/"},
		{name: "symlink to parent, secret", path: "img/up/../secret/secret"},
		{name: "whole image", path: "img/"},
	}
	for _, layer := range layers {
		t.Run(layer.name, func(t *testing.T) {
			if layer.root && os.Geteuid() != 0 {
				t.Skip("SKIPPED: needs root: without Landlock only the chroot of a root server confines the child")
			}
			hook := layer.hook
			if hook != nil {
				// A layer alone: root-only files are served, so that
				// withholding them cannot hide a leak of the (root-only)
				// secret.
				hook = func(s *Server) { layer.hook(s); s.opts.ServeRootOnly = true }
			}
			_, addr := serve(t, []Image{{Name: "img", Root: img}}, hook)
			for _, rq := range requests {
				t.Run(rq.name, func(t *testing.T) {
					dst := filepath.Join(t.TempDir(), "dst")
					out, code := rsyncRun(t, "-a", "rsync://"+addr+"/"+rq.path, dst+"/")
					t.Logf("rsync exit %d: %s", code, strings.TrimSpace(out))
					for _, l := range leaks(t, dst, image) {
						t.Errorf("leak: %s", l)
					}
				})
			}
		})
	}
}

// TestHostileRequestsControl shows the hostile requests and the leak
// check have teeth: with every layer off (the library alone, as root)
// they do get the host's files.
func TestHostileRequestsControl(t *testing.T) {
	img, _ := hostileImage(t)
	image := contents(t, img)
	_, addr := serve(t, []Image{{Name: "img", Root: img}}, func(s *Server) {
		s.noPathCheck, s.noChroot, s.landlock, s.root = true, true, false, false
		s.opts.ServeRootOnly = true // the secret is root-only
	})
	for _, path := range []string{"img/../../../../../../../../etc/hostname", "img/evil/hostname", "img/outdir/secret"} {
		dst := filepath.Join(t.TempDir(), "dst")
		out, code := rsyncRun(t, "-a", "rsync://"+addr+"/"+path, dst+"/")
		if l := leaks(t, dst, image); len(l) == 0 {
			t.Errorf("%s: nothing leaked without confinement (rsync exit %d: %s); the hostile test proves nothing", path, code, out)
		}
	}
}

// TestHardLinkFromOutsideIsServed documents the one way "outside" content
// gets out, by design: a hard link is the same file as its other name, so
// a name inside the image makes the file part of the image.
func TestHardLinkFromOutsideIsServed(t *testing.T) {
	img, _ := hostileImage(t)
	_, addr := serve(t, []Image{{Name: "img", Root: img}}, nil)
	dst := filepath.Join(t.TempDir(), "dst")
	out, code := rsyncRun(t, "-a", "rsync://"+addr+"/img/hard", dst+"/")
	if code != 0 {
		t.Fatalf("rsync exit %d:\n%s", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "hard")); err != nil || string(b) != "hard-linked from outside\n" {
		t.Errorf("hard = %q, %v", b, err)
	}
}

// TestConfinedChild asks a child, confined exactly as a serving child is,
// to open things directly, without the library in between: the image is
// readable (root-only files too), nothing outside it is, and nothing at
// all is writable.
func TestConfinedChild(t *testing.T) {
	img, secretDir := hostileImage(t)
	root := os.Geteuid() == 0
	if root {
		if err := unix.Mknod(filepath.Join(img, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(img, "zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
			t.Fatal(err)
		}
	}
	s, addr := serve(t, []Image{{Name: "img", Root: img}}, nil)
	img = s.Images()[0].Root // resolved
	type check struct {
		op      probeOp
		allowed bool
		onlyAs  string // "root": the check needs root (device nodes, nobody)
	}
	ops := []check{
		{op: probeOp{Op: "read", Path: img}, allowed: true},
		{op: probeOp{Op: "read", Path: img + "/etc/motd"}, allowed: true},
		{op: probeOp{Op: "read", Path: img + "/rootonly"}, allowed: true},
		{op: probeOp{Op: "read", Path: img + "/hard"}, allowed: true},
		{op: probeOp{Op: "read", Path: "/etc/hostname"}},
		{op: probeOp{Op: "read", Path: "/etc/shadow"}},
		{op: probeOp{Op: "read", Path: "/etc/passwd"}},
		{op: probeOp{Op: "read", Path: "/"}},
		{op: probeOp{Op: "read", Path: "/proc/self/status"}},
		{op: probeOp{Op: "read", Path: "/proc/1/environ"}},
		{op: probeOp{Op: "read", Path: img + "/.."}},
		{op: probeOp{Op: "read", Path: img + strings.Repeat("/..", strings.Count(img, "/")) + "/etc/hostname"}},
		{op: probeOp{Op: "read", Path: img + "/../secret/secret"}},
		{op: probeOp{Op: "read", Path: secretDir + "/secret"}},
		{op: probeOp{Op: "read", Path: img + "/evil/hostname"}},
		{op: probeOp{Op: "read", Path: img + "/chain/shadow"}},
		{op: probeOp{Op: "read", Path: img + "/outdir/secret"}},
		{op: probeOp{Op: "read", Path: img + "/relout/secret"}},
		{op: probeOp{Op: "read", Path: img + "/up/secret/secret"}},
		{op: probeOp{Op: "write", Path: img + "/new"}},
		{op: probeOp{Op: "write", Path: img + "/etc/new"}},
		{op: probeOp{Op: "write", Path: "/tmp/goldsync-export-probe"}},
		{op: probeOp{Op: "connect", Path: addr}},
		// A device node in the image would be a window on the host (a
		// block device there is the host's disk): the image is mounted
		// nodev in the child's namespace.
		{op: probeOp{Op: "read", Path: img + "/null"}, onlyAs: "root"},
		{op: probeOp{Op: "read", Path: img + "/zero"}, onlyAs: "root"},
	}
	var probes []probeOp
	var checks []check
	for _, c := range ops {
		if c.onlyAs == "root" && !root {
			continue
		}
		probes = append(probes, c.op)
		checks = append(checks, c)
	}
	res, err := s.probe(t.Context(), s.Images()[0], probes, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		c := checks[i]
		if allowed := r.Err == ""; allowed != c.allowed {
			t.Errorf("%s %s: allowed %v, want %v (%s)", r.Op, r.Path, allowed, c.allowed, r.Err)
		} else {
			t.Logf("%s %s: allowed %v (%s)", r.Op, r.Path, allowed, r.Err)
		}
	}
	if !root {
		t.Log("not root: device nodes, the mount namespace and the chroot were not checked")
	}
}

// TestChrootedChild checks the chroot layer a root server adds: in the
// serving child, "/", ".." and absolute symlinks all resolve inside the
// image.
func TestChrootedChild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root: the child chroots into the image only when the server runs as root")
	}
	img, secretDir := hostileImage(t)
	s, _ := serve(t, []Image{{Name: "img", Root: img}}, nil)
	for _, tc := range []struct {
		op      probeOp
		allowed bool
	}{
		{op: probeOp{Op: "read", Path: "/etc/motd"}, allowed: true},
		{op: probeOp{Op: "read", Path: "/../../etc/motd"}, allowed: true},
		{op: probeOp{Op: "read", Path: "/evil/motd"}, allowed: true}, // evil -> /etc: the image's
		{op: probeOp{Op: "read", Path: "/chain/hostname"}, allowed: true},
		{op: probeOp{Op: "stat", Path: "/etc/shadow"}},    // the host's is not there
		{op: probeOp{Op: "stat", Path: "/evil/shadow"}},   // nor through the symlink
		{op: probeOp{Op: "stat", Path: secretDir}},        // nor the secret dir
		{op: probeOp{Op: "stat", Path: "/outdir/secret"}}, // nor through a symlink
		{op: probeOp{Op: "stat", Path: "/up/secret"}},
	} {
		res, err := s.probe(t.Context(), s.Images()[0], []probeOp{tc.op}, false)
		if err != nil {
			t.Fatal(err)
		}
		if allowed := res[0].Err == ""; allowed != tc.allowed {
			t.Errorf("chrooted %s %s: allowed %v, want %v (%s)", tc.op.Op, tc.op.Path, allowed, tc.allowed, res[0].Err)
		}
	}
}

// TestSelfTest runs the check Serve runs first.
func TestSelfTest(t *testing.T) {
	img := mkImage(t, "img")
	s, _ := serve(t, []Image{{Name: "img", Root: img}}, nil)
	if err := s.SelfTest(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("confinement: %s", s.Confinement())
}

// TestUploadRefused tries to write into the image, first through the
// parent's checks, then with them off so that the library itself must
// refuse (its module is not writable).
func TestUploadRefused(t *testing.T) {
	src := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(src, []byte("uploaded\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		hook func(*Server)
		say  string // in rsync's output
	}{
		{name: "parent refuses", say: "read-only"},
		{name: "library refuses", hook: func(s *Server) { s.noArgCheck = true }, say: "read only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := mkImage(t, "img")
			_, addr := serve(t, []Image{{Name: "img", Root: img}}, tc.hook)
			for _, dest := range []string{"img/", "img/payload", "img/sub/"} {
				out, code := rsyncRun(t, "-a", src, "rsync://"+addr+"/"+dest)
				if code == 0 {
					t.Errorf("upload to %s: rsync succeeded:\n%s", dest, out)
				}
				if !strings.Contains(out, tc.say) {
					t.Errorf("upload to %s: rsync said %q, want it to mention %q", dest, out, tc.say)
				}
			}
			entries, err := os.ReadDir(img)
			if err != nil || len(entries) != 0 {
				t.Errorf("image after uploads: %v, %v; want it empty", entries, err)
			}
		})
	}
}
