//go:build unix

package sim

import "syscall"

// fdReserve is kept for files, the mirror and the process's own needs.
const fdReserve = 512

// defaultMaxConns is the process's file-descriptor limit less a reserve
// (the Go runtime raised the soft limit to the hard one at start-up).
func defaultMaxConns() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur <= 2*fdReserve {
		return 0
	}
	return int(min(r.Cur-fdReserve, 1<<20))
}
