//go:build !unix

package sim

// defaultMaxConns: no limit known.
func defaultMaxConns() int { return 0 }
