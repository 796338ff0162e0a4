//go:build !linux

package control

import (
	"errors"
	"net"
)

// PeerCred is unavailable off Linux: every peer is refused.
func PeerCred(net.Conn) (Cred, error) {
	return Cred{}, errors.New("control: peer credentials need Linux SO_PEERCRED")
}
