package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin"
)

// tokenView is an API token or session as listed; the secret is never
// shown again after creation.
type tokenView struct {
	*koshin.APIToken
	Kind string `json:"kind"` // "session" or "api"
}

func viewTokens(ts []*koshin.APIToken) []tokenView {
	out := make([]tokenView, len(ts))
	for i, t := range ts {
		kind := "api"
		if strings.HasPrefix(t.Name, sessionNamePrefix) {
			kind = "session"
		}
		out[i] = tokenView{APIToken: t, Kind: kind}
	}
	return out
}

func (s *Server) listOwnTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.writeTokens(w, r, p.Operator)
}

func (s *Server) listOperatorTokens(w http.ResponseWriter, r *http.Request, _ *principal) error {
	return s.writeTokens(w, r, r.PathValue("name"))
}

func (s *Server) writeTokens(w http.ResponseWriter, r *http.Request, name string) error {
	ts, err := s.Store.FindAPITokens(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list[tokenView]{Items: viewTokens(ts)})
	return nil
}

type tokenRequest struct {
	Name string `json:"name"`
	// Role defaults to the caller's; it may be lower (koshin.Role.Covers).
	Role koshin.Role `json:"role,omitempty"`
	// ExpiresAt defaults to DefaultTokenLifetime from now.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// DefaultTokenLifetime applies when a token request names no expiry.
const DefaultTokenLifetime = 90 * 24 * time.Hour

type tokenCreated struct {
	Token string           `json:"token"` // shown once
	Info  *koshin.APIToken `json:"info"`
}

// createToken issues an API token for scripts and CI. Only a person in an
// interactive session can mint one, so a leaked token cannot breed more.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req tokenRequest
	if err := decodeJSON(w, r, &req, maxSmallBody); err != nil {
		return err
	}
	if strings.HasPrefix(req.Name, sessionNamePrefix) {
		return koshin.Errorf(koshin.EINVALID, "Token names must not start with %q.", sessionNamePrefix)
	}
	now := s.now()
	t := &koshin.APIToken{Operator: p.Operator, Name: req.Name, Role: req.Role, ExpiresAt: req.ExpiresAt}
	if t.Role == "" {
		t.Role = p.Role
	}
	if t.ExpiresAt.IsZero() {
		t.ExpiresAt = now.Add(DefaultTokenLifetime)
	}
	secret := apiTokenPrefix + koshin.NewSecret()
	t.Hash = koshin.HashSecret(secret)
	err := s.Store.CreateAPIToken(r.Context(), t)
	s.audit(r.Context(), p.String(), "token.create", "operator:"+p.Operator, err, "token "+req.Name+" role "+string(t.Role))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tokenCreated{Token: secret, Info: t})
	return nil
}

// deleteOwnToken revokes one of the caller's own tokens or sessions.
func (s *Server) deleteOwnToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.deleteToken(w, r, p, p.Operator)
}

// deleteOperatorToken lets an administrator revoke anyone's token.
func (s *Server) deleteOperatorToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.deleteToken(w, r, p, r.PathValue("name"))
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *principal, owner string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ts, err := s.Store.FindAPITokens(r.Context(), owner)
	if err != nil {
		return err
	}
	found := false
	for _, t := range ts {
		found = found || t.ID == id
	}
	if !found {
		return koshin.Errorf(koshin.ENOTFOUND, "Token %d of %s not found.", id, owner)
	}
	err = s.Store.DeleteAPIToken(r.Context(), id)
	s.audit(r.Context(), p.String(), "token.delete", "token:"+strconv.FormatInt(id, 10)+":"+owner, err, "")
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
