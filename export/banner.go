package export

import (
	"fmt"
	"net"
	"strings"
)

// Banner is what goldsync serve says when it starts listening on addr,
// a line each: the URL and the modules served, then the clients allowed
// and whether root-only files are withheld.
func (s *Server) Banner(addr net.Addr) []string {
	var list []string
	for _, img := range s.images {
		list = append(list, img.Name+"="+img.Root)
	}
	withheld := "withheld"
	if s.opts.ServeRootOnly {
		withheld = "SERVED"
	}
	return []string{
		fmt.Sprintf("rsync://%s/ read-only: %s", addr, strings.Join(list, " ")),
		fmt.Sprintf("clients from %v; root-only files %s", s.allow, withheld),
	}
}
