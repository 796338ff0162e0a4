//go:build !windows

package tpm

import (
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// OpenDevice opens a TPM character device, normally DefaultDevice.
func OpenDevice(path string) (transport.TPMCloser, error) {
	return linuxtpm.Open(path)
}
