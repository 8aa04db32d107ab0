package cluster

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goldsync/goldsync/config"
)

func TestKeepaliveFollowsConnectTimeout(t *testing.T) {
	for _, tc := range []struct {
		rsh  string
		want string
	}{
		{"ssh", "ServerAliveInterval=5"},
		{"ssh -o ConnectTimeout=9", "ServerAliveInterval=3"},
		{"ssh -oConnectTimeout=2", "ServerAliveInterval=1"},
		{"ssh -o 'ConnectTimeout 30'", "ServerAliveInterval=10"},
	} {
		words := shareable(tc.rsh)
		if words == nil {
			t.Fatalf("%q: not shareable", tc.rsh)
		}
		if got := keepaliveOpts(words); got[0] != tc.want || got[1] != "ServerAliveCountMax=3" {
			t.Errorf("%q: %v, want %s and a count of 3", tc.rsh, got, tc.want)
		}
	}
}

// TestMasterTie: a kept master is tied to the files ssh checks the host
// key against: "ssh -G"'s known_hosts files and the config files; a change
// to any of them (or a file appearing) changes the tie, and host key
// checking turned off refuses a tie.
func TestMasterTie(t *testing.T) {
	home, _ := os.UserHomeDir()
	g := "user root\nuserknownhostsfile ~/.ssh/known_hosts /k/two\nglobalknownhostsfile /etc/ssh/ssh_known_hosts\nstricthostkeychecking true\n"
	files, err := tieFiles(strings.NewReader(g), []string{"ssh"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(home, ".ssh/known_hosts"), "/k/two", "/etc/ssh/ssh_known_hosts", filepath.Join(home, ".ssh/config"), "/etc/ssh/ssh_config"}
	if !slices.Equal(files, want) {
		t.Errorf("files %q, want %q", files, want)
	}
	if files, _ := tieFiles(strings.NewReader(g), []string{"ssh", "-F", "none"}); len(files) != 3 {
		t.Errorf("-F none: files %q, want the known_hosts files only", files)
	}
	if files, _ := tieFiles(strings.NewReader(g), []string{"ssh", "-F/x/cfg"}); files[len(files)-1] != "/x/cfg" {
		t.Errorf("-F/x/cfg: files %q, want /x/cfg last", files)
	}
	for _, off := range []string{"stricthostkeychecking false\n", "stricthostkeychecking no\n"} {
		if _, err := tieFiles(strings.NewReader(g+off), []string{"ssh"}); !errors.Is(err, errNoTie) {
			t.Errorf("%q: %v, want errNoTie", off, err)
		}
	}
	if _, err := tieFiles(strings.NewReader(g+"knownhostscommand /bin/kh %H\n"), []string{"ssh"}); err == nil {
		t.Error("a KnownHostsCommand: tied, want refused")
	}

	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	tie := func() string {
		t.Helper()
		tt, err := tieOf("ssh", []string{"ssh"}, "r1", []string{kh})
		if err != nil {
			t.Fatal(err)
		}
		return tt.Hash
	}
	absent := tie()
	os.WriteFile(kh, nil, 0o600)
	empty := tie()
	os.WriteFile(kh, []byte("[10.77.0.11]:22 ssh-ed25519 AAAA1\n"), 0o600)
	one := tie()
	os.WriteFile(kh, []byte("[10.77.0.11]:22 ssh-ed25519 AAAA2\n"), 0o600)
	two := tie()
	if absent == empty || empty == one || one == two {
		t.Errorf("ties: absent %s, empty %s, key 1 %s, key 2 %s: want all different", absent, empty, one, two)
	}
	os.WriteFile(kh, []byte("[10.77.0.11]:22 ssh-ed25519 AAAA2\n"), 0o600)
	if tie() != two {
		t.Error("the same files tie differently")
	}
}

// TestNoKeptMasterWithoutHostKeyCheck: an rsh that turns host key
// checking off gets the run's own master, never a kept one.
func TestNoKeptMasterWithoutHostKeyCheck(t *testing.T) {
	state := t.TempDir()
	s := newShares(slog.New(slog.DiscardHandler), &config.Image{ReplicaSSHPersist: time.Minute, StateDir: state}, nil)
	defer s.close()
	rep := &config.Replica{Name: "r1", SSH: "root@192.0.2.1", Rsh: "ssh -F none -o StrictHostKeyChecking=no"}
	rsh, c := s.conn(context.Background(), rep)
	if c == nil || c.record != "" || !strings.Contains(rsh, "ControlPersist=60") || strings.Contains(rsh, state) {
		t.Errorf("rsh %q: want the run's own master", rsh)
	}
	rep.Rsh = "ssh -F none -o StrictHostKeyChecking=yes"
	rsh, c = s.conn(context.Background(), rep)
	if c == nil || c.record == "" || !strings.Contains(rsh, "ControlPersist=60 ") || !strings.Contains(rsh, filepath.Join(state, "ssh")) {
		t.Errorf("rsh %q: want a master kept in the state dir", rsh)
	}
}
