package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/koshin-ota/koshin"
)

// maxCSVBody bounds a pre-authorisation upload: MaxPreAuthorizations rows
// of a serial, a hardware ID, a base64 key (~120 bytes for P-256), a group
// and tags fit with room to spare.
const maxCSVBody = 8 << 20

func (s *Server) listPreauth(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	f := koshin.PreAuthorizationFilter{Unused: q.bool("unused"), After: q.str("after"), Limit: q.int("limit")}
	if q.err != nil {
		return q.err
	}
	if _, err := koshin.Limit(f.Limit); err != nil {
		return err
	}
	ps, err := s.Store.FindPreAuthorizations(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyList(ps, f.Limit, func(p *koshin.PreAuthorization) string { return p.Serial }))
	return nil
}

// uploadPreauth stores a factory's pre-authorisation list (text/csv, see
// parsePreauthCSV), all rows or none (CCDS HLC05: zero-touch enrollment).
func (s *Server) uploadPreauth(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := requireType(r, "text/csv"); err != nil {
		return err
	}
	body, err := readBody(w, r, maxCSVBody)
	if err != nil {
		return err
	}
	ps, err := parsePreauthCSV(body)
	if err != nil {
		return err
	}
	err = s.Store.CreatePreAuthorizations(r.Context(), ps)
	s.audit(r.Context(), p.String(), "preauth.upload", "preauthorizations", err, strconv.Itoa(len(ps))+" devices")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]int{"created": len(ps)})
	return nil
}

func (s *Server) deletePreauth(w http.ResponseWriter, r *http.Request, p *principal) error {
	serial := r.PathValue("serial")
	err := s.Store.DeletePreAuthorization(r.Context(), serial)
	s.audit(r.Context(), p.String(), "preauth.delete", "preauth:"+serial, err, "")
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listEnrollTokens(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	page := q.seqPage()
	if q.err != nil {
		return q.err
	}
	if err := page.Validate(); err != nil {
		return err
	}
	ts, err := s.Store.FindEnrollmentTokens(r.Context(), page)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, seqList(ts, page.Limit, func(t *koshin.EnrollmentToken) int64 { return t.ID }))
	return nil
}

type enrollTokenRequest struct {
	Description string   `json:"description,omitempty"`
	Group       string   `json:"group,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// ExpiresAt defaults to DefaultEnrollTokenLifetime from now.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// DefaultEnrollTokenLifetime applies when a request names no expiry.
const DefaultEnrollTokenLifetime = 7 * 24 * time.Hour

// enrollTokenPrefix marks enrollment tokens for secret scanners.
const enrollTokenPrefix = "kenr_"

type enrollTokenCreated struct {
	Token string                  `json:"token"` // shown once
	Info  *koshin.EnrollmentToken `json:"info"`
}

// createEnrollToken issues a one-time, expiring enrollment token for a
// device that is not pre-authorised (CCDS HLC04).
func (s *Server) createEnrollToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req enrollTokenRequest
	if err := decodeJSON(w, r, &req, maxSmallBody); err != nil {
		return err
	}
	now := s.now()
	if req.ExpiresAt.IsZero() {
		req.ExpiresAt = now.Add(DefaultEnrollTokenLifetime)
	}
	if !req.ExpiresAt.After(now) || req.ExpiresAt.Sub(now) > koshin.MaxTokenLifetime {
		return koshin.Errorf(koshin.EINVALID, "Expiry must be in the future and within %s.", koshin.MaxTokenLifetime)
	}
	secret := enrollTokenPrefix + koshin.NewSecret()
	t := &koshin.EnrollmentToken{Hash: koshin.HashSecret(secret), Description: req.Description, Group: req.Group,
		Tags: koshin.CleanTags(req.Tags), CreatedBy: p.Operator, ExpiresAt: req.ExpiresAt}
	err := s.Store.CreateEnrollmentToken(r.Context(), t)
	target := "enrollment-token:new"
	if err == nil {
		target = "enrollment-token:" + strconv.FormatInt(t.ID, 10)
	}
	s.audit(r.Context(), p.String(), "enrollment-token.create", target, err, "expires "+req.ExpiresAt.UTC().Format(time.RFC3339))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, enrollTokenCreated{Token: secret, Info: t})
	return nil
}

func (s *Server) deleteEnrollToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	err = s.Store.DeleteEnrollmentToken(r.Context(), id)
	s.audit(r.Context(), p.String(), "enrollment-token.delete", "enrollment-token:"+strconv.FormatInt(id, 10), err, "")
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
