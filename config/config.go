package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/remote"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// DefaultPath is the config file read when none is named.
const DefaultPath = "/etc/goldsync/goldsync.toml"

// Defaults filled in by Load.
const (
	DefaultTFTPBoot = "/tftpboot"
	DefaultNodes    = "/etc/goldsync/nodes"
)

// DefaultExcludes are excluded from an image whose source is a whole root
// unless it sets default_excludes = false (and from any image with
// default_excludes = true): exclude.RootDefaults, see there why.
var DefaultExcludes = exclude.RootDefaults

// MaxStreams is the most parallel transfer streams a pull may open.
const MaxStreams = 64

// Limits on values.
const (
	maxFanout = 1024
	maxName   = 64
	maxFile   = 1 << 20 // a config file larger than this is refused
)

// Config is a loaded, checked cluster config with every default filled
// in.
type Config struct {
	// Path is the file the config was read from.
	Path string
	// Cluster holds the cluster-wide settings.
	Cluster Cluster
	// Images are the images to pull, in file order.
	Images []Image
	// Netboot holds the kernel arguments shared by every OS.
	Netboot Netboot
	// Export holds the settings of the rsync export (goldsync serve).
	Export Export
	// OS are the bootable operating systems, in file order: the [[os]]
	// entries, then those defined by an image's os key.
	OS []OS
}

// Cluster is the [cluster] table.
type Cluster struct {
	// Name names the cluster in messages; empty when not set.
	Name string
	// TFTPBoot is the TFTP root; default DefaultTFTPBoot.
	TFTPBoot string
	// Nodes is the nodes file ("IP hostname [MAC]" a line); default
	// DefaultNodes.
	Nodes string
	// NFSServer is the host name or IPv4 address clients mount images
	// from; the default of every OS's NFSServer. Required when an OS is
	// defined and does not set its own.
	NFSServer string
	// SnapshotDir is the default of every OS's SnapshotDir; empty means
	// each OS uses LOCATION/snapshot, where RHEL's disklessrc looks.
	SnapshotDir string
}

// Export is the [export] table: the policy of the read-only rsync export
// (goldsync serve); the serve command's flags override it.
type Export struct {
	// Allow lists the client networks served (allow = ["10.1.0.0/16",
	// "192.168.7.12"]); nil when not set, meaning the export's default
	// (loopback and the private ranges, see export.DefaultAllow).
	Allow []netip.Prefix
	// ServeRootOnly serves the contents of root-only files (owner root,
	// not readable by others: /etc/shadow, ssh host keys), which are
	// withheld by default (serve_root_only = true, for a replica image
	// server that must be complete).
	ServeRootOnly bool
	// MaxConnections and MaxPerIP bound the connections at once, in all
	// and from one address; zero means the export's defaults.
	MaxConnections int
	MaxPerIP       int
}

// Image is one [[image]] entry: a golden node's tree and the image
// directory it is pulled into.
type Image struct {
	// Name names the image on the command line; unique, letters, digits,
	// '.', '_' and '-'.
	Name string
	// Source is the golden tree: [user@]host:/path or a local directory.
	Source string
	// Root is the image directory, exported read-only to the clients.
	Root string
	// Excludes are the rsync-style patterns left out of the pull: the
	// file's own excludes, then DefaultExcludes when the source is a whole
	// root ("/", "host:/") and default_excludes is not false, or with any
	// source when default_excludes is true.
	Excludes []string
	// StateDir holds the manifest, lock, retention links and the status
	// of the last sync; default imaging.DefaultStateDir(Root).
	StateDir string
	// Retention is how long replaced files stay linked for NFS clients:
	// zero means the engine's default (24 h), negative means off
	// (retention = "off" or "0" in the file).
	Retention time.Duration
	// KeepGenerations is how many of the newest generations (restorable
	// states, one per successful sync) to keep; zero means 10, -1 records
	// none (keep_generations).
	KeepGenerations int
	// KeepGenerationsFor also keeps generations younger than this
	// (keep_generations_for).
	KeepGenerationsFor time.Duration
	// MaxDelete is imaging.Options.MaxDelete: 0 means half the image, -1
	// no limit. (max_delete = 0 in the file means no deletes, as rsync's
	// --max-delete=0: it sets NoDelete.)
	MaxDelete int
	// NoDelete keeps image entries the golden node no longer has.
	NoDelete bool
	// Rsh is the remote shell command; default "ssh".
	Rsh string
	// AgentPath is goldsync-agent's path on the golden node; empty means
	// find it, or upload it.
	AgentPath string
	// Streams is the number of parallel transfer connections; default 1.
	Streams int
	// Timeout fails a golden node that sends nothing for this long; zero
	// means the protocol's default.
	Timeout time.Duration
	// Replicas are the image's replica image servers ([[image.replica]]),
	// in file order: each gets every generation of the image, pushed by
	// the primary (this server) after its pull, and serves the nodes
	// assigned to it (see Replica.Nodes and cluster.AssignReplicas).
	Replicas []Replica
	// Fanout bounds the replicas each server (the primary, or a replica
	// feeding others: Replica.From) updates at once; zero means twice the
	// primary's cores.
	Fanout int
	// ReplicaSSHPersist keeps the primary's ssh connection to each replica
	// up across runs for this long after its last session (OpenSSH
	// ControlPersist), so the next sync's push skips the login; zero (the
	// default) ends it with the run (replica_ssh_persist). The master's
	// socket is in the image's state dir, and a run trusts it only while
	// the host keys ssh checked when it logged in are unchanged (see
	// cluster.Replicate).
	ReplicaSSHPersist time.Duration
	// Line is where the entry starts in the file.
	Line int
}

// Replica is one [[image.replica]] entry: another image server holding a
// copy of the image, fed by the primary, and serving its nodes' boot
// files, image and snapshots.
type Replica struct {
	// Name names the replica: unique within its image, letters, digits,
	// '.', '_' and '-'.
	Name string
	// SSH is where the primary reaches the replica: [user@]host, through
	// Rsh.
	SSH string
	// Rsh is the remote shell command; default the image's rsh.
	Rsh string
	// Path is the image directory on the replica; default the primary's
	// root.
	Path string
	// StateDir is the replica's state dir for the image; empty means the
	// receiver's default (beside Path, as for a pull).
	StateDir string
	// Address is what the replica's nodes use for next-server, NFS, TFTP
	// and HTTP; default the host part of SSH.
	Address string
	// SnapshotDir is the replica's snapshot dir for every OS of the image;
	// empty means the OS's own (the same path as on the primary).
	SnapshotDir string
	// TFTPBoot is the replica's TFTP root; empty means the cluster's.
	TFTPBoot string
	// Receiver is the goldsync binary on the replica; default "goldsync"
	// (found on the replica's $PATH).
	Receiver string
	// Nodes are shell patterns on host names (as OS.Nodes): the nodes this
	// replica serves. nil means the replica takes its share of the nodes
	// no replica lists, spread evenly (cluster.AssignReplicas).
	Nodes []string
	// From names the replica that feeds this one (tree fan-out): once
	// From holds the new generation, it pushes it here from its own copy
	// through this replica's Rsh, run on From. Empty means the primary
	// feeds it. Parents form a tree: no replica is its own ancestor.
	From string
	// Line is where the entry starts in the file.
	Line int
}

// OS is one bootable operating system: an [[os]] entry, or the os key of
// an [[image]]. Its nodes boot the kernel found in its image, mount the
// image read-only and their snapshot read-write.
type OS struct {
	// Name names the OS (pxeos -i): letters, digits, '.', '_' and '-'.
	Name string
	// Image is the name of the image it boots.
	Image string
	// Kernel is the kernel version to boot; empty means the newest in the
	// image's /boot, re-chosen at every sync.
	Kernel string
	// Nodes are shell patterns (path.Match) on the host names of the nodes
	// file. nil means every node no other OS lists; at most one OS may
	// leave it unset.
	Nodes []string
	// Location is the image's base directory (pxeos -L), NFSROOT on the
	// kernel command line; default the parent of the image's root.
	Location string
	// SnapshotDir holds the files lists and one read-write tree per node;
	// default Cluster.SnapshotDir, else Location/snapshot.
	SnapshotDir string
	// NFSServer is where clients mount from; default Cluster.NFSServer.
	NFSServer string
	// BootStyle is netboot.StyleNFSRoot or netboot.StyleDisklessrc
	// (boot_style); empty means detected from the image at every sync.
	BootStyle string
	// Initramfs is the generator of an nfsroot image,
	// netboot.InitramfsTools or netboot.Dracut; empty means detected.
	Initramfs string
	// NFSOptions are the NFS mount options of the read-only root
	// (nfs_options, nfsroot only); empty means the generator's default.
	NFSOptions string
	// Netboot are the kernel arguments: the [netboot] table with this
	// OS's own keys over it.
	Netboot Netboot
	// Line is where the OS is defined in the file.
	Line int
}

// Netboot are the per-node kernel arguments, pxeboot's options. The zero
// value writes none of them (the interface defaults to eth0).
type Netboot struct {
	// RamdiskSize is ramdisk_size= in KiB; 0 leaves it out.
	RamdiskSize int
	// Ethernet is the boot interface, ETHERNET=; empty means eth0.
	Ethernet string
	// NISDomain is NISDOMAIN=; empty leaves it out.
	NISDomain string
	// Append is extra kernel arguments, blank-separated.
	Append string
}

// Error is one problem of a config file, at a line when it is known.
type Error struct {
	File string
	Line int // 0 when not known
	Err  error
}

// Error formats the problem as "file:line: what is wrong".
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// The file's shape, as decoded. Pointers tell a key that is absent from
// one set to its zero value.
type rawFile struct {
	Cluster rawCluster `toml:"cluster"`
	Image   []rawImage `toml:"image"`
	Netboot rawNetboot `toml:"netboot"`
	OS      []rawOS    `toml:"os"`
	Export  rawExport  `toml:"export"`
}

type rawExport struct {
	Allow          []string `toml:"allow"`
	ServeRootOnly  bool     `toml:"serve_root_only"`
	MaxConnections int      `toml:"max_connections"`
	MaxPerIP       int      `toml:"max_per_ip"`
}

type rawCluster struct {
	Name        string `toml:"name"`
	SnapshotDir string `toml:"snapshot_dir"`
	TFTPBoot    string `toml:"tftpboot"`
	Nodes       string `toml:"nodes"`
	NFSServer   string `toml:"nfs_server"`
}

type rawImage struct {
	Name            string   `toml:"name"`
	Source          string   `toml:"source"`
	Root            string   `toml:"root"`
	Excludes        []string `toml:"excludes"`
	DefaultExcludes *bool    `toml:"default_excludes"`
	StateDir        string   `toml:"state_dir"`
	Retention       string   `toml:"retention"`
	KeepGens        int      `toml:"keep_generations"`
	KeepGensFor     string   `toml:"keep_generations_for"`
	MaxDelete       *int     `toml:"max_delete"`
	NoDelete        bool     `toml:"no_delete"`
	Rsh             string   `toml:"rsh"`
	AgentPath       string   `toml:"agent_path"`
	Streams         int      `toml:"streams"`
	Timeout         string   `toml:"timeout"`
	OS              string   `toml:"os"`
	Kernel          string   `toml:"kernel"`
	Fanout          int      `toml:"fanout"`
	SSHPersist      string   `toml:"replica_ssh_persist"`

	Replica []rawReplica `toml:"replica"`
}

type rawReplica struct {
	Name        string   `toml:"name"`
	SSH         string   `toml:"ssh"`
	Rsh         string   `toml:"rsh"`
	Path        string   `toml:"path"`
	StateDir    string   `toml:"state_dir"`
	Address     string   `toml:"address"`
	SnapshotDir string   `toml:"snapshot_dir"`
	TFTPBoot    string   `toml:"tftpboot"`
	Receiver    string   `toml:"receiver"`
	Nodes       []string `toml:"nodes"`
	From        string   `toml:"from"`
}

type rawNetboot struct {
	RamdiskSize *int    `toml:"ramdisk_size"`
	Ethernet    *string `toml:"ethernet"`
	NISDomain   *string `toml:"nis_domain"`
	Append      *string `toml:"append"`
}

type rawOS struct {
	Name        string   `toml:"name"`
	Image       string   `toml:"image"`
	Kernel      string   `toml:"kernel"`
	Nodes       []string `toml:"nodes"`
	Location    string   `toml:"location"`
	SnapshotDir string   `toml:"snapshot_dir"`
	NFSServer   string   `toml:"nfs_server"`
	BootStyle   string   `toml:"boot_style"`
	Initramfs   string   `toml:"initramfs"`
	NFSOptions  string   `toml:"nfs_options"`
	rawNetboot
}

// ErrNoFile is wrapped by Load's error when the config file does not
// exist: only then do commands hint at the flags that replace it.
var ErrNoFile = errors.New("no config file")

// Load reads and checks the config file at path (DefaultPath when empty).
// Every problem is reported, each as an *Error, joined; no Config is
// returned when there is any. A missing file is an error wrapping
// ErrNoFile. A file that others may write is refused: goldsync runs the
// commands it names (rsh) as root.
func Load(path string) (*Config, error) {
	if path == "" {
		path = DefaultPath
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %s: write one (see goldsync.toml(5), and goldsync.toml.example from make install) or name it with --config", ErrNoFile, path)
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: path, Err: errors.New("not a regular file")}
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return nil, &Error{File: path, Err: fmt.Errorf("writable by everyone (mode %04o): goldsync runs the commands it names; chmod o-w it", fi.Mode().Perm())}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	if len(data) > maxFile {
		return nil, &Error{File: path, Err: fmt.Errorf("larger than %d bytes", maxFile)}
	}
	return Parse(path, data)
}

// Parse checks a config's content; name is used in messages and as
// Config.Path. It is Load without the file.
func Parse(name string, data []byte) (*Config, error) {
	var raw rawFile
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, decodeError(name, err)
	}
	v := &checker{file: name, pos: indexPositions(data)}
	c := v.build(&raw)
	if err := errors.Join(v.errs...); err != nil {
		return nil, err
	}
	c.Path = name
	return c, nil
}

// decodeError turns go-toml's errors into *Error values at their lines.
func decodeError(name string, err error) error {
	var sme *toml.StrictMissingError
	if errors.As(err, &sme) {
		var errs []error
		for i := range sme.Errors {
			de := &sme.Errors[i]
			line, _ := de.Position()
			errs = append(errs, &Error{File: name, Line: line, Err: unknownKey(de.Key())})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			msg = strings.Join(k, ".") + ": " + typeMessage(msg)
		}
		return &Error{File: name, Line: line, Err: errors.New(msg)}
	}
	return &Error{File: name, Err: err}
}

// typeMessage rewrites go-toml's messages about Go types in the file's
// terms.
func typeMessage(msg string) string {
	if _, rest, ok := strings.Cut(msg, "cannot decode TOML "); ok {
		if from, into, ok := strings.Cut(rest, " into "); ok {
			want := "another type"
			switch {
			case strings.HasSuffix(into, "of type int") || strings.HasSuffix(into, "of type *int"):
				want = "an integer"
			case strings.HasSuffix(into, "of type string") || strings.HasSuffix(into, "of type *string"):
				want = "a string"
			case strings.HasSuffix(into, "of type bool") || strings.HasSuffix(into, "of type *bool"):
				want = "true or false"
			case strings.HasSuffix(into, "of type []string"):
				want = "a list of strings"
			case strings.Contains(into, "[]config.raw"):
				want = "an array of tables"
			case strings.Contains(into, "config.raw"):
				want = "a table"
			}
			article := "a"
			if from != "" && strings.ContainsRune("aeiou", rune(from[0])) {
				article = "an"
			}
			return fmt.Sprintf("got %s %s, want %s", article, from, want)
		}
	}
	return msg
}

// keysOf lists the keys of each table of the file, for suggestions.
var keysOf = map[string][]string{
	"":        tomlKeys(reflect.TypeFor[rawFile]()),
	"cluster": tomlKeys(reflect.TypeFor[rawCluster]()),
	"image":   tomlKeys(reflect.TypeFor[rawImage]()),
	"netboot": tomlKeys(reflect.TypeFor[rawNetboot]()),
	"os":      tomlKeys(reflect.TypeFor[rawOS]()),
	"export":  tomlKeys(reflect.TypeFor[rawExport]()),
	// [[image.replica]]
	"image.replica": tomlKeys(reflect.TypeFor[rawReplica]()),
}

func tomlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if f.Anonymous {
			keys = append(keys, tomlKeys(f.Type)...)
			continue
		}
		keys = append(keys, f.Tag.Get("toml"))
	}
	return keys
}

func unknownKey(k toml.Key) error {
	full := strings.Join(k, ".")
	table := ""
	if len(k) > 1 {
		table = strings.Join(k[:len(k)-1], ".")
	}
	where := "at the top level"
	if table != "" {
		where = "in [" + table + "]"
		if table == "image" || table == "os" || table == "image.replica" {
			where = "in [[" + table + "]]"
		}
	}
	msg := fmt.Sprintf("unknown key %s %s", k[len(k)-1], where)
	if known, ok := keysOf[table]; ok {
		if s := closest(k[len(k)-1], known); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
	} else if len(k) > 2 {
		msg = fmt.Sprintf("unknown key %s", full)
	}
	return errors.New(msg)
}

// closest returns the known key nearest to k, if it is near enough to be a
// typo.
func closest(k string, known []string) string {
	best, bestD := "", 3
	for _, c := range known {
		if d := EditDistance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// EditDistance is the Levenshtein distance of a and b in bytes, capped at
// 64 for longer strings: how far a typed name is from a known one.
func EditDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// checker collects the problems of one file.
type checker struct {
	file string
	pos  *positions
	errs []error
}

// add records a problem with the key at path ("image[0].root").
func (v *checker) add(path string, format string, a ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.pos.line(path), Err: fmt.Errorf(format, a...)})
}

func (v *checker) build(raw *rawFile) *Config {
	c := &Config{}
	rc := raw.Cluster
	c.Cluster = Cluster{
		Name:        rc.Name,
		TFTPBoot:    orDefault(rc.TFTPBoot, DefaultTFTPBoot),
		Nodes:       orDefault(rc.Nodes, DefaultNodes),
		NFSServer:   rc.NFSServer,
		SnapshotDir: rc.SnapshotDir,
	}
	if strings.ContainsFunc(rc.Name, isControl) || len(rc.Name) > 200 {
		v.add("cluster.name", "cluster name: control characters or longer than 200 bytes")
	}
	v.absPath("cluster.tftpboot", "tftpboot", c.Cluster.TFTPBoot)
	v.absPath("cluster.nodes", "nodes file", c.Cluster.Nodes)
	if rc.SnapshotDir != "" {
		v.absPath("cluster.snapshot_dir", "snapshot_dir", rc.SnapshotDir)
	}

	c.Netboot = v.netboot("netboot", Netboot{}, raw.Netboot)
	c.Export = v.export(raw.Export)

	names := make(map[string]string) // image name -> where
	for i, ri := range raw.Image {
		at := fmt.Sprintf("image[%d]", i)
		img := v.image(at, ri)
		if img.Name != "" {
			if prev, ok := names[img.Name]; ok {
				v.add(at+".name", "image %s defined twice (first at %s)", img.Name, prev)
			} else {
				names[img.Name] = v.where(at + ".name")
			}
		}
		c.Images = append(c.Images, img)
	}
	v.imageOverlaps(c.Images)

	// Operating systems: [[os]] entries, then image shortcuts.
	osNames := make(map[string]string)
	addOS := func(at string, o OS) {
		if o.Name != "" {
			if prev, ok := osNames[o.Name]; ok {
				v.add(at, "OS %s defined twice (also at %s)", o.Name, prev)
				return
			}
			osNames[o.Name] = v.where(at)
		}
		c.OS = append(c.OS, o)
	}
	for i, ro := range raw.OS {
		at := fmt.Sprintf("os[%d]", i)
		if ro.Image == "" {
			v.add(at, "[[os]] %s: image not set (the name of the [[image]] it boots)", ro.Name)
		} else if _, ok := names[ro.Image]; !ok {
			v.add(at+".image", "[[os]] %s: no [[image]] named %q", ro.Name, ro.Image)
		}
		o := OS{Name: ro.Name, Image: ro.Image, Kernel: ro.Kernel, Nodes: ro.Nodes,
			Location: ro.Location, SnapshotDir: ro.SnapshotDir, NFSServer: ro.NFSServer,
			BootStyle: ro.BootStyle, Initramfs: ro.Initramfs, NFSOptions: ro.NFSOptions,
			Line: v.pos.line(at)}
		if ro.Name == "" {
			v.add(at, "[[os]]: name not set")
		}
		o.Netboot = v.netboot(at, c.Netboot, ro.rawNetboot)
		addOS(at, v.resolveOS(at, o, c))
	}
	for i, ri := range raw.Image {
		at := fmt.Sprintf("image[%d]", i)
		if ri.OS == "" {
			if ri.Kernel != "" {
				v.add(at+".kernel", "image %s: kernel set but no os: the kernel is chosen for an OS", ri.Name)
			}
			continue
		}
		o := OS{Name: ri.OS, Image: ri.Name, Kernel: ri.Kernel, Netboot: c.Netboot, Line: v.pos.line(at + ".os")}
		addOS(at+".os", v.resolveOS(at+".os", o, c))
	}
	var catchAll []string
	for _, o := range c.OS {
		if len(o.Nodes) == 0 && o.Name != "" {
			if len(catchAll) > 0 {
				v.errs = append(v.errs, &Error{File: v.file, Line: o.Line,
					Err: fmt.Errorf("OS %s: nodes not set, and OS %s already boots every node no other OS lists: list the nodes of one of them", o.Name, catchAll[0])})
			}
			catchAll = append(catchAll, o.Name)
		}
	}
	v.pathsOutsideImages(c)
	return c
}

func (v *checker) where(path string) string {
	if l := v.pos.line(path); l > 0 {
		return fmt.Sprintf("%s:%d", v.file, l)
	}
	return v.file
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// absPath checks a path on the image server: absolute, clean, not "/".
func (v *checker) absPath(at, what, p string) bool {
	switch {
	case p == "":
		v.add(at, "%s not set", what)
	case strings.ContainsFunc(p, isControl):
		v.add(at, "%s %q: control characters are not allowed", what, p)
	case !filepath.IsAbs(p):
		v.add(at, "%s %q is relative: write an absolute path", what, p)
	case filepath.Clean(p) != p:
		v.add(at, "%s %q is not clean: write %s", what, p, filepath.Clean(p))
	case p == "/":
		v.add(at, "%s cannot be /", what)
	default:
		return true
	}
	return false
}

// checkName checks an image name: it is typed on command lines and used in
// metrics labels.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if len(name) > maxName {
		return fmt.Errorf("longer than %d bytes", maxName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errors.New("only letters, digits, '.', '_' and '-' are allowed")
		}
	}
	if name[0] == '-' || name[0] == '.' {
		return errors.New("must not start with '-' or '.'")
	}
	return nil
}

func (v *checker) image(at string, ri rawImage) Image {
	img := Image{
		Name: ri.Name, Source: ri.Source, Root: ri.Root, StateDir: ri.StateDir,
		NoDelete: ri.NoDelete, Rsh: orDefault(ri.Rsh, "ssh"),
		AgentPath: ri.AgentPath, Streams: ri.Streams, Line: v.pos.line(at),
	}
	if err := checkName(ri.Name); err != nil {
		v.add(at+".name", "image name %q: %v", ri.Name, err)
	}
	if ri.Source == "" {
		v.add(at, "image %s: source not set (a golden node's [user@]host:/ or a local directory)", ri.Name)
	} else if sp, err := remote.ParseSpec(ri.Source); err != nil {
		v.add(at+".source", "image %s: source: %v", ri.Name, err)
	} else if sp.Host == "" {
		// A trailing slash means nothing, as on the command line: an
		// image is a whole tree.
		v.absPath(at+".source", "source", filepath.Clean(ri.Source))
	} else if !strings.HasPrefix(sp.Path, "/") {
		v.add(at+".source", "image %s: source %q: the path on %s must be absolute", ri.Name, ri.Source, sp.Host)
	}
	if v.absPath(at+".root", "root", ri.Root) {
		if img.StateDir == "" {
			img.StateDir = imaging.DefaultStateDir(ri.Root)
		}
	}
	if ri.StateDir != "" && v.absPath(at+".state_dir", "state_dir", ri.StateDir) && ri.Root != "" && within(ri.StateDir, ri.Root) {
		v.add(at+".state_dir", "image %s: state_dir %s is inside the image %s: put it outside the exported tree (the sync would delete it)", ri.Name, ri.StateDir, ri.Root)
	}
	img.Excludes = append([]string(nil), ri.Excludes...)
	// As on the command line, the defaults are for a whole root (a golden
	// node's "/"); default_excludes = true asks for them with any source.
	if ri.DefaultExcludes == nil && isRootSource(ri.Source) || ri.DefaultExcludes != nil && *ri.DefaultExcludes {
		img.Excludes = append(img.Excludes, DefaultExcludes...)
	}
	if _, err := exclude.New(img.Excludes); err != nil {
		v.add(at+".excludes", "image %s: excludes: %v", ri.Name, err)
	}
	switch r := ri.Retention; r {
	case "":
	case "off", "0":
		img.Retention = -1
	default:
		d, err := time.ParseDuration(r)
		switch {
		case err != nil:
			v.add(at+".retention", "image %s: retention %q: want a duration like \"24h\" or \"90m\", or \"off\"", ri.Name, r)
		case d < 0:
			v.add(at+".retention", "image %s: retention %q is negative: write \"off\" to turn retention off", ri.Name, r)
		case d == 0:
			img.Retention = -1
		default:
			img.Retention = d
		}
	}
	switch {
	case ri.KeepGens == 0:
		img.KeepGenerations = 10
	case ri.KeepGens < -1:
		v.add(at+".keep_generations", "image %s: keep_generations %d: want a count, or -1 to record no generations", ri.Name, ri.KeepGens)
	default:
		img.KeepGenerations = ri.KeepGens
	}
	if ri.KeepGensFor != "" {
		d, err := time.ParseDuration(ri.KeepGensFor)
		if err != nil || d < 0 {
			v.add(at+".keep_generations_for", "image %s: keep_generations_for %q: want a duration like \"336h\"", ri.Name, ri.KeepGensFor)
		}
		img.KeepGenerationsFor = d
	}
	switch {
	case ri.MaxDelete == nil:
		// The engine's default limit: half the image, at least 100.
	case *ri.MaxDelete < -1:
		v.add(at+".max_delete", "image %s: max_delete %d: want a positive count, 0 for no deletes (as rsync's --max-delete=0) or -1 for no limit; leave it out for the default (half the image)", ri.Name, *ri.MaxDelete)
	case *ri.MaxDelete == 0:
		// As on the command line and in rsync: delete nothing.
		img.NoDelete = true
	default:
		img.MaxDelete = *ri.MaxDelete
	}
	switch {
	case ri.Streams == 0:
		img.Streams = 1
	case ri.Streams < 0 || ri.Streams > MaxStreams:
		v.add(at+".streams", "image %s: streams %d: want 1 to %d", ri.Name, ri.Streams, MaxStreams)
	}
	if ri.Timeout != "" {
		d, err := time.ParseDuration(ri.Timeout)
		if err != nil || d < 0 {
			v.add(at+".timeout", "image %s: timeout %q: want a positive duration like \"60s\" or \"5m\"", ri.Name, ri.Timeout)
		}
		img.Timeout = d
	}
	if strings.TrimSpace(img.Rsh) == "" || strings.ContainsFunc(img.Rsh, isControl) {
		v.add(at+".rsh", "image %s: rsh %q: want a command such as \"ssh -p 2222\"", ri.Name, ri.Rsh)
	}
	if ri.AgentPath != "" && !path.IsAbs(ri.AgentPath) {
		v.add(at+".agent_path", "image %s: agent_path %q is relative: write its absolute path on the golden node", ri.Name, ri.AgentPath)
	}
	if ri.Fanout < 0 || ri.Fanout > maxFanout {
		v.add(at+".fanout", "image %s: fanout %d: want 1 to %d replicas at once, or leave it out (twice the cores)", ri.Name, ri.Fanout, maxFanout)
	}
	img.Fanout = ri.Fanout
	switch p := ri.SSHPersist; p {
	case "", "off", "0":
	default:
		d, err := time.ParseDuration(p)
		if err != nil || d < 0 {
			v.add(at+".replica_ssh_persist", "image %s: replica_ssh_persist %q: want a duration like \"10m\", or \"off\"", ri.Name, p)
		}
		img.ReplicaSSHPersist = d
	}
	v.replicas(at, &img, ri.Replica)
	if len(ri.Replica) > 0 && img.KeepGenerations < 0 {
		v.add(at+".keep_generations", "image %s: keep_generations = -1 records no generations, and replicas are fed by them: keep at least the newest (0 or more)", ri.Name)
	}
	return img
}

// replicas checks an image's [[image.replica]] entries and fills in their
// defaults.
func (v *checker) replicas(at string, img *Image, raw []rawReplica) {
	seen := map[string]string{}  // name -> where
	dests := map[string]string{} // ssh + path -> name
	for i, rr := range raw {
		rat := fmt.Sprintf("%s.replica[%d]", at, i)
		r := Replica{Name: rr.Name, SSH: rr.SSH, Rsh: orDefault(rr.Rsh, img.Rsh), Path: orDefault(rr.Path, img.Root),
			StateDir: rr.StateDir, Address: rr.Address, SnapshotDir: rr.SnapshotDir, TFTPBoot: rr.TFTPBoot,
			Receiver: orDefault(rr.Receiver, "goldsync"), Nodes: rr.Nodes, From: rr.From, Line: v.pos.line(rat)}
		who := "image " + img.Name + " replica " + rr.Name
		if err := checkName(rr.Name); err != nil {
			v.add(rat+".name", "image %s: replica name %q: %v", img.Name, rr.Name, err)
		} else if prev, ok := seen[rr.Name]; ok {
			v.add(rat+".name", "image %s: replica %s defined twice (first at %s)", img.Name, rr.Name, prev)
		} else {
			seen[rr.Name] = v.where(rat + ".name")
		}
		host, err := sshHost(rr.SSH)
		if err != nil {
			v.add(rat+".ssh", "%s: ssh %q: %v", who, rr.SSH, err)
		}
		if r.Address == "" {
			r.Address = host
		}
		if r.Address != "" || rr.Address != "" {
			if err := netboot.CheckServer(r.Address); err != nil {
				key := ".address"
				if rr.Address == "" {
					key = ".ssh"
				}
				v.add(rat+key, "%s: address (what its nodes boot and mount from) %v", who, err)
			}
		}
		if rr.Path != "" {
			v.absPath(rat+".path", "replica path", rr.Path)
		}
		if rr.StateDir != "" && v.absPath(rat+".state_dir", "replica state_dir", rr.StateDir) && within(rr.StateDir, r.Path) {
			v.add(rat+".state_dir", "%s: state_dir %s is inside its image %s: put it outside the exported tree", who, rr.StateDir, r.Path)
		}
		if rr.SnapshotDir != "" && v.absPath(rat+".snapshot_dir", "replica snapshot_dir", rr.SnapshotDir) && within(rr.SnapshotDir, r.Path) {
			v.add(rat+".snapshot_dir", "%s: snapshot_dir %s is inside its image %s: a push would delete it", who, rr.SnapshotDir, r.Path)
		}
		if rr.TFTPBoot != "" {
			v.absPath(rat+".tftpboot", "replica tftpboot", rr.TFTPBoot)
		}
		if strings.TrimSpace(r.Rsh) == "" || strings.ContainsFunc(r.Rsh, isControl) {
			v.add(rat+".rsh", "%s: rsh %q: want a command such as \"ssh -p 2222\"", who, rr.Rsh)
		}
		if strings.TrimSpace(r.Receiver) == "" || strings.ContainsFunc(r.Receiver, isControl) {
			v.add(rat+".receiver", "%s: receiver %q: want the goldsync binary on the replica", who, rr.Receiver)
		}
		for j, pat := range rr.Nodes {
			if _, err := path.Match(pat, ""); err != nil || pat == "" || strings.ContainsAny(pat, "/ \t") {
				v.add(fmt.Sprintf("%s.nodes[%d]", rat, j), "%s: bad node pattern %q: want a host name or a shell pattern like rack1-*", who, pat)
			}
		}
		if rr.Nodes != nil && len(rr.Nodes) == 0 {
			v.add(rat+".nodes", "%s: nodes = [] serves no node: list patterns, or leave nodes out to take a share of the unlisted nodes", who)
		}
		if host != "" {
			key := host + ":" + r.Path
			if prev, ok := dests[key]; ok {
				v.add(rat+".path", "%s: %s on %s is also replica %s's image", who, r.Path, host, prev)
			}
			dests[key] = rr.Name
		}
		img.Replicas = append(img.Replicas, r)
	}
	v.replicaTree(at, img, raw)
}

// replicaTree checks the replicas' from keys: each names another replica
// of the image, and following them never comes back (a tree, rooted at the
// primary).
func (v *checker) replicaTree(at string, img *Image, raw []rawReplica) {
	index := map[string]int{}
	for i, rr := range raw {
		if _, dup := index[rr.Name]; !dup {
			index[rr.Name] = i
		}
	}
	for i, rr := range raw {
		if rr.From == "" {
			continue
		}
		key := fmt.Sprintf("%s.replica[%d].from", at, i)
		who := "image " + img.Name + " replica " + rr.Name
		if rr.From == rr.Name {
			v.add(key, "%s: from %q: a replica cannot feed itself (leave from out: the primary feeds it)", who, rr.From)
			continue
		}
		if _, ok := index[rr.From]; !ok {
			var names []string
			for _, r := range raw {
				if !slices.Contains(names, r.Name) { // a name given twice is reported at its own line
					names = append(names, r.Name)
				}
			}
			v.add(key, "%s: from %q: no such replica of image %s (replicas: %s)", who, rr.From, img.Name, strings.Join(names, ", "))
			continue
		}
		// Follow the parents; coming back to i is a cycle, reported at
		// the replica of the cycle that comes first in the file.
		seen := map[int]bool{i: true}
		path := []string{rr.Name}
		for j := index[rr.From]; ; {
			path = append(path, raw[j].Name)
			if j == i {
				if lowest(seen) == i {
					v.add(key, "%s: from %q: the replicas feed each other in a cycle (%s): one of them must be fed by the primary", who, rr.From, strings.Join(path, " <- "))
				}
				break
			}
			if seen[j] || raw[j].From == "" {
				break
			}
			seen[j] = true
			next, ok := index[raw[j].From]
			if !ok || raw[j].From == raw[j].Name {
				break
			}
			j = next
		}
	}
}

// lowest is the smallest key of a set.
func lowest(set map[int]bool) int {
	m := -1
	for k := range set {
		if m < 0 || k < m {
			m = k
		}
	}
	return m
}

// sshHost checks a replica's ssh destination, [user@]host, and returns the
// host.
func sshHost(s string) (string, error) {
	if s == "" {
		return "", errors.New("not set: want [user@]host")
	}
	user, host, ok := strings.Cut(s, "@")
	if !ok {
		host, user = user, ""
	}
	switch {
	case ok && user == "":
		return "", errors.New("empty user before @")
	case strings.ContainsAny(user, "@:/ \t'\"\\$`;|&<>(){}") || strings.ContainsFunc(user, isControl):
		return "", fmt.Errorf("bad user %q", user)
	case strings.Count(strings.Trim(host, "[]"), ":") > 1:
		return "", fmt.Errorf("%s: an IPv6 address is not taken here: name the host (in /etc/hosts or an ssh_config Host entry)", host)
	case strings.Contains(host, ":"):
		return "", errors.New("want [user@]host without a path or port (set the port in rsh: \"ssh -p 2222\")")
	case host == "" || strings.HasPrefix(host, "-"):
		return "", errors.New("want [user@]host")
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host, nil
	}
	if err := snapshot.CheckHostname(host); err != nil {
		return "", err
	}
	return host, nil
}

// netboot applies a table's netboot keys over base and checks the result.
func (v *checker) netboot(at string, base Netboot, r rawNetboot) Netboot {
	n := base
	if r.RamdiskSize != nil {
		n.RamdiskSize = *r.RamdiskSize
	}
	if r.Ethernet != nil {
		n.Ethernet = *r.Ethernet
	}
	if r.NISDomain != nil {
		n.NISDomain = *r.NISDomain
	}
	if r.Append != nil {
		n.Append = *r.Append
	}
	if r.RamdiskSize != nil || r.Ethernet != nil || r.NISDomain != nil || r.Append != nil {
		if err := (netboot.NodeOptions{RamdiskSize: n.RamdiskSize, Ethernet: n.Ethernet, NISDomain: n.NISDomain, Append: n.Append}).Validate(); err != nil {
			for _, e := range unjoin(err) {
				v.add(at+"."+netbootKey(e), "%v", e)
			}
		}
	}
	return n
}

// netbootKey guesses which key a NodeOptions problem is about, for its
// line.
func netbootKey(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "ramdisk"):
		return "ramdisk_size"
	case strings.Contains(s, "interface"):
		return "ethernet"
	case strings.Contains(s, "NIS"):
		return "nis_domain"
	case strings.Contains(s, "kernel argument"):
		return "append"
	}
	return ""
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// resolveOS fills in an OS's defaults and checks it.
func (v *checker) resolveOS(at string, o OS, c *Config) OS {
	var img *Image
	for i := range c.Images {
		if c.Images[i].Name == o.Image {
			img = &c.Images[i]
		}
	}
	if o.Location == "" && img != nil && img.Root != "" {
		o.Location = filepath.Dir(img.Root)
	}
	if o.SnapshotDir == "" {
		o.SnapshotDir = c.Cluster.SnapshotDir
	}
	if o.SnapshotDir == "" && o.Location != "" {
		o.SnapshotDir = filepath.Join(o.Location, "snapshot")
	}
	if o.NFSServer == "" {
		o.NFSServer = c.Cluster.NFSServer
	}
	if o.Name == "" {
		return o
	}
	if err := netboot.CheckName(o.Name); err != nil {
		v.add(at, "%v", err)
		return o
	}
	if o.NFSServer == "" {
		v.add(at, "OS %s: no NFS server: set nfs_server in [cluster] or in the OS", o.Name)
	}
	for i, pat := range o.Nodes {
		if _, err := path.Match(pat, ""); err != nil || pat == "" || strings.ContainsAny(pat, "/ \t") {
			v.add(fmt.Sprintf("%s.nodes[%d]", at, i), "OS %s: bad node pattern %q: want a host name or a shell pattern like node0[0-4]?", o.Name, pat)
		}
	}
	// Let netboot check what it will write into boot configs.
	probe := netboot.OS{Name: o.Name, Location: o.Location, SnapshotDir: o.SnapshotDir, NFSServer: o.NFSServer,
		Kernel: orDefault(o.Kernel, "0"), KernelFile: o.Name + "/vmlinuz", InitrdFile: o.Name + "/initrd.img"}
	if img != nil {
		probe.ImageRoot = img.Root
	}
	// The boot style: what is set must agree; what is detected at sync
	// time (an empty style or generator) is checked by os add then.
	probe.Style, probe.Initramfs, probe.NFSOptions = o.BootStyle, o.Initramfs, o.NFSOptions
	if probe.Style == "" && (probe.Initramfs != "" || probe.NFSOptions != "") {
		probe.Style = netboot.StyleNFSRoot
	}
	if probe.Style == netboot.StyleNFSRoot && probe.Initramfs == "" {
		probe.Initramfs = netboot.Dracut // mount.nfs: the lenient check
	}
	if img != nil && img.Root != "" && o.NFSServer != "" {
		if err := probe.Validate(); err != nil {
			for _, e := range unjoin(err) {
				v.add(at, "%v", e)
			}
		}
	}
	return o
}

// within reports whether p is dir or lies beneath it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// imageOverlaps refuses images whose roots are the same or nested, or
// whose state dirs collide.
func (v *checker) imageOverlaps(imgs []Image) {
	for i, a := range imgs {
		for _, b := range imgs[:i] {
			if a.Root == "" || b.Root == "" {
				continue
			}
			at := fmt.Sprintf("image[%d].root", i)
			switch {
			case a.Root == b.Root:
				v.add(at, "image %s: root %s is also image %s's root", a.Name, a.Root, b.Name)
			case within(a.Root, b.Root) || within(b.Root, a.Root):
				v.add(at, "image %s: root %s and image %s's root %s are nested", a.Name, a.Root, b.Name, b.Root)
			case a.StateDir == b.StateDir:
				v.add(fmt.Sprintf("image[%d].state_dir", i), "image %s: state_dir %s is also image %s's", a.Name, a.StateDir, b.Name)
			}
		}
	}
}

// pathsOutsideImages refuses state dirs, snapshot dirs, the TFTP root and
// the nodes file inside any image: a sync mirrors an image exactly, so
// anything put inside it that the golden node lacks is deleted.
func (v *checker) pathsOutsideImages(c *Config) {
	type named struct{ at, what, p string }
	var list []named
	if c.Cluster.TFTPBoot != "" {
		list = append(list, named{"cluster.tftpboot", "tftpboot", c.Cluster.TFTPBoot})
	}
	if c.Cluster.SnapshotDir != "" {
		list = append(list, named{"cluster.snapshot_dir", "snapshot_dir", c.Cluster.SnapshotDir})
	}
	for i, img := range c.Images {
		if img.StateDir != "" {
			list = append(list, named{fmt.Sprintf("image[%d].state_dir", i), "image " + img.Name + "'s state_dir", img.StateDir})
		}
	}
	for _, o := range c.OS {
		if o.SnapshotDir != "" {
			list = append(list, named{"", "OS " + o.Name + "'s snapshot_dir", o.SnapshotDir})
		}
	}
	for _, n := range list {
		for _, img := range c.Images {
			if img.Root == "" || !filepath.IsAbs(n.p) || !within(n.p, img.Root) {
				continue
			}
			if strings.HasSuffix(n.what, "state_dir") && strings.HasPrefix(n.what, "image "+img.Name+"'") {
				continue // reported with the image
			}
			e := &Error{File: v.file, Line: v.pos.line(n.at), Err: fmt.Errorf("%s %s is inside image %s (%s): a sync would delete it; put it outside the image", n.what, n.p, img.Name, img.Root)}
			if n.at == "" {
				for _, o := range c.OS {
					if "OS "+o.Name+"'s snapshot_dir" == n.what {
						e.Line = o.Line
					}
				}
			}
			v.errs = append(v.errs, e)
		}
	}
}

// Image returns the image of that name.
func (c *Config) Image(name string) (*Image, bool) {
	for i := range c.Images {
		if c.Images[i].Name == name {
			return &c.Images[i], true
		}
	}
	return nil, false
}

// ImageNames lists the images' names in file order.
func (c *Config) ImageNames() []string {
	var names []string
	for _, img := range c.Images {
		names = append(names, img.Name)
	}
	return names
}

// OSOf returns the operating systems that boot the named image.
func (c *Config) OSOf(image string) []OS {
	var list []OS
	for _, o := range c.OS {
		if o.Image == image {
			list = append(list, o)
		}
	}
	return list
}

// Matches reports whether one of the OS's node patterns matches the host
// name. An OS without patterns matches nothing here: it gets the nodes no
// other OS lists (see AssignNodes).
func (o OS) Matches(host string) bool {
	for _, pat := range o.Nodes {
		if ok, _ := path.Match(pat, host); ok {
			return true
		}
	}
	return false
}

// export checks the [export] table.
func (v *checker) export(re rawExport) Export {
	e := Export{ServeRootOnly: re.ServeRootOnly, MaxConnections: re.MaxConnections, MaxPerIP: re.MaxPerIP}
	if re.Allow != nil {
		e.Allow = []netip.Prefix{}
	}
	for i, a := range re.Allow {
		at := fmt.Sprintf("export.allow[%d]", i)
		if p, err := netip.ParsePrefix(a); err == nil {
			if p != p.Masked() {
				v.add(at, "export allow %q: host bits set (did you mean %s?)", a, p.Masked())
				continue
			}
			e.Allow = append(e.Allow, p)
		} else if addr, err := netip.ParseAddr(a); err == nil {
			e.Allow = append(e.Allow, netip.PrefixFrom(addr, addr.BitLen()))
		} else {
			v.add(at, "export allow %q: want a CIDR prefix (10.1.0.0/16) or an address", a)
		}
	}
	if re.MaxConnections < 0 {
		v.add("export.max_connections", "export max_connections %d: want 0 (the default) or more", re.MaxConnections)
	}
	if re.MaxPerIP < 0 {
		v.add("export.max_per_ip", "export max_per_ip %d: want 0 (the default) or more", re.MaxPerIP)
	}
	return e
}

// isRootSource says whether an image's source is a whole root ("/",
// "host:/"), as pull decides for the command line.
func isRootSource(src string) bool {
	sp, err := remote.ParseSpec(src)
	return err == nil && exclude.IsRoot(sp.Path)
}

// Replica returns the image's replica of that name.
func (img *Image) Replica(name string) (*Replica, bool) {
	for i := range img.Replicas {
		if img.Replicas[i].Name == name {
			return &img.Replicas[i], true
		}
	}
	return nil, false
}

// Matches reports whether one of the replica's node patterns matches the
// host name. A replica without patterns matches nothing here: it takes a
// share of the nodes no replica lists (see cluster.AssignReplicas).
func (r Replica) Matches(host string) bool {
	for _, pat := range r.Nodes {
		if ok, _ := path.Match(pat, host); ok {
			return true
		}
	}
	return false
}
