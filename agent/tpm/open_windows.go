package tpm

import (
	"errors"

	"github.com/google/go-tpm/tpm2/transport"
)

// OpenDevice is not supported on Windows; the agent targets Linux.
func OpenDevice(path string) (transport.TPMCloser, error) {
	return nil, errors.New("tpm: OpenDevice is only supported on Linux")
}
