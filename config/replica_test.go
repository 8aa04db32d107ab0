package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const replicaBase = `[cluster]
nfs_server = "10.8.0.2"

[[image]]
name = "rhel"
source = "root@golden:/"
root = "/srv/images/rhel"
rsh = "ssh -o BatchMode=yes"
os = "rhelc"
`

func TestParseReplicas(t *testing.T) {
	doc := replicaBase + `fanout = 4
replica_ssh_persist = "10m"

[[image.replica]]
name = "r1"
ssh = "root@10.77.0.11"

[[image.replica]]
name = "r2"
ssh = "img2.example.org"
path = "/data/rhel"
state_dir = "/var/lib/goldsync/rhel"
address = "10.77.0.12"
snapshot_dir = "/data/snapshot"
tftpboot = "/srv/tftp"
receiver = "/usr/local/bin/goldsync"
rsh = "ssh -p 2222"
nodes = ["rack2-*"]

[[image.replica]]
name = "r3"
ssh = "10.77.0.13"
from = "r1"
`
	c, err := Parse("g.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	img := c.Images[0]
	want := []Replica{
		{Name: "r1", SSH: "root@10.77.0.11", Rsh: "ssh -o BatchMode=yes", Path: "/srv/images/rhel",
			Address: "10.77.0.11", Receiver: "goldsync", Line: 13},
		{Name: "r2", SSH: "img2.example.org", Rsh: "ssh -p 2222", Path: "/data/rhel", StateDir: "/var/lib/goldsync/rhel",
			Address: "10.77.0.12", SnapshotDir: "/data/snapshot", TFTPBoot: "/srv/tftp", Receiver: "/usr/local/bin/goldsync",
			Nodes: []string{"rack2-*"}, Line: 17},
		{Name: "r3", SSH: "10.77.0.13", Rsh: "ssh -o BatchMode=yes", Path: "/srv/images/rhel",
			Address: "10.77.0.13", Receiver: "goldsync", From: "r1", Line: 29},
	}
	if diff := cmp.Diff(want, img.Replicas); diff != "" {
		t.Errorf("replicas (-want +got):\n%s", diff)
	}
	if img.Fanout != 4 {
		t.Errorf("fanout %d, want 4", img.Fanout)
	}
	if img.ReplicaSSHPersist != 10*time.Minute {
		t.Errorf("replica_ssh_persist %v, want 10m", img.ReplicaSSHPersist)
	}
	for _, off := range []string{"", `replica_ssh_persist = "off"` + "\n", `replica_ssh_persist = "0"` + "\n"} {
		c, err := Parse("g.toml", []byte(replicaBase+off))
		if err != nil || c.Images[0].ReplicaSSHPersist != 0 {
			t.Errorf("%q: replica_ssh_persist %v, %v; want 0 (the run's own connection)", off, c.Images[0].ReplicaSSHPersist, err)
		}
	}
	if r, ok := img.Replica("r2"); !ok || r.Address != "10.77.0.12" {
		t.Errorf("Replica(r2) = %+v, %v", r, ok)
	}
	if !want[1].Matches("rack2-07") || want[1].Matches("rack1-07") || want[0].Matches("rack2-07") {
		t.Errorf("Matches: patterns not applied as shell patterns")
	}
}

func TestParseReplicaErrors(t *testing.T) {
	rep := func(lines ...string) string {
		return replicaBase + "\n[[image.replica]]\n" + strings.Join(lines, "\n") + "\n"
	}
	// The replica table starts at line 11.
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{name: "ssh not set", doc: rep(`name = "r1"`),
			want: []string{`g.toml:11: image rhel replica r1: ssh "": not set: want [user@]host`}},
		{name: "ssh with a path", doc: rep(`name = "r1"`, `ssh = "root@r1:/srv"`),
			want: []string{`g.toml:13: image rhel replica r1: ssh "root@r1:/srv": want [user@]host without a path or port`}},
		{name: "ssh to an IPv6 address", doc: rep(`name = "r1"`, `ssh = "root@[fd00::1]"`),
			want: []string{`g.toml:13: image rhel replica r1: ssh "root@[fd00::1]": [fd00::1]: an IPv6 address is not taken here: name the host`}},
		{name: "ssh with an empty user", doc: rep(`name = "r1"`, `ssh = "@r1"`),
			want: []string{`g.toml:13: image rhel replica r1: ssh "@r1": empty user before @`}},
		{name: "ssh bad host", doc: rep(`name = "r1"`, `ssh = "root@bad_host"`),
			want: []string{`g.toml:13: image rhel replica r1: ssh "root@bad_host": bad host name "bad_host"`}},
		{name: "bad name", doc: rep(`name = "r 1"`, `ssh = "r1"`),
			want: []string{`g.toml:12: image rhel: replica name "r 1": only letters`}},
		{name: "duplicate name", doc: rep(`name = "r1"`, `ssh = "a1"`) + "[[image.replica]]\nname = \"r1\"\nssh = \"a2\"\n",
			want: []string{"g.toml:15: image rhel: replica r1 defined twice (first at g.toml:12)"}},
		{name: "bad address", doc: rep(`name = "r1"`, `ssh = "r1"`, `address = "10.77.0.300"`),
			want: []string{"g.toml:14: image rhel replica r1: address (what its nodes boot and mount from) 10.77.0.300: not a valid IPv4 address"}},
		{name: "IPv6 address", doc: rep(`name = "r1"`, `ssh = "r1"`, `address = "fd00::1"`),
			want: []string{"g.toml:14: image rhel replica r1: address (what its nodes boot and mount from) fd00::1: want an IPv4 address"}},
		{name: "relative path", doc: rep(`name = "r1"`, `ssh = "r1"`, `path = "srv/rhel"`),
			want: []string{`g.toml:14: replica path "srv/rhel" is relative`}},
		{name: "state dir inside", doc: rep(`name = "r1"`, `ssh = "r1"`, `state_dir = "/srv/images/rhel/.st"`),
			want: []string{"g.toml:14: image rhel replica r1: state_dir /srv/images/rhel/.st is inside its image"}},
		{name: "snapshot dir inside", doc: rep(`name = "r1"`, `ssh = "r1"`, `snapshot_dir = "/srv/images/rhel/snap"`),
			want: []string{"g.toml:14: image rhel replica r1: snapshot_dir /srv/images/rhel/snap is inside its image"}},
		{name: "same destination twice", doc: rep(`name = "r1"`, `ssh = "root@h1"`) + "[[image.replica]]\nname = \"r2\"\nssh = \"h1\"\n",
			want: []string{"g.toml:14: image rhel replica r2: /srv/images/rhel on h1 is also replica r1's image"}},
		{name: "bad node pattern", doc: rep(`name = "r1"`, `ssh = "r1"`, `nodes = ["n["]`),
			want: []string{`g.toml:14: image rhel replica r1: bad node pattern "n["`}},
		{name: "empty nodes", doc: rep(`name = "r1"`, `ssh = "r1"`, `nodes = []`),
			want: []string{"g.toml:14: image rhel replica r1: nodes = [] serves no node"}},
		{name: "empty receiver", doc: rep(`name = "r1"`, `ssh = "r1"`, `receiver = " "`),
			want: []string{`g.toml:14: image rhel replica r1: receiver " "`}},
		{name: "bad fanout", doc: replicaBase + "fanout = -1\n",
			want: []string{"g.toml:10: image rhel: fanout -1"}},
		{name: "bad replica_ssh_persist", doc: replicaBase + "replica_ssh_persist = \"-1m\"\n",
			want: []string{`g.toml:10: image rhel: replica_ssh_persist "-1m": want a duration like "10m", or "off"`}},
		{name: "replica_ssh_persist not a duration", doc: replicaBase + "replica_ssh_persist = \"forever\"\n",
			want: []string{`g.toml:10: image rhel: replica_ssh_persist "forever"`}},
		{name: "replicas without generations", doc: strings.Replace(rep(`name = "r1"`, `ssh = "r1"`), "os = \"rhelc\"\n", "os = \"rhelc\"\nkeep_generations = -1\n", 1),
			want: []string{"g.toml:10: image rhel: keep_generations = -1 records no generations, and replicas are fed by them"}},
		{name: "from an unknown replica", doc: rep(`name = "r1"`, `ssh = "r1"`, `from = "r9"`),
			want: []string{`g.toml:14: image rhel replica r1: from "r9": no such replica of image rhel (replicas: r1)`}},
		{name: "from an unknown replica, a name twice", doc: rep(`name = "r1"`, `ssh = "h1"`, `from = "r9"`) + "[[image.replica]]\nname = \"r1\"\nssh = \"h2\"\n",
			want: []string{`g.toml:14: image rhel replica r1: from "r9": no such replica of image rhel (replicas: r1)`}},
		{name: "from itself", doc: rep(`name = "r1"`, `ssh = "r1"`, `from = "r1"`),
			want: []string{`g.toml:14: image rhel replica r1: from "r1": a replica cannot feed itself`}},
		{name: "a cycle", doc: rep(`name = "r1"`, `ssh = "h1"`, `from = "r3"`) +
			"[[image.replica]]\nname = \"r2\"\nssh = \"h2\"\nfrom = \"r1\"\n" +
			"[[image.replica]]\nname = \"r3\"\nssh = \"h3\"\nfrom = \"r2\"\n" +
			"[[image.replica]]\nname = \"r4\"\nssh = \"h4\"\nfrom = \"r3\"\n",
			want: []string{`g.toml:14: image rhel replica r1: from "r3": the replicas feed each other in a cycle (r1 <- r3 <- r2 <- r1)`}},
		{name: "unknown key", doc: rep(`name = "r1"`, `ssh = "r1"`, `adress = "10.0.0.1"`),
			want: []string{"g.toml:14: unknown key adress in [[image.replica]] (did you mean address?)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("g.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c.Images[0].Replicas)
			}
			if n := strings.Count(err.Error(), "cycle"); n > 1 {
				t.Errorf("the cycle is reported %d times, want once:\n%v", n, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
