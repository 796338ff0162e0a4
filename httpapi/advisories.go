package httpapi

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/advisory"
	"github.com/koshin-ota/koshin/trust/repo"
)

// A release's CSAF advisory and CycloneDX SBOM are published in the image
// repository next to the payloads, under the digests its target signs
// (trust/repo document.go). The server hands them out by release name so
// that a device can tell its user why an update matters (EN 303 645
// 5.3-11) and operators can see what a release fixes and contains. It
// checks each document against the release's digest before serving it, so
// a damaged copy is a 404, never a wrong answer; devices check again
// against the signed metadata, which the server cannot forge.

// deviceAdvisory serves GET /device/v1/advisories/{release}: the advisory
// document as published, for a release that fits the device.
func (s *Server) deviceAdvisory(w http.ResponseWriter, r *http.Request, d *koshin.Device) error {
	rel, err := s.Store.FindReleaseByName(r.Context(), r.PathValue("release"))
	if koshin.ErrorCode(err) == koshin.ENOTFOUND || koshin.ErrorCode(err) == koshin.EINVALID || (err == nil && !rel.Fits(d.HardwareID)) {
		return errNotFound // other models' releases are none of its business (5.6-2)
	} else if err != nil {
		return err
	}
	doc, err := s.releaseDocument(rel.AdvisorySHA256, repo.DocumentAdvisory, advisory.MaxCSAFSize)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "private, max-age=3600")
	serveBytes(w, r, doc, "application/json")
	return nil
}

// releaseAdvisory is a release's advisory for operators.
type releaseAdvisory struct {
	Release string           `json:"release"`
	SHA256  string           `json:"sha256"`
	Summary advisory.Summary `json:"summary"`
	// Document is the CSAF document as published.
	Document json.RawMessage `json:"document"`
}

// getReleaseAdvisory serves GET /api/v1/releases/{name}/advisory.
func (s *Server) getReleaseAdvisory(w http.ResponseWriter, r *http.Request, _ *principal) error {
	rel, err := s.Store.FindReleaseByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	doc, err := s.releaseDocument(rel.AdvisorySHA256, repo.DocumentAdvisory, advisory.MaxCSAFSize)
	if err != nil {
		return err
	}
	c, err := advisory.ParseCSAF(doc)
	if err != nil {
		return koshin.Errorf(koshin.EINVALID, "The published advisory of %s does not validate: %v", rel.Name, err)
	}
	writeJSON(w, http.StatusOK, releaseAdvisory{Release: rel.Name, SHA256: rel.AdvisorySHA256, Summary: c.Summarize(), Document: doc})
	return nil
}

// getReleaseSBOM serves GET /api/v1/releases/{name}/sbom: the CycloneDX
// document as published.
func (s *Server) getReleaseSBOM(w http.ResponseWriter, r *http.Request, _ *principal) error {
	rel, err := s.Store.FindReleaseByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	doc, err := s.releaseDocument(rel.SBOMSHA256, repo.DocumentSBOM, advisory.MaxSBOMSize)
	if err != nil {
		return err
	}
	serveBytes(w, r, doc, "application/vnd.cyclonedx+json")
	return nil
}

// releaseDocument reads a published document and checks it against its
// digest. No digest, no image repository or no published copy is 404.
func (s *Server) releaseDocument(digest, suffix string, limit int64) ([]byte, error) {
	if digest == "" || s.Image == nil {
		return nil, errNoDocument
	}
	b, err := s.Image.read(repo.DocumentPath(digest, suffix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoDocument
	} else if err != nil {
		return nil, koshin.Internal(err)
	}
	if int64(len(b)) > limit || advisory.VerifyDigest(b, digest) != nil {
		s.Log.Error("published release document does not match its signed digest", "document", repo.DocumentPath(digest, suffix))
		return nil, errNoDocument
	}
	return b, nil
}

var errNoDocument = koshin.Errorf(koshin.ENOTFOUND, "The release has no such document.")
