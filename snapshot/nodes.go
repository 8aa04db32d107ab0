package snapshot

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
)

// Node is one diskless client of the inventory.
type Node struct {
	// IP is the node's IPv4 address; it names its pxelinux file (HexIP).
	IP netip.Addr
	// Host is the node's host name (RFC 1123), also its snapshot name.
	Host string
	// MAC is the boot interface's Ethernet address, nil when not known.
	MAC net.HardwareAddr
	// Source is where the node was read, as "file:line"; empty for nodes
	// built in code.
	Source string
}

// where names the node in error messages.
func (n Node) where(i int) string {
	if n.Source != "" {
		return n.Source
	}
	if n.Host != "" {
		return fmt.Sprintf("node %d (%s)", i+1, short(n.Host))
	}
	return fmt.Sprintf("node %d", i+1)
}

// Validate checks one node on its own: an IPv4 unicast address, an RFC 1123
// host name, and a unicast 6-byte MAC when one is set.
func (n Node) Validate() error {
	var errs []error
	if err := checkIP(n.IP); err != nil {
		errs = append(errs, err)
	}
	if err := CheckHostname(n.Host); err != nil {
		errs = append(errs, err)
	}
	if n.MAC != nil {
		if err := checkMAC(n.MAC); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CheckNodes validates nodes built in code, or read by ParseNodes and
// edited since: every node must be valid, and no two may share an IP
// address, a host name (compared without case) or a MAC. It reports every
// problem, joined, each prefixed with the node's Source when it has one.
func CheckNodes(nodes []Node) error {
	var errs []error
	d := newDupChecker()
	for i, n := range nodes {
		w := n.where(i)
		if err := n.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w, err))
			continue
		}
		for _, err := range d.check(n, w) {
			errs = append(errs, fmt.Errorf("%s: %w", w, err))
		}
	}
	return errors.Join(errs...)
}

// ParseNodes parses a nodes file: "IP hostname [MAC]" a line, "#" comments
// (at the start of a line or after a blank), blank lines allowed. IP must be
// IPv4 (pxelinux names config files by IPv4 address); the host name must be
// an RFC 1123 name; the MAC, when given, a unicast Ethernet address in any
// form net.ParseMAC accepts. No two nodes may share an IP address, a host
// name or a MAC.
//
// name is used in error messages only. All problems are reported, joined,
// each as a *LineError, and no nodes are returned when there is any: a
// caller writes nothing for a broken inventory.
func ParseNodes(name string, r io.Reader) ([]Node, error) {
	errs := errList{name: name}
	d := newDupChecker()
	var nodes []Node
	readErr := scanFields(r, &errs, func(line int, fields []string) {
		if len(fields) < 2 || len(fields) > 3 {
			errs.add(line, "%d fields, want IP HOSTNAME [MAC]", len(fields))
			return
		}
		n := Node{Source: fmt.Sprintf("%s:%d", name, line)}
		ok := true
		ip, err := parseIP(fields[0])
		if err != nil {
			errs.addErr(line, err)
			ok = false
		}
		n.IP = ip
		if err := CheckHostname(fields[1]); err != nil {
			errs.addErr(line, err)
			ok = false
		}
		n.Host = fields[1]
		if len(fields) == 3 {
			mac, err := parseMAC(fields[2])
			if err != nil {
				errs.addErr(line, err)
				ok = false
			}
			n.MAC = mac
		}
		if !ok {
			return
		}
		for _, err := range d.check(n, n.Source) {
			errs.addErr(line, err)
		}
		nodes = append(nodes, n)
	})
	if readErr != nil {
		return nil, readErr
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return nodes, nil
}

// dupChecker finds nodes sharing an IP address, a host name or a MAC.
type dupChecker struct {
	ips   map[netip.Addr]string
	hosts map[string]string
	macs  map[string]string
}

func newDupChecker() *dupChecker {
	return &dupChecker{
		ips:   make(map[netip.Addr]string),
		hosts: make(map[string]string),
		macs:  make(map[string]string),
	}
}

// check records a valid node found at where and returns one error for each
// thing it shares with a node recorded before.
func (d *dupChecker) check(n Node, where string) []error {
	var errs []error
	if prev, ok := d.ips[n.IP]; ok {
		errs = append(errs, fmt.Errorf("IP address %s already used at %s", n.IP, prev))
	} else {
		d.ips[n.IP] = fmt.Sprintf("%s (%s)", where, n.Host)
	}
	host := strings.ToLower(n.Host)
	if prev, ok := d.hosts[host]; ok {
		errs = append(errs, fmt.Errorf("host name %s already used at %s", n.Host, prev))
	} else {
		d.hosts[host] = fmt.Sprintf("%s (%s)", where, n.IP)
	}
	if n.MAC != nil {
		mac := n.MAC.String()
		if prev, ok := d.macs[mac]; ok {
			errs = append(errs, fmt.Errorf("MAC %s already used at %s", FormatMAC(n.MAC), prev))
		} else {
			d.macs[mac] = fmt.Sprintf("%s (%s)", where, n.Host)
		}
	}
	return errs
}

func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", short(s))
	}
	return ip, checkIP(ip)
}

func checkIP(ip netip.Addr) error {
	switch {
	case !ip.IsValid():
		return errors.New("missing IP address")
	case ip.Is4In6():
		return fmt.Errorf("IPv4-mapped IPv6 address %s: write it as %s", ip, ip.Unmap())
	case ip.Is6():
		return fmt.Errorf("IPv6 address %s: not supported, pxelinux names config files by IPv4 address", ip)
	case ip.IsUnspecified(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}), ip.IsMulticast(), ip.IsLoopback():
		return fmt.Errorf("IP address %s is not a host address", ip)
	}
	return nil
}

func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a MAC address (want like 00:21:5E:40:64:5C)", short(s))
	}
	return mac, checkMAC(mac)
}

func checkMAC(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return fmt.Errorf("MAC %s is %d bytes long, want a 6-byte Ethernet address", mac, len(mac))
	case mac[0]&1 != 0:
		return fmt.Errorf("MAC %s is a multicast or broadcast address", FormatMAC(mac))
	case string(mac) == "\x00\x00\x00\x00\x00\x00":
		return fmt.Errorf("MAC %s is all zeros", FormatMAC(mac))
	}
	return nil
}

// FormatMAC writes a MAC as ISC dhcpd and the seed procedure do:
// upper-case hex pairs separated by colons (00:21:5E:40:64:5C).
func FormatMAC(mac net.HardwareAddr) string { return strings.ToUpper(mac.String()) }

// CheckHostname checks that name is an RFC 1123 host name: dot-separated
// labels of 1 to 63 letters, digits and hyphens, not starting or ending with
// a hyphen, 253 bytes at most, and not an IP address.
func CheckHostname(name string) error {
	bad := func(why string) error { return fmt.Errorf("bad host name %q: %s", short(name), why) }
	if name == "" {
		return bad("empty")
	}
	if len(name) > 253 {
		return bad("longer than 253 bytes")
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return bad("an IP address, not a name")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return bad("empty label")
		}
		if len(label) > 63 {
			return bad("label longer than 63 bytes")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad("label starts or ends with a hyphen")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return bad(fmt.Sprintf("character %q not allowed (letters, digits, hyphens and dots only)", c))
			}
		}
	}
	return nil
}

// HexIP returns an IPv4 address as pxelinux names its config file: eight
// upper-case hex digits (10.8.136.1 -> 0A088801). It returns "" for an
// address that is not IPv4 (an IPv4-mapped IPv6 address is unmapped first).
func HexIP(ip netip.Addr) string {
	ip = ip.Unmap()
	if !ip.Is4() {
		return ""
	}
	b := ip.As4()
	return fmt.Sprintf("%02X%02X%02X%02X", b[0], b[1], b[2], b[3])
}
