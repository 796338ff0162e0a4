// Package pki is the update server's own small public-key infrastructure:
// the TLS identity devices and operators connect to, and the device CA that
// gives every enrolled device its client certificate.
//
// Two certificate authorities, both ECDSA P-256 and both generated on the
// first start when the operator configures none:
//
//   - the server CA signs the server's TLS certificate. Devices receive the
//     CA certificate at enrollment (and may have it from the factory) and
//     pin it; operators compare its SHA-256 fingerprint, which the server
//     prints at every start, with what their CLI sees.
//   - the device CA issues device certificates from enrollment CSRs. A
//     device certificate names the device ID, the hex SHA-256 of the CSR's
//     PKIX public key (koshin.DeviceID, CCDS STS01), and is valid for a
//     limited time; devices renew it over mutual TLS.
//
// Revocation does not rely on CRLs or OCSP: the server is the only party
// that relies on device certificates, so it checks the device's status and
// current certificate serial in its store on every request (package
// httpapi). A decommissioned device is refused at its next request, even on
// a kept-alive connection (CCDS HLC07, UPD08).
//
// TLS is 1.2 or newer with ECDHE and AEAD suites only; Go negotiates 1.3
// whenever the peer offers it (CCDS STS07).
//
// Files (Dir, created 0700):
//
//	server-ca.key.pem   CA key + certificate, 0600: the single commit point
//	server-ca.crt       CA certificate, 0644, rewritten from the above
//	server.key.pem      TLS key + certificate, 0600, renewed before expiry
//	device-ca.key.pem   device CA key + certificate, 0600
//	device-ca.crt       device CA certificate, 0644
//
// Keys and certificates share one file so that the atomic replacement of
// that file (internal/atomicfile) is the only commit point: a crash can
// never leave a key without its certificate. The keys are unencrypted at
// rest, like any TLS server key, and protected by file permissions; put
// them on an encrypted volume or use your own certificate (Options.CertFile)
// where that is not enough.
package pki
