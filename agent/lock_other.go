//go:build !unix

package agent

import "os"

// lockFile is a no-op where flock does not exist; the in-process lock still
// serialises operations.
func lockFile(*os.File) error { return nil }
