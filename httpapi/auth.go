package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/koshin-ota/koshin"
)

// Bearer credentials carry a kind prefix. The prefix is part of the hashed
// secret, so an API token cannot be presented as a session or the other
// way round, and secret scanners can recognise leaked ones.
const (
	sessionPrefix     = "ksess_"
	apiTokenPrefix    = "ktok_"
	sessionNamePrefix = "session-"
)

// principal is the authenticated caller of a management request.
type principal struct {
	Operator string
	Role     koshin.Role
	TokenID  int64
	// Session is true for an interactive login, false for an API token.
	Session bool
}

// String is the audit log's name for the caller (CCDS STS14).
func (p *principal) String() string {
	if p.Session {
		return "operator:" + p.Operator
	}
	return "token:" + strconv.FormatInt(p.TokenID, 10) + ":" + p.Operator
}

// authenticate resolves the Authorization: Bearer header. Every failure
// looks the same to the caller.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > koshin.MaxSecretLen {
		return nil, errUnauthorized
	}
	t, err := s.Store.FindAPITokenByHash(r.Context(), koshin.HashSecret(token), s.now())
	if koshin.ErrorCode(err) == koshin.EUNAUTHORIZED || koshin.ErrorCode(err) == koshin.ENOTFOUND {
		return nil, errUnauthorized
	} else if err != nil {
		return nil, err
	}
	session := strings.HasPrefix(token, sessionPrefix) && strings.HasPrefix(t.Name, sessionNamePrefix)
	return &principal{Operator: t.Operator, Role: t.Role, TokenID: t.ID, Session: session}, nil
}

// guard authenticates and authorises a request against its route's entry
// in the table before the handler runs: the single place where roles are
// checked (CCDS STS05, EN 303 645 5.5-5).
func (s *Server) guard(rt route) http.Handler {
	h := rt.handler(s)
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if rt.Public {
			return h(w, r, nil)
		}
		p, err := s.authenticate(r)
		if err != nil {
			s.Metrics.reject(apiManagement, "unauthenticated")
			return err
		}
		if !slices.Contains(rt.Roles, p.Role) || rt.Session && !p.Session {
			s.Metrics.reject(apiManagement, "forbidden")
			if r.Method != http.MethodGet {
				s.audit(r.Context(), p.String(), "access.denied", rt.Method+" "+rt.Path, errForbidden, "")
			}
			if rt.Session && !p.Session && slices.Contains(rt.Roles, p.Role) {
				return koshin.Errorf(koshin.EFORBIDDEN, "This needs an interactive login session, not an API token.")
			}
			return errForbidden
		}
		return h(w, r, p)
	})
}
