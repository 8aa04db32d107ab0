package reliability

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// runHelper runs the test binary as a helper program (TestMain calls it when
// envHelper is set) and returns its exit code.
//
//   - "sftp-corrupt": an SFTP subsystem that runs the real sftp-server (its
//     arguments) and flips one byte in the data of the first WRITE at offset
//     0 it relays: the file lands on the golden node different from what the
//     client sent, as a flaky disk or a tampering host would leave it.
//   - "hostile-agent": a golden node's agent that breaks the receiver's
//     policy (see hostile_test.go); $GOLDSYNC_HOSTILE names the scenario.
func runHelper(name string) int {
	switch name {
	case "sftp-corrupt":
		if err := sftpCorrupt(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "sftp-corrupt:", err)
			return 1
		}
		return 0
	case "hostile-agent":
		if err := runHostileAgent(); err != nil {
			fmt.Fprintln(os.Stderr, "hostile-agent:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper", name)
	return 2
}

const sshFxpWrite = 6

func sftpCorrupt(argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("no sftp-server command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	r := bufio.NewReader(os.Stdin)
	corrupted := false
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		pkt := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(r, pkt); err != nil {
			break
		}
		if !corrupted && len(pkt) > 5 && pkt[0] == sshFxpWrite {
			// type, id u32, handle string, offset u64, data string
			hl := int(binary.BigEndian.Uint32(pkt[5:9]))
			at := 9 + hl
			if len(pkt) >= at+12 && binary.BigEndian.Uint64(pkt[at:at+8]) == 0 {
				data := pkt[at+12:]
				if len(data) > 0 {
					data[len(data)/2] ^= 0xff
					corrupted = true
				}
			}
		}
		if _, err := in.Write(hdr[:]); err != nil {
			break
		}
		if _, err := in.Write(pkt); err != nil {
			break
		}
	}
	in.Close()
	return cmd.Wait()
}
