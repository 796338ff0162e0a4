package tpm

import (
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// DefaultDevice is the kernel's TPM resource manager, which lets the agent
// share the TPM with other users (tpm2-abrmd is not needed).
const DefaultDevice = "/dev/tpmrm0"

// OpenTCP connects to a TPM simulator speaking the reference
// implementation's TCP protocol (swtpm socket --server type=tcp …
// --ctrl type=tcp …), for tests. The simulator must already be started up
// (swtpm --flags not-need-init,startup-clear).
func OpenTCP(commandAddr, platformAddr string) (transport.TPMCloser, error) {
	return tcp.Open(tcp.Config{CommandAddress: commandAddr, PlatformAddress: platformAddr})
}
