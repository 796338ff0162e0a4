package tpm_test

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"
)

// flaky wraps a TPM so that every other command is answered TPM_RC_RETRY
// without reaching it, as a busy TPM may answer any command: the Counter
// must repeat each one.
type flaky struct {
	transport.TPM
	n, injected int
}

func (f *flaky) Send(cmd []byte) ([]byte, error) {
	f.n++
	if f.n%2 == 1 {
		f.injected++
		// TPM_ST_NO_SESSIONS, size 10, TPM_RC_RETRY (0x922).
		return []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x22}, nil
	}
	return f.TPM.Send(cmd)
}

func (f *flaky) String() string {
	return fmt.Sprintf("%d commands, %d retries injected", f.n, f.injected)
}
