package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/koshin-ota/koshin"
)

// maxJSONBody bounds management request bodies (EN 303 645 5.13-1); the
// largest legitimate one, a rollout naming 10,000 devices, fits easily.
const maxJSONBody = 1 << 20

// decodeJSON reads a JSON request body into v: Content-Type must be
// application/json (so that a browser form cannot post to the API), the
// body at most limit bytes, exactly one value, no unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if err := requireType(r, "application/json"); err != nil {
		return err
	}
	data, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	return decodeStrict(data, v)
}

// decodeOptionalJSON is decodeJSON for bodies that may be left out.
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := readBody(w, r, maxJSONBody)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return err
	}
	if err := requireType(r, "application/json"); err != nil {
		return err
	}
	return decodeStrict(data, v)
}

func requireType(r *http.Request, want string) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want {
		return koshin.Errorf(koshin.EINVALID, "Content-Type must be %s.", want)
	}
	return nil
}

// readBody reads at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, koshin.Errorf(koshin.EINVALID, "Request body must be at most %d bytes.", limit)
	} else if err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "Request body could not be read.")
	}
	return data, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields and
// explains what is wrong in terms of the request.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return koshin.Errorf(koshin.EINVALID, "Request body must hold exactly one JSON value.")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return koshin.Errorf(koshin.EINVALID, "Request body is not valid JSON (at byte %d).", se.Offset)
	case errors.As(err, &te):
		return koshin.Errorf(koshin.EINVALID, "Field %q must be %s.", te.Field, jsonKind(te.Type.Kind().String()))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return koshin.Errorf(koshin.EINVALID, "Request body is empty or incomplete.")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if len(name) > 66 {
			name = name[:64] + `…"`
		}
		return koshin.Errorf(koshin.EINVALID, "Unknown field %s.", name)
	}
	return koshin.Errorf(koshin.EINVALID, "Request body is malformed: %s.", trimJSONPrefix(err))
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number in range"
}

// trimJSONPrefix keeps encoding/json's explanation without its package
// prefix, and bounds it so that a hostile body cannot echo itself back.
func trimJSONPrefix(err error) string {
	s := strings.TrimPrefix(err.Error(), "json: ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
