package export

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestParseFlistOpts(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want flistOpts
	}{
		{name: "archive bundle", args: []string{"--server", "--sender", "-logDtpr", "."},
			want: flistOpts{uid: true, gid: true, devices: true, specials: true, links: true}},
		{name: "a", args: []string{"--server", "--sender", "-a", "--numeric-ids", "."},
			want: flistOpts{uid: true, gid: true, devices: true, specials: true, links: true, numericIDs: true}},
		{name: "hard links checksum", args: []string{"--server", "--sender", "-lHogDtprc", "."},
			want: flistOpts{uid: true, gid: true, devices: true, specials: true, links: true, hardLinks: true, checksum: true}},
		{name: "e takes the rest", args: []string{"--server", "--sender", "-rte.oHgc", "."}, want: flistOpts{}},
		{name: "negations", args: []string{"--server", "--sender", "-a", "--no-o", "--no-group", "--no-D", "--no-l", "."}},
		{name: "long forms", args: []string{"--server", "--sender", "--owner", "--group", "--devices", "--specials", "--links", "--checksum", "--hard-links", "--numeric-ids", "."},
			want: flistOpts{uid: true, gid: true, devices: true, specials: true, links: true, checksum: true, hardLinks: true, numericIDs: true}},
		{name: "after the dot is a path", args: []string{"--server", "--sender", ".", "-o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, parseFlistOpts(tc.args), cmp.AllowUnexported(flistOpts{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// entry is a file list entry as the library writes it.
type entry struct {
	flags  byte
	name   string
	size   int64
	mtime  int32
	mode   uint32
	uid    int32
	gid    int32
	rdev   int32
	target string
}

// flist encodes entries, an uid list and a gid list (id -> name) and
// ioErrors as the library does for options o (which always sends both id
// lists).
func flist(o flistOpts, entries []entry, uids, gids map[int32]string, idev map[string][2]int64) []byte {
	var b []byte
	i32 := func(v int32) { b = binary.LittleEndian.AppendUint32(b, uint32(v)) }
	for _, e := range entries {
		flags := e.flags | xmitLongName
		b = append(b, flags)
		i32(int32(len(e.name)))
		b = append(b, e.name...)
		b = appendLongint(b, e.size)
		i32(e.mtime)
		i32(int32(e.mode))
		if o.uid {
			i32(e.uid)
		}
		if o.gid {
			i32(e.gid)
		}
		typ := e.mode & sIFMT
		if (o.devices && (typ == sIFCHR || typ == sIFBLK)) || (o.specials && (typ == sIFIFO || typ == sIFSOCK)) {
			i32(e.rdev)
		}
		if o.links && typ == sIFLNK {
			i32(int32(len(e.target)))
			b = append(b, e.target...)
		}
		if d, ok := idev[e.name]; ok {
			b = appendLongint(b, d[0])
			b = appendLongint(b, d[1])
		}
		if o.checksum {
			b = append(b, bytes.Repeat([]byte{0xcc}, checksumLen)...)
		}
	}
	b = append(b, 0)
	for _, list := range []map[int32]string{uids, gids} {
		if list == nil {
			continue
		}
		for id, name := range list {
			i32(id)
			b = append(b, byte(len(name)))
			b = append(b, name...)
		}
		i32(0)
	}
	i32(0) // ioErrors
	return b
}

func TestRewriteFlist(t *testing.T) {
	entries := []entry{
		{flags: xmitTopDir, name: ".", mode: sIFDIR | 0o755, size: 4096},
		{name: "bin", mode: sIFDIR | 0o755, size: 4096},
		{name: "bin/su", mode: sIFREG | 0o755, size: 10, uid: 0},
		{name: "bin/su-hard", mode: sIFREG | 0o755, size: 10},
		{name: "big", mode: sIFREG | 0o644, size: 5 << 30, uid: 4242, gid: 4343},
		{name: "dev", mode: sIFCHR | 0o600, rdev: 0x103},
		{name: "fifo", mode: sIFIFO | 0o644},
		{name: "link", mode: sIFLNK | 0o777, target: "bin/su"},
		{name: "tmp", mode: sIFDIR | 0o777},
	}
	stats := map[string]unix.Stat_t{
		".":           {Mode: sIFDIR | 0o755, Dev: 1, Ino: 2},
		"bin":         {Mode: sIFDIR | 0o755, Dev: 1, Ino: 3},
		"bin/su":      {Mode: sIFREG | 0o4755, Dev: 1, Ino: 10},
		"bin/su-hard": {Mode: sIFREG | 0o4755, Dev: 1, Ino: 10},
		"big":         {Mode: sIFREG | 0o644, Dev: 0x1_0000_0001, Ino: 1 << 40},
		"dev":         {Mode: sIFCHR | 0o600},
		"fifo":        {Mode: sIFIFO | 0o644},
		"link":        {Mode: sIFLNK | 0o777},
		"tmp":         {Mode: sIFREG | 0o1777}, // replaced by a file since: left alone
	}
	stat := func(name string, flags byte) (unix.Stat_t, bool) {
		st, ok := stats[name]
		return st, ok
	}
	fixed := func() []entry {
		out := append([]entry(nil), entries...)
		out[2].mode |= 0o4000
		out[3].mode |= 0o4000
		return out
	}()
	idev := map[string][2]int64{"bin/su": {1, 10}, "bin/su-hard": {1, 10}, "big": {0x1_0000_0001, 1 << 40}}
	uids := map[int32]string{4242: "alice"}
	gids := map[int32]string{4343: "staff"}
	archive := flistOpts{uid: true, gid: true, devices: true, specials: true, links: true}
	for _, tc := range []struct {
		name string
		o    flistOpts
		want []byte
	}{
		{name: "archive: names sent", o: archive,
			want: flist(archive, fixed, uids, gids, nil)},
		{name: "numeric ids: no name lists", o: with(archive, func(o *flistOpts) { o.numericIDs = true }),
			want: flist(archive, fixed, nil, nil, nil)},
		{name: "owners only", o: flistOpts{uid: true, links: true},
			want: flist(flistOpts{uid: true, links: true}, fixed, uids, nil, nil)},
		{name: "groups only", o: flistOpts{gid: true},
			want: flist(flistOpts{gid: true}, fixed, nil, gids, nil)},
		{name: "no owners: no lists", o: flistOpts{links: true},
			want: flist(flistOpts{links: true}, fixed, nil, nil, nil)},
		{name: "hard links: device and inode of regular files", o: with(archive, func(o *flistOpts) { o.hardLinks = true }),
			want: flist(archive, fixed, uids, gids, idev)},
		{name: "checksums", o: with(archive, func(o *flistOpts) { o.checksum, o.hardLinks = true, true }),
			want: flist(with(archive, func(o *flistOpts) { o.checksum = true }), fixed, uids, gids, idev)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := flist(tc.o, entries, uids, gids, nil)
			// The library always sends both lists, whatever the options.
			if !tc.o.uid || !tc.o.gid {
				in = flist(tc.o, entries, nil, nil, nil)
				in = append(in[:len(in)-4], flistTrailer(uids, gids)...)
			}
			got, _, _, err := rewriteFlist(in, tc.o, stat)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("rewritten file list\n got %x\nwant %x", got, tc.want)
			}
		})
	}
}

func with(o flistOpts, f func(*flistOpts)) flistOpts {
	f(&o)
	return o
}

// flistTrailer is both id lists and ioErrors, as the library always ends
// a file list.
func flistTrailer(uids, gids map[int32]string) []byte {
	var b []byte
	for _, list := range []map[int32]string{uids, gids} {
		for id, name := range list {
			b = binary.LittleEndian.AppendUint32(b, uint32(id))
			b = append(b, byte(len(name)))
			b = append(b, name...)
		}
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	return binary.LittleEndian.AppendUint32(b, 0)
}

func TestRewriteFlistRefusesWhatItDoesNotUnderstand(t *testing.T) {
	o := flistOpts{uid: true, gid: true, links: true}
	good := flist(o, []entry{{name: "a", mode: sIFREG | 0o644}}, map[int32]string{}, map[int32]string{}, nil)
	none := func(string, byte) (unix.Stat_t, bool) { return unix.Stat_t{}, false }
	for _, tc := range []struct {
		name string
		in   []byte
		o    flistOpts
		want string
	}{
		{name: "trailing bytes", in: append(append([]byte(nil), good...), 1), o: o, want: "after the trailer"},
		{name: "truncated", in: good[:len(good)-3], o: o, want: "unexpected EOF"},
		{name: "options disagree", in: good, o: flistOpts{links: true}, want: "after the trailer"},
		{name: "short name flags", in: append([]byte{0x20}, good[1:]...), o: o, want: "flags"},
		{name: "negative name length", in: []byte{xmitLongName, 0xff, 0xff, 0xff, 0xff}, o: o, want: "name length"},
		{name: "empty", in: nil, o: o, want: "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := rewriteFlist(tc.in, tc.o, none)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("rewriteFlist error %v, want %q", err, tc.want)
			}
		})
	}
}

func frame(tag int, payload []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, muxHeader(tag, len(payload))), payload...)
}

func TestFixerFrames(t *testing.T) {
	o := flistOpts{}
	list := flist(o, []entry{{name: "a", mode: sIFREG | 0o644}}, nil, nil, nil)
	listIn := append(list[:len(list)-4:len(list)-4], flistTrailer(nil, nil)...) // both id lists
	seed := []byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte{7}, 2*maxFrame+5)
	header := func(tag, n int) []byte { return binary.LittleEndian.AppendUint32(nil, muxHeader(tag, n)) }
	var out bytes.Buffer
	f := &fixer{w: &out, opts: o, stat: func(string, byte) (unix.Stat_t, bool) { return unix.Stat_t{}, false }}
	writes := [][]byte{
		seed,
		header(0, len(listIn)), listIn, // the file list: id lists dropped
		header(0, len(big)), big, // split in three frames
		header(muxError, 3), []byte("err"),
		header(0, 0), {},
		header(0, 4), {9, 9, 9, 9}, // data after the file list goes as is
	}
	for i, w := range writes {
		if n, err := f.Write(w); err != nil || n != len(w) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	var want []byte
	want = append(want, seed...)
	want = append(want, frame(0, list)...)
	want = append(want, frame(0, big[:maxFrame])...)
	want = append(want, frame(0, big[maxFrame:2*maxFrame])...)
	want = append(want, frame(0, big[2*maxFrame:])...)
	want = append(want, frame(muxError, []byte("err"))...)
	want = append(want, frame(0, nil)...)
	want = append(want, frame(0, []byte{9, 9, 9, 9})...)
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("fixer wrote %d bytes, want %d:\n got %x\nwant %x", out.Len(), len(want), head(out.Bytes()), head(want))
	}
}

func head(b []byte) []byte { return b[:min(len(b), 64)] }

// TestFixerOverflowedHeader feeds the header the library writes for a
// payload of 16 MiB or more: the length's top bits land in the tag.
func TestFixerOverflowedHeader(t *testing.T) {
	payload := make([]byte, 1<<24+3)
	var out bytes.Buffer
	f := &fixer{w: &out, flist: true}
	f.Write([]byte{0, 0, 0, 0})
	hdr := binary.LittleEndian.AppendUint32(nil, uint32(muxBase)<<24|uint32(len(payload)))
	if _, err := f.Write(hdr); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(payload); err != nil {
		t.Fatalf("payload: %v", err)
	}
	frames, total := 0, 0
	b := out.Bytes()[4:]
	for len(b) > 0 {
		h := binary.LittleEndian.Uint32(b)
		n := int(h & 0xffffff)
		if tag := int(h>>24) - muxBase; tag != 0 || n > maxFrame {
			t.Fatalf("frame %d: tag %d length %d", frames, tag, n)
		}
		b = b[4+n:]
		frames++
		total += n
	}
	if total != len(payload) {
		t.Errorf("re-framed %d bytes, want %d", total, len(payload))
	}
}

func TestFixerRefusesOtherWrites(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes [][]byte
	}{
		{name: "seed of 8 bytes", writes: [][]byte{make([]byte, 8)}},
		{name: "header and payload in one write", writes: [][]byte{make([]byte, 4), frame(0, []byte("abc"))}},
		{name: "length mismatch", writes: [][]byte{make([]byte, 4), binary.LittleEndian.AppendUint32(nil, muxHeader(0, 5)), []byte("abc")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fixer{w: &bytes.Buffer{}, flist: true}
			var err error
			for _, w := range tc.writes {
				if _, err = f.Write(w); err != nil {
					break
				}
			}
			if err == nil {
				t.Fatal("fixer accepted the writes")
			}
			if _, again := f.Write([]byte{0, 0, 0, 0}); again == nil {
				t.Error("fixer accepts writes after an error")
			}
		})
	}
}

func TestSwallow(t *testing.T) {
	var out bytes.Buffer
	s := &swallow{w: &out, prefix: []byte(libraryPrefix)}
	for _, w := range []string{"@RSYNCD: 27\n", "@RSYNCD: OK", "\nrest", "more"} {
		if n, err := s.Write([]byte(w)); err != nil || n != len(w) {
			t.Fatalf("write %q: %d, %v", w, n, err)
		}
	}
	if out.String() != "restmore" || !s.done() {
		t.Errorf("passed %q, done %v; want %q, true", out.String(), s.done(), "restmore")
	}
	bad := &swallow{w: &out, prefix: []byte(libraryPrefix)}
	if _, err := bad.Write([]byte("@RSYNCD: 31\n")); err == nil {
		t.Error("swallow accepted a greeting other than the one sent")
	}
}
