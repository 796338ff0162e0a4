package main

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/koshin-ota/koshin/advisory"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
)

// releaseDocuments are the validated SBOM and advisory of a release being
// added, to be stored in the workspace once the target passes its checks.
type releaseDocuments [][]byte

// readReleaseDocuments validates --advisory and --sbom and signs their
// digests into c. An advisory makes the release a security update and
// contributes its tracking ID and CVE IDs to c.Advisories.
func readReleaseDocuments(f releaseFlags, c *trust.TargetCustom) (releaseDocuments, error) {
	var docs releaseDocuments
	if f.advisory != "" {
		b, err := readDocument(f.advisory, advisory.MaxCSAFSize)
		if err != nil {
			return nil, err
		}
		csaf, err := advisory.ParseCSAF(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.advisory, err)
		}
		c.AdvisorySHA256, c.Security = advisory.Digest(b), true
		// The tracking ID comes first: reports name a release's advisory
		// by its first ID.
		c.Advisories = mergeIDs(append([]string{csaf.Document.Tracking.ID}, csaf.CVEs()...), c.Advisories)
		if len(c.Advisories) > trust.MaxAdvisories {
			return nil, fmt.Errorf("%s: the release would carry %d advisory IDs, at most %d are signed", f.advisory, len(c.Advisories), trust.MaxAdvisories)
		}
		docs = append(docs, b)
	}
	if f.sbom != "" {
		b, err := readDocument(f.sbom, advisory.MaxSBOMSize)
		if err != nil {
			return nil, err
		}
		if _, err := advisory.ParseCycloneDX(b); err != nil {
			return nil, fmt.Errorf("%s: %w", f.sbom, err)
		}
		c.SBOMSHA256 = advisory.Digest(b)
		docs = append(docs, b)
	}
	return docs, nil
}

// store keeps the documents in the workspace, from where `koshin repo
// publish` writes them next to the payloads.
func (docs releaseDocuments) store(r *repo.Repo) error {
	for _, b := range docs {
		if _, err := r.StoreDocument(b); err != nil {
			return err
		}
	}
	return nil
}

// readDocument reads a file of at most limit bytes.
func readDocument(name string, limit int64) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return b, nil
}

// mergeIDs appends the IDs of add not in ids yet, keeping the order.
func mergeIDs(ids, add []string) []string {
	for _, id := range add {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}
