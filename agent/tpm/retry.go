package tpm

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// retryWarnings are the TPM warnings that mean "send the same command
// again": the TPM did not execute it.
var retryWarnings = []tpm2.TPMRC{
	tpm2.TPMRCRetry,
	tpm2.TPMRCYielded,
	tpm2.TPMRCTesting,
	tpm2.TPMRCNVRate,
	tpm2.TPMRCNVUnavailable,
}

func retryable(err error) bool {
	for _, rc := range retryWarnings {
		if errors.Is(err, rc) {
			return true
		}
	}
	return false
}

// Retry bounds: a TPM that is still busy after this many attempts (about
// 30 s with the back-off below) is treated as failed.
const (
	maxAttempts = 64
	firstDelay  = time.Millisecond
	maxDelay    = 500 * time.Millisecond
)

// do runs one TPM command, repeating it while the TPM answers with a retry
// warning, with exponential back-off. what names the command in errors.
func do[R any](c *Counter, what string, cmd func() (*R, error)) (*R, error) {
	delay := firstDelay
	for attempt := 1; ; attempt++ {
		r, err := cmd()
		if err == nil {
			return r, nil
		}
		if !retryable(err) || attempt == maxAttempts {
			return nil, fmt.Errorf("tpm %s: %w", what, err)
		}
		c.retries.Add(1)
		c.sleep(delay)
		delay = min(2*delay, maxDelay)
	}
}
