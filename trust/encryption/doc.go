// Package encryption implements koshin's optional per-release payload
// encryption, scheme trust.EncryptionScheme ("koshin-aes256gcm-chunk64k-v1").
// The byte format and the reasoning behind it are in docs/encryption.md.
//
// Who holds what:
//
//   - The signer draws one random content key per release (NewContentKey) and
//     encrypts the payload once (Encrypt), so the same ciphertext can be served
//     to every device and cached by a CDN or mirror. The image repository signs
//     the ciphertext's length and hashes as the target, and the plaintext's
//     length and SHA-256 in trust.TargetCustom.
//   - Each device holds its own X25519 key pair (GenerateDeviceKey) and sends
//     the public half at enrollment (MarshalDevicePublicKey,
//     ParseDevicePublicKey).
//   - The director wraps the content key to one device for one release
//     (WrapKey) and signs the result into trust.DirectorCustom.WrappedKey.
//   - The device unwraps it (UnwrapKey) and decrypts while streaming
//     (NewReader), releasing plaintext only chunk by authenticated chunk.
//
// No fleet-wide static secret exists: a content key protects one release, and
// a wrapped key opens only with one device's private key (EN 303 645 5.4-4,
// 5.5-8). The package keeps payloads confidential from mirrors, CDNs and the
// network (EN 303 645 5.5-1); it does not replace the TUF signatures, which
// still decide whether a payload is authentic (CCDS UPE11).
//
// Every decryption or unwrapping failure wraps trust.ErrDecrypt; malformed
// arguments (key sizes, identifiers) wrap trust.ErrInvalid.
package encryption
