package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Release documents are what a target's custom fields sign by digest
// besides its payload: the CycloneDX SBOM (sbom_sha256) and the CSAF
// advisory (advisory_sha256); package advisory reads them. They are kept
// in the payload store, content-addressed like payloads, and Publish
// writes them next to the payloads:
//
//	targets/SHA256.cdx.json   SBOM
//	targets/SHA256.csaf.json  advisory
//
// so that any static server, CDN or mirror serves them and blobpublish
// uploads them with the payloads (a name that is the content's hash).
// Nobody needs to trust the copy: readers check it against the signed
// digest.
const (
	DocumentSBOM     = "cdx.json"
	DocumentAdvisory = "csaf.json"
	// MaxDocumentSize bounds one stored document (the SBOM limit of
	// package advisory).
	MaxDocumentSize = 16 << 20
)

// StoreDocument keeps a release document in the payload store and returns
// its hex SHA-256, the digest to sign into the target's custom fields.
// The caller validates the document first (package advisory).
func (r *Repo) StoreDocument(data []byte) (string, error) {
	if len(data) == 0 || len(data) > MaxDocumentSize {
		return "", fmt.Errorf("%w: a release document has 1 to %d bytes", trust.ErrInvalid, MaxDocumentSize)
	}
	info, err := r.storePayload(bytes.NewReader(data), nil)
	if err != nil {
		return "", err
	}
	return info.name(), nil
}

// DocumentPath is where Publish writes the document with the given digest
// and suffix (DocumentSBOM, DocumentAdvisory), relative to the published
// directory.
func DocumentPath(sha256hex, suffix string) string {
	return "targets/" + sha256hex + "." + suffix
}

// publishDocuments writes the documents every current target signs. A
// digest whose document is not in the store (a release added with a digest
// only) is left out: the signed digest still stands, and readers of the
// published repository find no document for it.
func (r *Repo) publishDocuments(outDir string, targets map[string]*metadata.TargetFiles) error {
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		c, err := trust.ParseTargetCustom(targets[name].Custom)
		if err != nil {
			return fmt.Errorf("publish %s: %w", name, err)
		}
		for _, doc := range []struct{ digest, suffix string }{{c.SBOMSHA256, DocumentSBOM}, {c.AdvisorySHA256, DocumentAdvisory}} {
			if doc.digest == "" {
				continue
			}
			if err := r.publishDocument(outDir, doc.digest, doc.suffix); err != nil {
				return err
			}
		}
	}
	return nil
}

// publishDocument verifies a stored document against its digest before it
// is published, so a damaged store is never published.
func (r *Repo) publishDocument(outDir, digest, suffix string) error {
	want, err := hex.DecodeString(digest)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("%w: document digest %q", trust.ErrInvalid, digest)
	}
	data, err := readLimited(r.payloadPath(hex.EncodeToString(want)), MaxDocumentSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: document %s: %v", ErrCorrupt, digest, err)
	}
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], want) {
		return fmt.Errorf("%w: stored document %s does not match its digest", ErrCorrupt, digest)
	}
	return publishImmutable(filepath.Join(outDir, filepath.FromSlash(DocumentPath(hex.EncodeToString(want), suffix))), data)
}
