package imaging

import "runtime"

// ioWorkers is how many files or directories the engine works on at once
// where a caller sets no number: perP for each P (GOMAXPROCS), up to
// maxIOWorkers. The work is mostly waiting on the disk, so a P is worth
// several workers; but each worker holds its buffers and read-ahead, so
// without the cap the heap would follow the machine's cores, not the tree:
// 64 Ps made a cold scan's source peak at 31–48 MiB above its baseline
// against ~4 MiB with 2 (TestSourceMemoryFlat), for no more disk.
func ioWorkers(perP int) int {
	return min(perP*runtime.GOMAXPROCS(0), maxIOWorkers)
}

// maxIOWorkers caps ioWorkers: 32 requests in flight keep a disk array or
// an NVMe device busy; 2 cores with 4 a P reach 8.
const maxIOWorkers = 32
