package bundle

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/koshin-ota/koshin/agent"
)

// nonceFile is the offline nonce's file in the agent's state directory.
const nonceFile = "offline-nonce"

// nonceLen is the nonce's length in hex digits (128 bits).
const nonceLen = 32

// Nonces keeps the device's offline nonce: the value an offline
// instruction must echo (see the package documentation). The current nonce
// survives restarts, so the administrator can fetch it, have the
// instruction signed and come back; it is replaced once an instruction
// echoing it was accepted, so each signed instruction installs once.
type Nonces struct {
	FS agent.StateFS
	// Rand defaults to crypto/rand.
	Rand io.Reader

	mu sync.Mutex
}

// Current returns the current nonce, creating one if there is none (or
// the stored one is damaged).
func (n *Nonces) Current() (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	b, err := n.FS.ReadFile(nonceFile)
	switch {
	case err == nil && validNonce(string(b)):
		return string(b), nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("offline nonce: %w", err)
	}
	return n.next()
}

// Rotate replaces the nonce, invalidating every instruction signed for the
// old one.
func (n *Nonces) Rotate() (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.next()
}

func (n *Nonces) next() (string, error) {
	r := n.Rand
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, nonceLen/2)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("offline nonce: %w", err)
	}
	s := hex.EncodeToString(b)
	if err := n.FS.WriteFile(nonceFile, []byte(s)); err != nil {
		return "", fmt.Errorf("offline nonce: %w", err)
	}
	return s, nil
}

func validNonce(s string) bool {
	if len(s) != nonceLen {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
