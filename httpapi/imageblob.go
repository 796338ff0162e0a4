package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin"
)

// blobReadTimeout bounds one metadata read from a blob store.
const blobReadTimeout = time.Minute

// readBlob reads a metadata file from the blob store. A missing file is
// fs.ErrNotExist, as from the directory, so that the root walk stops there.
func (ir *ImageRepo) readBlob(name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), blobReadTimeout)
	defer cancel()
	return ir.readBlobCtx(ctx, name)
}

func (ir *ImageRepo) readBlobCtx(ctx context.Context, name string) ([]byte, error) {
	rc, size, err := ir.Blobs.Open(ctx, name, 0)
	if koshin.ErrorCode(err) == koshin.ENOTFOUND {
		return nil, fs.ErrNotExist
	} else if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxMetaFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxMetaFile)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxMetaFile+1))
	if err == nil && len(b) > maxMetaFile {
		err = fmt.Errorf("%s is larger than %d bytes", name, maxMetaFile)
	}
	return b, err
}

// serveBlob sends one file of a repository kept in a blob store. Metadata
// is small and read whole (so Range and conditional requests work as for a
// file). A payload is answered with a redirect to a short-lived download
// URL when the store presigns (the bytes then bypass the server: S3 or a
// CDN), and otherwise streamed from the store with HTTP Range for resume.
func (ir *ImageRepo) serveBlob(w http.ResponseWriter, r *http.Request, name, ctype string) error {
	if !strings.HasPrefix(name, "targets/") {
		b, err := ir.readBlobCtx(r.Context(), name)
		if err != nil {
			return blobError(err)
		}
		serveBytes(w, r, b, ctype)
		return nil
	}
	if ir.Presign != nil {
		u, err := ir.Presign.PresignGet(r.Context(), name, ir.presignTTL())
		if err != nil {
			return blobError(err)
		}
		// Every request gets a fresh URL, so a cached redirect must never
		// outlive the URL it points to.
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusFound)
		return nil
	}
	return ir.streamBlob(w, r, name, ctype)
}

// DefaultPresignTTL is how long a payload download URL is valid when
// ImageRepo.PresignTTL is zero. A device asks the server again for every
// request (a resume included), so the URL only needs to outlive the time
// between the redirect and the first byte.
const DefaultPresignTTL = 10 * time.Minute

func (ir *ImageRepo) presignTTL() time.Duration {
	if ir.PresignTTL > 0 {
		return ir.PresignTTL
	}
	return DefaultPresignTTL
}

// streamBlob streams a payload from the store. It honours one range of
// the forms devices send ("bytes=N-" to resume, "bytes=N-M"); any other
// Range header is ignored and the whole payload sent, as RFC 9110 allows.
func (ir *ImageRepo) streamBlob(w http.ResponseWriter, r *http.Request, name, ctype string) error {
	first, last, ranged := parseRange(r.Header.Get("Range"))
	rc, size, err := ir.Blobs.Open(r.Context(), name, first)
	if koshin.ErrorCode(err) == koshin.EINVALID && ranged {
		// Past the end: say how long the payload is, so the client can
		// tell a complete download from a changed one.
		info, serr := ir.Blobs.Stat(r.Context(), name)
		if serr != nil {
			return blobError(serr)
		}
		return unsatisfiable(w, info.Size)
	} else if err != nil {
		return blobError(err)
	}
	defer rc.Close()
	if last < 0 || last >= size {
		last = size - 1
	}
	n := last - first + 1
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(max(n, 0), 10))
	status := http.StatusOK
	if ranged {
		if first >= size {
			h.Del("Content-Length")
			return unsatisfiable(w, size)
		}
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead && n > 0 {
		// The status is sent: a failure now can only cut the body short,
		// which the device's verifier notices (length and hash are signed).
		io.Copy(w, io.LimitReader(rc, n))
	}
	return nil
}

func unsatisfiable(w http.ResponseWriter, size int64) error {
	w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
	http.Error(w, "requested range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
	return nil
}

// parseRange reads "bytes=N-" or "bytes=N-M". last is -1 for an open end;
// ranged is false for no header or a form not handled here.
func parseRange(h string) (first, last int64, ranged bool) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, -1, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok || a == "" {
		return 0, -1, false
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 {
		return 0, -1, false
	}
	if b == "" {
		return first, -1, true
	}
	last, err = strconv.ParseInt(b, 10, 64)
	if err != nil || last < first {
		return 0, -1, false
	}
	return first, last, true
}

// blobError answers a store failure: a missing file is 404 like any
// unknown name; an unreachable store is 503 (devices retry later); the
// rest is an internal error, logged with its cause by the handler.
func blobError(err error) error {
	switch koshin.ErrorCode(err) {
	case koshin.ENOTFOUND:
		return errNotFound
	case koshin.EUNAVAILABLE:
		return koshin.Errorf(koshin.EUNAVAILABLE, "Update storage is unavailable; retry later.")
	}
	if errors.Is(err, fs.ErrNotExist) {
		return errNotFound
	}
	return koshin.Internal(err)
}
