package repo

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The offline flow (CCDS UPC11): ExportUnsigned writes the staged role to a
// file that travels (USB stick) to an air-gapped machine, SignOffline signs
// it there without any repository, and ImportSignature brings the
// signature back, verifying it against the key the role authorises before
// accepting it. Private keys never touch the networked machine.

const (
	signatureFormat  = 1
	maxSignatureFile = 64 << 10
	maxSigLen        = 1024
)

// SignatureFile is what SignOffline produces: one signature and enough
// context to refuse it if the staged role changed since export.
type SignatureFile struct {
	Format  int    `json:"koshin_signature"`
	Role    string `json:"role"`
	Version int64  `json:"version"`
	// SignedSHA256 is the SHA-256 of the canonical "signed" object.
	SignedSHA256 string `json:"signed_sha256"`
	KeyID        string `json:"keyid"`
	Sig          string `json:"sig"`
}

// ExportUnsigned returns the staged role (root or targets) as a metadata
// file to carry to an offline signer. Signatures already collected are
// included; they do not affect what a new signature covers.
func (r *Repo) ExportUnsigned(role string) ([]byte, error) {
	if _, err := r.signable(role); err != nil {
		return nil, err
	}
	if role == roleRoot {
		return encodeMeta(r.sRoot)
	}
	return encodeMeta(r.sTarget)
}

// SignOffline signs an exported role with s and returns the signature file.
// It needs no repository, so it runs on the offline machine.
func SignOffline(unsigned []byte, s crypto.Signer) ([]byte, error) {
	role, version, msg, err := parseUnsigned(unsigned)
	if err != nil {
		return nil, err
	}
	id, err := keys.KeyID(s.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	ts, err := keys.TUFSigner(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	sig, err := ts.SignMessage(bytes.NewReader(msg))
	if err != nil {
		return nil, fmt.Errorf("sign offline: %w", err)
	}
	sum := sha256.Sum256(msg)
	sf := SignatureFile{Format: signatureFormat, Role: role, Version: version, SignedSHA256: hex.EncodeToString(sum[:]), KeyID: id, Sig: hex.EncodeToString(sig)}
	b, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// parseUnsigned decodes an exported root or targets file and returns its
// role, version and the bytes a signature covers.
func parseUnsigned(b []byte) (role string, version int64, msg []byte, err error) {
	if len(b) > maxMetaSize {
		return "", 0, nil, fmt.Errorf("%w: metadata larger than %d bytes", trust.ErrInvalid, maxMetaSize)
	}
	var probe struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return "", 0, nil, fmt.Errorf("%w: not a metadata file: %v", trust.ErrInvalid, err)
	}
	switch probe.Signed.Type {
	case roleRoot:
		m, err := parseMeta[metadata.RootType](b)
		if err != nil {
			return "", 0, nil, err
		}
		if err := checkRootStructure(&m.Signed, imageRoles); err != nil {
			return "", 0, nil, err
		}
		msg, err := canonical(m.Signed)
		return roleRoot, m.Signed.Version, msg, err
	case roleTargets:
		m, err := parseMeta[metadata.TargetsType](b)
		if err != nil {
			return "", 0, nil, err
		}
		if err := checkTargetsStructure(&m.Signed); err != nil {
			return "", 0, nil, err
		}
		msg, err := canonical(m.Signed)
		return roleTargets, m.Signed.Version, msg, err
	}
	return "", 0, nil, fmt.Errorf("%w: only root and targets are signed offline, not %q", trust.ErrInvalid, probe.Signed.Type)
}

// ParseSignatureFile decodes and validates a signature file strictly.
func ParseSignatureFile(b []byte) (*SignatureFile, error) {
	if len(b) > maxSignatureFile {
		return nil, fmt.Errorf("%w: signature file larger than %d bytes", trust.ErrInvalid, maxSignatureFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sf SignatureFile
	if err := dec.Decode(&sf); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: not a koshin signature file", trust.ErrInvalid)
	}
	if sf.Format != signatureFormat {
		return nil, fmt.Errorf("%w: signature file format %d", trust.ErrInvalid, sf.Format)
	}
	if err := validateOfflineRole(sf.Role); err != nil {
		return nil, err
	}
	if sf.Version < 1 || sf.Version > maxVersion {
		return nil, fmt.Errorf("%w: signature file version %d", trust.ErrInvalid, sf.Version)
	}
	if b, err := hex.DecodeString(sf.SignedSHA256); err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%w: signed_sha256 is not 64 hex digits", trust.ErrInvalid)
	}
	if err := validateKeyID(sf.KeyID); err != nil {
		return nil, err
	}
	if s, err := hex.DecodeString(sf.Sig); err != nil || len(s) == 0 || len(s) > maxSigLen {
		return nil, fmt.Errorf("%w: sig is not 1-%d bytes of hex", trust.ErrInvalid, maxSigLen)
	}
	return &sf, nil
}

// ImportSignature adds a signature made by SignOffline to the staged role.
// It refuses a signature over anything but the current staged content
// (trust.ErrMismatch: the role changed after export) and, like Sign, an
// unauthorised key, a duplicate or a signature that does not verify.
func (r *Repo) ImportSignature(role string, sig []byte) error {
	sf, err := ParseSignatureFile(sig)
	if err != nil {
		return err
	}
	if sf.Role != role {
		return fmt.Errorf("%w: signature is for %s, not %s", trust.ErrMismatch, sf.Role, role)
	}
	msg, err := r.signable(role)
	if err != nil {
		return err
	}
	if v := r.stagedVersion(role); sf.Version != v {
		return fmt.Errorf("%w: signature is for %s version %d, staged is %d", trust.ErrMismatch, role, sf.Version, v)
	}
	if sum := sha256.Sum256(msg); hex.EncodeToString(sum[:]) != sf.SignedSHA256 {
		return fmt.Errorf("%w: staged %s changed after it was exported; export and sign it again", trust.ErrMismatch, role)
	}
	raw, _ := hex.DecodeString(sf.Sig)
	return r.addSignature(role, metadata.Signature{KeyID: sf.KeyID, Signature: raw})
}
