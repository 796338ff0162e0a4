// Package s3 is a koshin.BlobStore on S3-compatible object storage
// (AWS S3, MinIO, Ceph RGW, versitygw, GCS in interoperability mode …),
// through github.com/minio/minio-go/v7. It is the blob store for scale-out:
// every server replica sees the same objects, and devices download
// payloads straight from the bucket or a CDN in front of it through short
// presigned URLs (PresignGet), so payload bytes never pass through the API
// servers.
//
// The bucket is untrusted: devices verify every file against signed TUF
// metadata, so whoever controls the bucket, the CDN or the network can
// withhold updates but cannot make a device install anything unsigned
// (docs/s3.md). The credentials this package needs are only the server's
// and the release manager's, and come from the configuration, never from a
// default.
//
// Uploads stream: a blob of known size up to PartSize goes up in one PUT,
// anything larger (or of unknown size) as a multipart upload holding one
// part in memory at a time. An object appears only when its upload
// completes, so readers never see a partial blob.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/koshin-ota/koshin"
)

// Defaults and limits.
const (
	DefaultPartSize   = 16 << 20 // multipart part size: the memory one upload holds
	MinPartSize       = 5 << 20  // S3's smallest part (except the last)
	MaxPartSize       = 5 << 30  // S3's largest part
	DefaultMaxRetries = 3
	MaxPresignTTL     = 7 * 24 * time.Hour // SigV4's longest presigned URL
)

// Config says where the bucket is and how to reach it. cmd/koshin fills it
// from the server configuration and the environment.
type Config struct {
	// Endpoint is the S3 service's base URL: "https://s3.eu-central-1.amazonaws.com",
	// "https://minio.example:9000". Plain http is refused unless the host
	// is a loopback address or AllowHTTP is set.
	Endpoint string
	// AllowHTTP permits a plain-http endpoint on a network address. Requests
	// stay signed, but their content is visible on the wire.
	AllowHTTP bool
	// Region is the bucket's region. Empty means "look it up" (one
	// GetBucketLocation request, which needs that permission); set it.
	Region string
	// Bucket must exist; Check reports if it does not.
	Bucket string
	// Prefix puts every blob under this key prefix ("fleet-a/" stores blob
	// "timestamp.json" as key "fleet-a/timestamp.json"), so several
	// repositories or deployments can share a bucket.
	Prefix string
	// AccessKey and SecretKey are required (there are no anonymous or
	// default credentials); SessionToken is for temporary credentials.
	AccessKey, SecretKey, SessionToken string
	// PathStyle forces path-style requests (endpoint/bucket/key), which
	// most self-hosted servers need. Otherwise minio-go picks virtual-host
	// style for the AWS and other endpoints known to support it.
	PathStyle bool
	// PartSize is the multipart part size (default DefaultPartSize,
	// MinPartSize..MaxPartSize). An upload of known size buffers one part,
	// one of unknown size up to two (the first part is read ahead to see
	// whether a single PUT will do); 10,000 parts bound an upload of
	// unknown size (160 GiB at the default).
	PartSize int64
	// MaxRetries bounds the client's retries of failed requests (default
	// DefaultMaxRetries; 1 means no retry).
	MaxRetries int
	// CDNBaseURL, if set, makes PresignGet return CDNBaseURL + "/" + name
	// instead of a presigned S3 URL: the base URL must serve the bucket's
	// objects under Prefix (a CDN whose origin is the bucket and prefix).
	// The CDN decides who may fetch; see docs/s3.md.
	CDNBaseURL string
	// CacheControl, if set, gives the Cache-Control header stored with
	// each blob (blobpublish.CacheControl sets long lifetimes for
	// versioned TUF files and short ones for timestamp.json).
	CacheControl func(name string) string
	// Transport is the HTTP transport; nil means minio-go's default.
	Transport http.RoundTripper
	// DisableContentSha256 sends uploads with UNSIGNED-PAYLOAD instead of
	// streaming SigV4 chunk signatures. Needed for gofakes3, which keeps
	// the chunk framing in multipart parts; real S3 servers do not need it.
	DisableContentSha256 bool
}

// Store is a BlobStore and BlobPresigner on one bucket. It is safe for
// concurrent use.
type Store struct {
	client *minio.Client
	cfg    Config
	cdn    *url.URL
}

var (
	_ koshin.BlobStore     = (*Store)(nil)
	_ koshin.BlobPresigner = (*Store)(nil)
)

// Open checks cfg and returns a store. It sends no request; call Check to
// find out whether the bucket is reachable with the credentials.
func Open(cfg Config) (*Store, error) {
	endpoint, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	opts := &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:     endpoint.Scheme == "https",
		Region:     cfg.Region,
		Transport:  cfg.Transport,
		MaxRetries: cfg.MaxRetries,
	}
	if cfg.PathStyle {
		opts.BucketLookup = minio.BucketLookupPath
	}
	client, err := minio.New(endpoint.Host, opts)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	s := &Store{client: client, cfg: cfg}
	if cfg.CDNBaseURL != "" {
		s.cdn, _ = url.Parse(strings.TrimSuffix(cfg.CDNBaseURL, "/"))
	}
	return s, nil
}

func (cfg *Config) validate() (*url.URL, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("s3: endpoint %q must be a base URL like https://s3.example.com", cfg.Endpoint)
	}
	if u.Scheme == "http" && !cfg.AllowHTTP && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("s3: endpoint %s uses plain http; use https (or allow http explicitly)", cfg.Endpoint)
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("s3: bucket %q: %w", cfg.Bucket, err)
	}
	if err := koshin.ValidateBlobPrefix(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("s3: prefix: %w", err)
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("s3: an access key and a secret key are required; koshin has no default credentials")
	}
	if cfg.PartSize != 0 && (cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize) {
		return nil, fmt.Errorf("s3: part size %d is outside %d..%d", cfg.PartSize, MinPartSize, MaxPartSize)
	}
	if cfg.MaxRetries < 0 {
		return nil, fmt.Errorf("s3: max retries %d is negative", cfg.MaxRetries)
	}
	if cfg.CDNBaseURL != "" {
		c, err := url.Parse(cfg.CDNBaseURL)
		if err != nil || (c.Scheme != "https" && c.Scheme != "http") || c.Host == "" || c.RawQuery != "" || c.Fragment != "" {
			return nil, fmt.Errorf("s3: CDN base URL %q must be an http(s) URL without query", cfg.CDNBaseURL)
		}
	}
	return u, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// Prefix returns the key prefix ("" or ending in '/').
func (s *Store) Prefix() string { return s.cfg.Prefix }

// Check verifies that the bucket exists and the credentials are accepted,
// for a readiness check or at start-up. It lists at most one key: a
// HeadBucket would be cheaper, but its answer has no body, and some
// servers answer an unknown access key with a bare 404 that is
// indistinguishable from a missing bucket.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := minio.ListObjectsOptions{Prefix: s.cfg.Prefix, Recursive: true, MaxKeys: 1}
	for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, opts) {
		if obj.Err != nil {
			return s.fail("check bucket", "", obj.Err)
		}
		break
	}
	return nil
}

func (s *Store) key(name string) string { return s.cfg.Prefix + name }

// Put implements koshin.BlobStore.
func (s *Store) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := koshin.ValidateBlobName(name); err != nil {
		return err
	}
	if size < -1 {
		return koshin.Errorf(koshin.EINVALID, "Blob %q: size %d is neither a length nor -1 (unknown).", name, size)
	}
	opts := minio.PutObjectOptions{
		ContentType:          contentType(name),
		PartSize:             uint64(s.cfg.PartSize),
		DisableContentSha256: s.cfg.DisableContentSha256,
		// One part in flight: memory stays at one part per upload.
		NumThreads: 1,
	}
	if s.cfg.CacheControl != nil {
		opts.CacheControl = s.cfg.CacheControl(name)
	}
	var src io.Reader = streamReader{r}
	if size >= 0 {
		src = &exactReader{r: r, remaining: size}
	} else {
		// A stream of unknown size that fits in one part goes up in one
		// PUT: a multipart upload of one empty or short part is slower,
		// and some servers refuse an empty part.
		head, err := io.ReadAll(io.LimitReader(src, s.cfg.PartSize+1))
		if err != nil {
			return s.putError(name, size, err)
		}
		if int64(len(head)) <= s.cfg.PartSize {
			size = int64(len(head))
			src = &exactReader{r: bytes.NewReader(head), remaining: size}
		} else {
			src = io.MultiReader(bytes.NewReader(head), src)
		}
	}
	if size == 0 {
		// An empty PUT may send no body at all, so nobody would read r:
		// check here that it is empty.
		if _, err := src.Read(make([]byte, 1)); err != io.EOF {
			return s.putError(name, size, err)
		}
	}
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, s.key(name), src, size, opts)
	if err != nil {
		return s.putError(name, size, err)
	}
	return nil
}

func (s *Store) putError(name string, size int64, err error) error {
	var le *lengthError
	switch {
	case errors.As(err, &le):
		return koshin.Errorf(koshin.EINVALID, "Blob %q: %s.", name, le.msg(size))
	case errors.Is(err, errUnexpectedEnd):
		return koshin.Errorf(koshin.EINVALID, "Blob %q: the content ended before the announced %d bytes.", name, size)
	}
	var rerr *readError
	if errors.As(err, &rerr) && !errors.Is(err, context.Canceled) {
		return &koshin.Error{Code: koshin.EINVALID, Message: fmt.Sprintf("Blob %q: reading the content failed.", name), Err: err}
	}
	return s.fail("put", name, err)
}

// contentType labels metadata as JSON so browsers and CDNs treat it as
// such; everything else is opaque bytes.
func contentType(name string) string {
	if path.Ext(name) == ".json" {
		return "application/json"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" && !strings.HasPrefix(t, "text/html") {
		return t
	}
	return "application/octet-stream"
}

// Open implements koshin.BlobStore with a ranged GET.
func (s *Store) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, int64, error) {
	if err := koshin.ValidateBlobName(name); err != nil {
		return nil, 0, err
	}
	if offset < 0 {
		return nil, 0, koshin.Errorf(koshin.EINVALID, "Blob %q: offset %d is negative.", name, offset)
	}
	var opts minio.GetObjectOptions
	if offset > 0 {
		if err := opts.SetRange(offset, 0); err != nil {
			return nil, 0, koshin.Errorf(koshin.EINVALID, "Blob %q: offset %d: %v.", name, offset, err)
		}
	}
	body, info, hdr, err := minio.Core{Client: s.client}.GetObject(ctx, s.cfg.Bucket, s.key(name), opts)
	if err != nil {
		if offset > 0 && minio.ToErrorResponse(err).Code == minio.InvalidRange {
			return s.openAtEnd(ctx, name, offset)
		}
		return nil, 0, s.fail("get", name, err)
	}
	size, err := totalSize(offset, info.Size, hdr)
	if err != nil {
		body.Close()
		return nil, 0, koshin.Internal(fmt.Errorf("s3 get %s: %w", s.key(name), err))
	}
	return body, size, nil
}

// openAtEnd answers a Range the server found unsatisfiable: reading from
// exactly the end is an empty read, anything further is the caller's error.
func (s *Store) openAtEnd(ctx context.Context, name string, offset int64) (io.ReadCloser, int64, error) {
	bi, err := s.Stat(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	if offset != bi.Size {
		return nil, 0, koshin.Errorf(koshin.EINVALID, "Blob %q: offset %d is outside its %d bytes.", name, offset, bi.Size)
	}
	return io.NopCloser(strings.NewReader("")), bi.Size, nil
}

// totalSize is the object's size: Content-Length for a whole object, the
// total of Content-Range ("bytes 100-199/200") for a range.
func totalSize(offset, length int64, hdr http.Header) (int64, error) {
	if offset == 0 {
		if length < 0 {
			return 0, errors.New("response without Content-Length")
		}
		return length, nil
	}
	cr := hdr.Get("Content-Range")
	rest, ok := strings.CutPrefix(cr, "bytes ")
	span, total, ok2 := strings.Cut(rest, "/")
	start, _, ok3 := strings.Cut(span, "-")
	if !ok || !ok2 || !ok3 {
		return 0, fmt.Errorf("ranged response with Content-Range %q", cr)
	}
	n, err := strconv.ParseInt(total, 10, 64)
	s, err2 := strconv.ParseInt(start, 10, 64)
	if err != nil || err2 != nil || s != offset || n < offset {
		return 0, fmt.Errorf("ranged response from %d with Content-Range %q", offset, cr)
	}
	return n, nil
}

// Stat implements koshin.BlobStore with a HEAD request. A HEAD answer has
// no body, so a 404 is confirmed with a GET, whose error body tells a
// missing object from refused credentials (some servers answer HEAD with
// an unknown access key with a bare 404).
func (s *Store) Stat(ctx context.Context, name string) (koshin.BlobInfo, error) {
	if err := koshin.ValidateBlobName(name); err != nil {
		return koshin.BlobInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(name), minio.StatObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
		var body io.ReadCloser
		body, info, _, err = minio.Core{Client: s.client}.GetObject(ctx, s.cfg.Bucket, s.key(name), minio.GetObjectOptions{})
		if err == nil {
			body.Close()
		}
	}
	if err != nil {
		return koshin.BlobInfo{}, s.fail("stat", name, err)
	}
	return koshin.BlobInfo{Name: name, Size: info.Size, ModTime: info.LastModified}, nil
}

// Delete implements koshin.BlobStore. S3 answers success for a missing key.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := koshin.ValidateBlobName(name); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.key(name), minio.RemoveObjectOptions{}); err != nil {
		if code := minio.ToErrorResponse(err).Code; code == minio.NoSuchKey || code == "NotFound" {
			return nil
		}
		return s.fail("delete", name, err)
	}
	return nil
}

// List implements koshin.BlobStore with ListObjectsV2, which returns keys
// in byte-wise order. Breaking out of the loop stops the listing.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[koshin.BlobInfo, error] {
	return func(yield func(koshin.BlobInfo, error) bool) {
		if err := koshin.ValidateBlobPrefix(prefix); err != nil {
			yield(koshin.BlobInfo{}, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // stops minio-go's listing goroutine on an early break
		opts := minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}
		for obj := range s.client.ListObjects(ctx, s.cfg.Bucket, opts) {
			if obj.Err != nil {
				yield(koshin.BlobInfo{}, s.fail("list", prefix, obj.Err))
				return
			}
			name := strings.TrimPrefix(obj.Key, s.cfg.Prefix)
			if koshin.ValidateBlobName(name) != nil {
				continue // a directory marker or a key another tool wrote
			}
			if !yield(koshin.BlobInfo{Name: name, Size: obj.Size, ModTime: obj.LastModified}, nil) {
				return
			}
		}
	}
}

// PresignGet implements koshin.BlobPresigner: a SigV4 presigned GET URL
// valid for ttl (1 s .. 7 days), or, with a CDN base URL configured, the
// CDN's URL for the blob (ttl is then only checked).
func (s *Store) PresignGet(ctx context.Context, name string, ttl time.Duration) (string, error) {
	if err := koshin.ValidateBlobName(name); err != nil {
		return "", err
	}
	if ttl < time.Second || ttl > MaxPresignTTL {
		return "", koshin.Errorf(koshin.EINVALID, "A download URL must be valid for 1s to %v, not %v.", MaxPresignTTL, ttl)
	}
	if s.cdn != nil {
		return s.cdn.String() + "/" + escapeKey(name), nil
	}
	u, err := s.client.PresignedGetObject(ctx, s.cfg.Bucket, s.key(name), ttl, nil)
	if err != nil {
		return "", s.fail("presign", name, err)
	}
	return u.String(), nil
}

// escapeKey percent-encodes everything but unreserved characters and '/'.
// '+' is encoded too: some S3 front ends read a literal '+' in a path as a
// space.
func escapeKey(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
