package netboot

import (
	"fmt"
	"strings"
)

// Validate checks the options of RenderDhcpd: a next server that is a
// host name or IPv4 address, and boot file names dhcpd.conf can hold
// without quoting trouble.
func (o DhcpdOptions) Validate() error {
	if o.NextServer != "" {
		if err := CheckServer(o.NextServer); err != nil {
			return fmt.Errorf("next server: %w", err)
		}
	}
	for _, f := range []struct{ what, val string }{{"BIOS filename", o.BIOSFilename}, {"EFI filename", o.EFIFilename}} {
		if strings.ContainsAny(f.val, "\n\"\\;") {
			return fmt.Errorf("%s %q: quotes, backslashes, ';' and newlines are not allowed", f.what, f.val)
		}
	}
	return nil
}

// CheckClients checks a blank-separated list of export client
// specifications (ExportsOptions.Clients, SnapshotClients): none may hold
// a character that would end or extend the exports line or ganesha block
// it goes into.
func CheckClients(clients string) error {
	for _, c := range strings.Fields(clients) {
		if strings.ContainsAny(c, "()#\"\\,;{}=") {
			return fmt.Errorf("client %q: a client may not hold ( ) # \" \\ , ; { } =", c)
		}
	}
	return nil
}
