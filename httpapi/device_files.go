package httpapi

import (
	"bytes"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/koshin-ota/koshin"
)

// File names the device API serves. Anything else is 404 before the file
// system is touched.
var (
	metaName     = regexp.MustCompile(`^(?:[1-9][0-9]{0,15}\.)?(?:root|targets|snapshot|timestamp)\.json$`)
	payloadName  = regexp.MustCompile(`^[0-9a-f]{64}\.[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
	directorName = regexp.MustCompile(`^([1-9][0-9]{0,15})\.root\.json$`)
)

// imageFile serves image-repository metadata from the published directory
// (TUF consistent-snapshot layout). Devices verify everything they fetch,
// so the server only needs to hand out files; it does so to enrolled
// devices only, because the metadata names versions (EN 303 645 5.6-2).
func (s *Server) imageFile(w http.ResponseWriter, r *http.Request, _ *koshin.Device) error {
	name := r.PathValue("file")
	if s.Image == nil || !metaName.MatchString(name) {
		return errNotFound
	}
	return s.Image.serve(w, r, name, "application/json")
}

// targetFile serves a payload, targets/SHA256.NAME, with HTTP Range so an
// interrupted download resumes (EN 303 645 5.9-1).
func (s *Server) targetFile(w http.ResponseWriter, r *http.Request, _ *koshin.Device) error {
	name := r.PathValue("file")
	if s.Image == nil || !payloadName.MatchString(name) {
		return errNotFound
	}
	return s.Image.serve(w, r, "targets/"+name, "application/octet-stream")
}

// directorRoot serves director root N for devices walking the chain
// (CCDS UPC06); a device asks for N+1 until it gets 404.
func (s *Server) directorRoot(w http.ResponseWriter, r *http.Request, _ *koshin.Device) error {
	m := directorName.FindStringSubmatch(r.PathValue("file"))
	if m == nil {
		return errNotFound
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return errNotFound
	}
	raw, err := s.Director.RootVersion(n)
	if err != nil {
		return errNotFound
	}
	serveBytes(w, r, raw, "application/json")
	return nil
}

func serveBytes(w http.ResponseWriter, r *http.Request, b []byte, ctype string) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}
