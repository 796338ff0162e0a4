package httpapi

import "net/http"

// securityTxt serves /.well-known/security.txt (RFC 9116), rendered from
// the product profile's vulnerability disclosure contact (EN 303 645
// 5.2-1): the one place researchers look for where to report. Public, and
// 404 when no profile is configured.
func (s *Server) securityTxt(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.SecurityTxt == nil {
		return errNotFound
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	serveBytes(w, r, s.SecurityTxt(s.now()), "text/plain; charset=utf-8")
	return nil
}
