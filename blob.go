package koshin

import (
	"context"
	"io"
	"iter"
	"strings"
	"time"
)

// Limits of blob names. A name is a key in an S3 bucket (at most 1024
// bytes, prefix included) and a relative path under a local directory (at
// most 255 bytes per component on common file systems).
const (
	MaxBlobNameLen    = 900 // leaves room for a deployment's key prefix
	MaxBlobSegmentLen = 255
)

// BlobStore holds the files the server hands out by name: published
// image-repository metadata and payloads (TUF consistent-snapshot layout,
// N.root.json, targets/SHA256.NAME …) and other release artefacts.
// Package fileblob keeps them in a local directory (the default), package
// s3 in an S3-compatible bucket (scale-out). The store is untrusted: a
// device verifies every byte it downloads against signed metadata, so a
// store, a CDN or a mirror in front of it can withhold files but cannot
// make a device install anything unsigned.
//
// Names are checked with ValidateBlobName; an invalid name is EINVALID.
// Errors are *Error values: ENOTFOUND for a missing blob, EINVALID for bad
// arguments, EUNAVAILABLE when the backend cannot be reached or is
// overloaded (retry later), EINTERNAL for everything else, including a
// backend that refuses the configured credentials (a deployment fault that
// must be logged, not retried by devices). Messages are safe to show;
// causes stay in Err for logs.
type BlobStore interface {
	// Put stores the content of r under name, replacing any blob of that
	// name. Readers see the old or the new content, never a mix or a
	// prefix, also when Put fails or the process dies midway. size is the
	// exact length, or -1 if unknown; a reader that ends early or goes on
	// past size fails with EINVALID and stores nothing. Put streams: large
	// blobs are never held in memory as a whole.
	Put(ctx context.Context, name string, r io.Reader, size int64) error

	// Open returns the content of name from byte offset on (HTTP Range
	// semantics, for resumed downloads) and the blob's total size. offset
	// equal to the size yields an empty reader; a negative offset or one
	// past the end is EINVALID. The caller closes the reader.
	Open(ctx context.Context, name string, offset int64) (io.ReadCloser, int64, error)

	// Stat describes name.
	Stat(ctx context.Context, name string) (BlobInfo, error)

	// Delete removes name. Deleting a missing blob is not an error, so a
	// retried clean-up succeeds.
	Delete(ctx context.Context, name string) error

	// List yields the blobs whose names start with prefix (a plain string
	// prefix, not a directory: "targets/ab" matches "targets/abc.img") in
	// byte-wise ascending name order, as S3 lists keys. Objects whose names
	// ValidateBlobName rejects (for example ones put into a bucket by other
	// tools) are skipped. After an error the sequence ends. prefix is
	// checked with ValidateBlobPrefix.
	List(ctx context.Context, prefix string) iter.Seq2[BlobInfo, error]
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// BlobPresigner is implemented by blob stores that can hand a client a URL
// to download a blob directly, so payload bytes bypass the API servers
// (the s3 package: a presigned GET URL, or a CDN URL when a CDN base URL
// is configured). The URL supports HTTP Range. Anyone holding it can read
// the blob until it expires, which is acceptable because what is served is
// signed, and confidential payloads are encrypted (docs/s3.md).
type BlobPresigner interface {
	// PresignGet returns a URL that serves name with GET for about ttl.
	// It does not check that the blob exists (a GET then answers 404).
	PresignGet(ctx context.Context, name string, ttl time.Duration) (string, error)
}

// ValidateBlobName checks a blob name: 1..MaxBlobNameLen bytes of
// '/'-separated segments, each 1..MaxBlobSegmentLen bytes of A-Z a-z 0-9
// . _ + - starting with a letter or digit. So no empty, "." or ".."
// segment, no leading or trailing '/', no backslash, no control or
// non-ASCII bytes: a name is safe as a relative path under a directory, as
// an S3 key and in a URL. Names starting with a dot are kept for the
// stores' own temporary files.
func ValidateBlobName(name string) error {
	if len(name) == 0 || len(name) > MaxBlobNameLen {
		return Errorf(EINVALID, "A blob name must be 1-%d bytes long.", MaxBlobNameLen)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if !validBlobSegment(seg) {
			return Errorf(EINVALID, "Blob name %q: each /-separated part must be 1-%d characters of A-Z a-z 0-9 . _ + - starting with a letter or digit.", printable(name), MaxBlobSegmentLen)
		}
	}
	return nil
}

// ValidateBlobPrefix checks a List prefix: empty, or a blob name that may
// end with '/' or in a partial segment ("targets/", "targets/ab").
func ValidateBlobPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidateBlobName(strings.TrimSuffix(prefix, "/")); err != nil {
		return Errorf(EINVALID, "Blob prefix %q is not a blob name, optionally ending in /.", printable(prefix))
	}
	return nil
}

func validBlobSegment(seg string) bool {
	if len(seg) == 0 || len(seg) > MaxBlobSegmentLen || !isAlnum(seg[0]) {
		return false
	}
	for i := 1; i < len(seg); i++ {
		c := seg[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// printable bounds a rejected name for an error message: short, and with
// control and non-ASCII bytes quoted by %q.
func printable(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
