package export

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func le32(b []byte, vs ...int32) []byte {
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

// request is a file request: index, sum head, count sums of sumLen.
func requestBytes(ndx, count, sumLen int32) []byte {
	b := le32(nil, ndx, count, 700, sumLen, 0)
	for i := range count {
		b = le32(b, 0x1000+i)
		b = append(b, bytes.Repeat([]byte{byte(ndx)}, int(sumLen))...)
	}
	return b
}

func TestCopyRequests(t *testing.T) {
	filters := le32(nil, 3)
	filters = append(filters, "- x"...)
	filters = le32(filters, 0)
	withheld := func(i int32) bool { return i == 2 || i == 5 }
	sent := make(chan struct{})
	close(sent)
	for _, tc := range []struct {
		name     string
		in, want []byte
		dryRun   bool
		err      error
	}{
		{
			name: "drops withheld requests",
			in: slicesConcat(filters, requestBytes(1, 0, 16), requestBytes(2, 3, 16), requestBytes(3, 2, 2),
				le32(nil, -1), requestBytes(5, 0, 16), requestBytes(6, 1, 16), le32(nil, -1, -1)),
			want: slicesConcat(filters, requestBytes(1, 0, 16), requestBytes(3, 2, 2),
				le32(nil, -1), requestBytes(6, 1, 16), le32(nil, -1, -1)),
			err: io.EOF,
		},
		{
			name: "dry run has no sums",
			in:   slicesConcat(filters, le32(nil, 1, 2, 5, -1, -1, -1)),
			want: slicesConcat(filters, le32(nil, 1, 2, 5, -1, -1, -1)), dryRun: true, err: io.EOF,
		},
		{
			name: "bad sum head passes through",
			in:   slicesConcat(filters, le32(nil, 2, -7, 0, 99, 0), []byte("rest")),
			want: slicesConcat(filters, le32(nil, 2, -7, 0, 99, 0), []byte("rest")), err: io.EOF,
		},
		{
			name: "truncated withheld sums",
			in:   slicesConcat(filters, requestBytes(2, 3, 16)[:30]),
			want: filters, err: io.ErrUnexpectedEOF,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := copyRequests(&out, bufio.NewReader(bytes.NewReader(tc.in)), tc.dryRun, sent, withheld)
			if !errors.Is(err, tc.err) {
				t.Errorf("err %v, want %v", err, tc.err)
			}
			if !bytes.Equal(out.Bytes(), tc.want) {
				t.Errorf("out\n%x\nwant\n%x", out.Bytes(), tc.want)
			}
		})
	}
}

func slicesConcat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestRootOnly(t *testing.T) {
	for _, tc := range []struct {
		mode, uid uint32
		want      bool
	}{
		{sIFREG, 0, true}, // mode 0000
		{sIFREG | 0o600, 0, true},
		{sIFREG | 0o640, 0, true},
		{sIFREG | 0o440, 0, true},
		{sIFREG | 0o644, 0, false},
		{sIFREG | 0o604, 0, false},
		{sIFREG | 0o600, 1000, false},
		{sIFDIR | 0o700, 0, false},
		{sIFLNK | 0o777, 0, false},
	} {
		if got := RootOnly(tc.mode, tc.uid); got != tc.want {
			t.Errorf("RootOnly(%#o, %d) = %v, want %v", tc.mode, tc.uid, got, tc.want)
		}
	}
}

func TestSortedIndices(t *testing.T) {
	names := []string{".", "etc", "etc/shadow", "bin", "etc/motd", "a"}
	// sorted: . a bin etc etc/motd etc/shadow
	got := sortedIndices(names, []string{"etc/shadow", "bin"})
	if len(got) != 2 || !got[5] || !got[2] {
		t.Errorf("sortedIndices = %v, want {2, 5}", got)
	}
}
