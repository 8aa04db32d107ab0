package netboot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path"
	"slices"
	"strings"
)

// NodeConfig is a node as its pxelinux config describes it: what
// ListNodeConfigs reads back from the files WriteNodeConfigs wrote.
type NodeConfig struct {
	// IP is the node's address, from the file's name.
	IP netip.Addr `json:"ip"`
	// Snapshot is the node's snapshot directory name, normally its host
	// name: the SNAPSHOT= argument, or the last element of
	// goldsync.snapshot=.
	Snapshot string `json:"snapshot"`
	// OS is the config's default label, the OS name.
	OS string `json:"os"`
	// File is the config's path relative to the TFTP root.
	File string `json:"file"`
	// MAC is the node's boot interface address, from the header of its
	// GRUB config (written when node add knew it); empty when not known.
	MAC string `json:"mac,omitempty"`
}

// ListNodeConfigs lists the nodes that have a pxelinux config under
// TFTPBOOT/linux-install/pxelinux.cfg: every file named by an IPv4 address
// in upper-case hex (the name WriteNodeConfigs gives), sorted by address.
// Other names (MAC-named files, "default") are not nodes of goldsync's and
// are left out. A config without a default label or SNAPSHOT= argument is
// listed with those fields empty. No configs yet is an empty list.
func ListNodeConfigs(tftpboot string) ([]NodeConfig, error) {
	root, err := openTFTP(tftpboot)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	d, err := root.Open(PXELinuxDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list node configs: %w", err)
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("list node configs: %w", err)
	}
	var out []NodeConfig
	for _, e := range ents {
		ip, ok := parseHexIP(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		name := PXELinuxDir + "/" + e.Name()
		data, err := root.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("list node configs: %w", err)
		}
		c := parsePXELinux(data)
		c.IP, c.File = ip, name
		if grub, err := root.ReadFile(GrubDir + "/grub.cfg-" + e.Name()); err == nil {
			c.MAC = headerMAC(grub)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b NodeConfig) int { return a.IP.Compare(b.IP) })
	return out, nil
}

// headerMAC reads the MAC from a config's header comment (see
// headerComment); "" when there is none.
func headerMAC(data []byte) string {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	_, rest, ok := bytes.Cut(line, []byte(", MAC "))
	if !ok {
		return ""
	}
	mac, _, ok := bytes.Cut(rest, []byte(")"))
	if !ok {
		return ""
	}
	if hw, err := net.ParseMAC(string(mac)); err == nil {
		return hw.String()
	}
	return ""
}

// parseHexIP reads a pxelinux config name: eight upper-case hex digits.
func parseHexIP(name string) (netip.Addr, bool) {
	if len(name) != 8 || strings.ToUpper(name) != name {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i := range b {
		var v byte
		for _, c := range []byte(name[2*i : 2*i+2]) {
			switch {
			case '0' <= c && c <= '9':
				v = v<<4 | (c - '0')
			case 'A' <= c && c <= 'F':
				v = v<<4 | (c - 'A' + 10)
			default:
				return netip.Addr{}, false
			}
		}
		b[i] = v
	}
	return netip.AddrFrom4(b), true
}

// parsePXELinux reads the default label and the SNAPSHOT= (disklessrc) or
// goldsync.snapshot= (nfsroot) argument of a pxelinux config.
func parsePXELinux(data []byte) NodeConfig {
	var c NodeConfig
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch strings.ToLower(f[0]) {
		case "default":
			c.OS = f[1]
		case "append":
			for _, a := range f[1:] {
				if v, ok := strings.CutPrefix(a, "SNAPSHOT="); ok {
					c.Snapshot = v
				}
				if v, ok := strings.CutPrefix(a, SnapshotArg+"="); ok {
					// SERVER:/snapshot/dir/NAME
					if _, dir, ok := strings.Cut(v, ":"); ok {
						c.Snapshot = path.Base(dir)
					}
				}
			}
		}
	}
	return c
}
