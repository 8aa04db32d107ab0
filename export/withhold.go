package export

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// Withholding root-only files. The library opens and sends every regular
// file a client asks for, by index into the file list, and the child can
// read them all (CAP_DAC_READ_SEARCH). So the child reads the client's
// side of the binary protocol before the library does, and drops the
// requests for the indices the fixer withheld (RootOnly files): the
// library never opens those files. What the client sends, in protocol 27
// (not multiplexed):
//
//	filter list:  int32 length, that many bytes; ... int32 0
//	requests:     int32 index; then, unless -n, the sum head
//	              (int32 count, block length, checksum length, remainder)
//	              and count times (int32 weak sum, checksum length bytes);
//	              int32 -1 ends a phase (twice), and a last -1 the session
//
// A request left out gets nothing back; the client learns why from the
// error message and the I/O error flag the fixer put before and into the
// file list. Anything the parser does not understand passes through
// untouched from there on: the library then refuses it as it would have.

// maxSumLen is the longest strong checksum a sum head may announce.
const maxSumLen = 16

// filterRequests returns a reader of r without the requests for which
// withheld reports true. It reads no request before sent is closed (the
// file list went out, so the withheld indices are known).
func filterRequests(r io.Reader, dryRun bool, sent <-chan struct{}, withheld func(int32) bool) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(copyRequests(pw, bufio.NewReaderSize(r, 64<<10), dryRun, sent, withheld))
	}()
	return pr
}

// copyRequests copies the client's stream from br to w, leaving out the
// withheld requests. It returns io.EOF when the client's stream ends at a
// message boundary.
func copyRequests(w io.Writer, br *bufio.Reader, dryRun bool, sent <-chan struct{}, withheld func(int32) bool) error {
	var word [4]byte
	readInt := func() (int32, error) {
		if _, err := io.ReadFull(br, word[:]); err != nil {
			return 0, err // io.EOF only at a boundary
		}
		return int32(binary.LittleEndian.Uint32(word[:])), nil
	}
	passRest := func(prefix []byte) error {
		if _, err := w.Write(prefix); err != nil {
			return err
		}
		_, err := io.Copy(w, br)
		if err == nil {
			err = io.EOF
		}
		return err
	}
	// The filter list, passed through.
	for {
		n, err := readInt()
		if err != nil {
			return err
		}
		if _, err := w.Write(word[:]); err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if n < 0 || n > maxLine {
			return passRest(nil)
		}
		if _, err := io.CopyN(w, br, int64(n)); err != nil {
			return err
		}
	}
	<-sent
	var head [16]byte
	for {
		ndx, err := readInt()
		if err != nil {
			return err
		}
		msg := binary.LittleEndian.AppendUint32(nil, uint32(ndx))
		if ndx < 0 || dryRun {
			if _, err := w.Write(msg); err != nil {
				return err
			}
			continue
		}
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return err
		}
		msg = append(msg, head[:]...)
		count := int32(binary.LittleEndian.Uint32(head[0:]))
		sumLen := int32(binary.LittleEndian.Uint32(head[8:]))
		if count < 0 || sumLen < 0 || sumLen > maxSumLen {
			return passRest(msg)
		}
		sums := int64(count) * int64(4+sumLen)
		dst := w
		if withheld(ndx) {
			dst = io.Discard
			msg = nil
		}
		if _, err := dst.Write(msg); err != nil {
			return err
		}
		if _, err := io.CopyN(dst, br, sums); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
}
