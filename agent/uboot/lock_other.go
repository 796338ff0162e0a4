//go:build !unix

package uboot

import "fmt"

// lock is only implemented where flock exists; refuse rather than silently
// run unlocked when a lock was asked for.
func lock(path string) (unlock func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	return nil, fmt.Errorf("lock %s: file locking is not supported on this platform", path)
}
