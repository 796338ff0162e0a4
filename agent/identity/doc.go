// Package identity keeps a device's identity on the device: its key pair
// for mutual TLS and signed reports (ECDSA P-256), its X25519 key for
// encrypted releases, and the certificate the server's device CA issued at
// enrollment. Keys are generated on the device and never leave it; the
// device ID is the hex SHA-256 of the public key's PKIX encoding (CCDS
// STS01), so it needs no registry to be unique.
//
// # Files
//
// One directory (mode 0700), every file written atomically:
//
//	device.key       ECDSA P-256 private key, PKCS#8 PEM, mode 0600
//	encryption.key   X25519 private key, PKCS#8 PEM, mode 0600
//	device.crt       device certificate, PEM
//	server-ca.pem    CA of the update server's TLS certificate, PEM
//	enrollment.json  device ID, serial and hardware ID at enrollment
//
// device.key is written last when keys are generated, so its presence
// means a complete key set.
//
// # Rotation
//
// A factory reset (CCDS HLC06, STS08) calls Rotate: the keys are destroyed
// — overwritten with random bytes, synced, then removed — together with the
// certificate, and a new key pair is generated, so the device has a new ID
// and must enroll again. server-ca.pem is kept: it names the server, not
// the device. On flash storage an overwrite may land on fresh blocks and
// leave the old ones to the wear-levelling layer; devices that must
// guarantee erasure keep keys in a TPM or secure element, or on an
// encrypted partition whose key the reset destroys (package agent/control).
package identity
