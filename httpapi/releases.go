package httpapi

import (
	"context"
	"encoding/hex"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/trust"
)

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	f := koshin.ReleaseFilter{Component: q.str("component"), HardwareID: q.str("hardware_id"), Channel: q.str("channel"),
		IncludeRevoked: q.bool("include_revoked"), After: q.str("after"), Limit: q.int("limit")}
	if q.err != nil {
		return q.err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	rs, err := s.Store.FindReleases(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyList(rs, f.Limit, func(r *koshin.Release) string { return r.Name }))
	return nil
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, _ *principal) error {
	rel, err := s.Store.FindReleaseByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rel)
	return nil
}

// revokeRelease stops a release server-side at once (CCDS UPC05): its
// rollouts halt and devices not yet started are cancelled. Devices are
// protected independently by the image repository's signed revocation
// (the target removed and the release-counter floor raised).
func (s *Server) revokeRelease(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("name")
	rel, err := s.Store.RevokeRelease(r.Context(), name, s.now())
	s.audit(r.Context(), p.String(), "release.revoke", "release:"+name, err, "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rel)
	return nil
}

// importResult says what an import did.
type importResult struct {
	Imported  []string `json:"imported"`
	Unchanged int      `json:"unchanged"`
	// Revoked are imported releases the repository no longer signs, or
	// signs below its release-counter floor for every hardware ID.
	Revoked []string `json:"revoked"`
}

// importReleases reads the published image repository, verifying it like
// a device would (ImageRepo.Targets), and creates a release for every
// target not imported yet. Releases the repository has revoked are revoked
// here too, which halts their rollouts.
func (s *Server) importReleases(w http.ResponseWriter, r *http.Request, p *principal) error {
	if s.Image == nil {
		return koshin.Errorf(koshin.ENOTIMPLEMENTED, "No image repository is configured.")
	}
	targets, err := s.Image.Targets(s.now())
	if err != nil {
		s.audit(r.Context(), p.String(), "release.import", "image-repository", err, "")
		return err
	}
	live, err := releasesOf(targets)
	if err != nil {
		s.audit(r.Context(), p.String(), "release.import", "image-repository", err, "")
		return err
	}
	res := importResult{Imported: []string{}, Revoked: []string{}}
	for _, name := range slices.Sorted(maps.Keys(live)) {
		if err := s.importOne(r.Context(), p, live[name], &res); err != nil {
			return err
		}
	}
	if err := s.revokeMissing(r.Context(), p, live, &res); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) importOne(ctx context.Context, p *principal, rel *koshin.Release, res *importResult) error {
	err := s.Store.CreateRelease(ctx, rel)
	switch koshin.ErrorCode(err) {
	case koshin.ECONFLICT:
		res.Unchanged++
		return nil
	case "":
		res.Imported = append(res.Imported, rel.Name)
	}
	s.audit(ctx, p.String(), "release.import", "release:"+rel.Name, err,
		"counter "+strconv.FormatUint(rel.ReleaseCounter, 10)+" hardware "+strings.Join(rel.HardwareIDs, ","))
	return err
}

// revokeMissing revokes imported, unrevoked releases absent from live.
func (s *Server) revokeMissing(ctx context.Context, p *principal, live map[string]*koshin.Release, res *importResult) error {
	f := koshin.ReleaseFilter{Limit: koshin.MaxLimit}
	for {
		page, err := s.Store.FindReleases(ctx, f)
		if err != nil {
			return err
		}
		for _, rel := range page {
			if live[rel.Name] != nil {
				continue
			}
			_, err := s.Store.RevokeRelease(ctx, rel.Name, s.now())
			s.audit(ctx, p.String(), "release.revoke", "release:"+rel.Name, err, "no longer signed by the image repository")
			if err != nil {
				return err
			}
			res.Revoked = append(res.Revoked, rel.Name)
		}
		if len(page) < f.Limit {
			return nil
		}
		f.After = page[len(page)-1].Name
	}
}

// releasesOf converts signed targets into releases, leaving out targets
// below their component's release-counter floor on every hardware ID they
// fit (trust.FloorKey).
func releasesOf(t *metadata.TargetsType) (map[string]*koshin.Release, error) {
	floors, err := trust.Floors(t)
	if err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "Image repository floors: %v.", err)
	}
	out := map[string]*koshin.Release{}
	for name, tf := range t.Targets {
		rel, err := releaseOf(name, tf)
		if err != nil {
			return nil, err
		}
		if belowFloors(rel, floors) {
			continue
		}
		out[name] = rel
	}
	return out, nil
}

func releaseOf(name string, tf *metadata.TargetFiles) (*koshin.Release, error) {
	c, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "Target %s: %v.", clip(name, koshin.MaxNameLen), err)
	}
	hashes := map[string]string{}
	for alg, h := range tf.Hashes {
		hashes[alg] = hex.EncodeToString(h)
	}
	rel := &koshin.Release{
		Name: name, Length: tf.Length, Hashes: hashes, HardwareIDs: c.HardwareIDs, Component: c.Component,
		ReleaseCounter: c.ReleaseCounter, Version: c.Version, Channel: string(c.Channel), Security: c.Security,
		Advisories: c.Advisories, SupportEnd: c.SupportEnd, SBOMSHA256: c.SBOMSHA256, AdvisorySHA256: c.AdvisorySHA256,
		Encrypted: c.Encryption != "",
	}
	if err := rel.Validate(); err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "Target %s: %s", clip(name, koshin.MaxNameLen), koshin.ErrorMessage(err))
	}
	return rel, nil
}

func belowFloors(rel *koshin.Release, floors map[string]uint64) bool {
	for _, hw := range rel.HardwareIDs {
		if rel.ReleaseCounter >= floors[trust.FloorKey(hw, rel.Component)] {
			return false
		}
	}
	return true
}
