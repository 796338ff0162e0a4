package deviceapi

import (
	"fmt"

	"github.com/koshin-ota/koshin/trust"
)

// EnrollRequest asks the server's device CA for a certificate. CSR is a
// PEM-encoded PKCS#10 request signed by the device's own key; the device ID
// is the hex SHA-256 of that key's PKIX encoding (CCDS STS01). Exactly one of
// Token (a one-time enrollment token) or a factory pre-authorisation of
// (Serial, public key) authorises the request.
type EnrollRequest struct {
	CSR        string `json:"csr"`
	Serial     string `json:"serial"`
	HardwareID string `json:"hardware_id"`
	Token      string `json:"token,omitempty"`
	// EncryptionKey is the device's X25519 public key (base64) to which
	// content keys of encrypted releases are wrapped.
	EncryptionKey string `json:"encryption_key,omitempty"`
}

// Validate checks form and size.
func (r *EnrollRequest) Validate() error {
	if len(r.CSR) == 0 || len(r.CSR) > 8<<10 {
		return fmt.Errorf("%w: csr must be 1-8192 bytes of PEM", trust.ErrInvalid)
	}
	if err := trust.ValidateID("serial", r.Serial); err != nil {
		return err
	}
	if err := trust.ValidateID("hardware ID", r.HardwareID); err != nil {
		return err
	}
	if len(r.Token) > maxShort || len(r.EncryptionKey) > maxShort {
		return fmt.Errorf("%w: token or encryption key too long", trust.ErrInvalid)
	}
	return nil
}

// EnrollResponse carries the issued certificate and what the device needs to
// verify the server and both repositories from then on.
type EnrollResponse struct {
	DeviceID    string `json:"device_id"`
	Certificate string `json:"certificate"` // PEM, device certificate
	ServerCA    string `json:"server_ca"`   // PEM, CA of the server's TLS certificate
}
