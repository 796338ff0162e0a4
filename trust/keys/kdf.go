package keys

import (
	"fmt"

	"golang.org/x/crypto/argon2"
)

// KDFParams are the Argon2id costs that turn a passphrase into the key that
// seals a key file. They are stored in the file, so a file written with
// stronger costs stays readable after the defaults change.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultKDF is what WriteKeyFile uses for the zero KDFParams: RFC 9106's
// second recommended option (t=3, 64 MiB), with two lanes for two cores.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 2}

// Bounds on the Argon2id costs. The floor keeps even explicitly cheap
// parameters (tests, small machines) out of cheap-brute-force range; the
// ceiling stops a hostile key file from making a reader allocate gigabytes
// or spin for minutes before it can even report a wrong passphrase.
const (
	minKDFTime      = 1
	maxKDFTime      = 16
	minKDFMemoryKiB = 8 << 10 // 8 MiB
	maxKDFMemoryKiB = 1 << 20 // 1 GiB
	minKDFThreads   = 1
	maxKDFThreads   = 16
	minSaltLen      = 16
	maxSaltLen      = 64
	kdfName         = "argon2id"
	sealKeyLen      = 32 // AES-256
)

// Validate checks the costs against koshin's floor and ceiling.
func (p KDFParams) Validate() error {
	if p.Time < minKDFTime || p.Time > maxKDFTime {
		return fmt.Errorf("argon2id time %d outside [%d, %d]", p.Time, minKDFTime, maxKDFTime)
	}
	if p.MemoryKiB < minKDFMemoryKiB || p.MemoryKiB > maxKDFMemoryKiB {
		return fmt.Errorf("argon2id memory %d KiB outside [%d, %d]", p.MemoryKiB, minKDFMemoryKiB, maxKDFMemoryKiB)
	}
	if p.Threads < minKDFThreads || p.Threads > maxKDFThreads {
		return fmt.Errorf("argon2id threads %d outside [%d, %d]", p.Threads, minKDFThreads, maxKDFThreads)
	}
	return nil
}

func (p KDFParams) orDefault() KDFParams {
	if p == (KDFParams{}) {
		return DefaultKDF
	}
	return p
}

// deriveKey runs Argon2id. Callers validate p first.
func deriveKey(passphrase, salt []byte, p KDFParams) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, sealKeyLen)
}
