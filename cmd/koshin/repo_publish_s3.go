package main

import (
	"fmt"

	"github.com/koshin-ota/koshin/blobpublish"
	"github.com/koshin-ota/koshin/s3"
	"github.com/spf13/cobra"
)

// Environment variables with the S3 credentials: never flags, so that the
// secret stays out of shell history and process listings.
const (
	envS3AccessKey    = "KOSHIN_S3_ACCESS_KEY"
	envS3SecretKey    = "KOSHIN_S3_SECRET_KEY"
	envS3SessionToken = "KOSHIN_S3_SESSION_TOKEN"
)

// newRepoPublishS3Cmd is `koshin repo publish-s3`. It is a subcommand of
// `koshin repo` (listed in newRepoCmd), separate from `repo publish`
// because it needs no signing workspace: the directory can be carried from
// an offline signing machine to one that holds upload credentials.
func newRepoPublishS3Cmd(m *Main) *cobra.Command {
	var f struct {
		dir, bucket, endpoint, prefix, region string
		pathStyle, allowHTTP                  bool
	}
	c := &cobra.Command{
		Use:   "publish-s3 --dir DIR --bucket BUCKET --endpoint URL [--prefix P]",
		Short: "Upload a published repository to an S3 bucket, timestamp.json last",
		Long: `Upload the directory that 'koshin repo publish --dir DIR' wrote to an
S3-compatible bucket, so that devices download metadata and payloads from the
bucket or a CDN in front of it (docs/s3.md).

Payloads and versioned metadata go up first and timestamp.json last, so a
device reading during the upload sees the old repository or the new one,
never a mix. Files already in the bucket are skipped; a versioned file or
payload that is there with other content is an error (published versions
never change). Uploading again is harmless, and finishes an interrupted
upload.

Credentials come from the environment, never from flags:
  KOSHIN_S3_ACCESS_KEY, KOSHIN_S3_SECRET_KEY (required),
  KOSHIN_S3_SESSION_TOKEN (temporary credentials)`,
		Example: `  koshin repo publish --repo ./release-repo --dir ./pub
  KOSHIN_S3_ACCESS_KEY=… KOSHIN_S3_SECRET_KEY=… \
    koshin repo publish-s3 --dir ./pub --endpoint https://s3.eu-central-1.amazonaws.com \
      --region eu-central-1 --bucket acme-updates --prefix image/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			access, secret := m.Getenv(envS3AccessKey), m.Getenv(envS3SecretKey)
			if access == "" || secret == "" {
				return usagef("set %s and %s to the bucket's upload credentials", envS3AccessKey, envS3SecretKey)
			}
			store, err := s3.Open(s3.Config{
				Endpoint: f.endpoint, AllowHTTP: f.allowHTTP, Region: f.region, Bucket: f.bucket, Prefix: f.prefix,
				AccessKey: access, SecretKey: secret, SessionToken: m.Getenv(envS3SessionToken),
				PathStyle: f.pathStyle, CacheControl: blobpublish.CacheControl,
			})
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			if err := store.Check(ctx); err != nil {
				return err
			}
			res, err := blobpublish.Dir(ctx, store, f.dir, "", blobpublish.Options{
				Progress: func(name string, size int64, uploaded bool) {
					if uploaded {
						fmt.Fprintf(m.Stdout, "uploaded %s (%d bytes)\n", name, size)
					}
				},
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "published %d files (%d bytes), %d already present, to s3://%s/%s\n",
				res.Uploaded, res.Bytes, res.Unchanged, store.Bucket(), store.Prefix())
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.dir, "dir", "", "published repository `DIR` (from 'koshin repo publish --dir')")
	fl.StringVar(&f.endpoint, "endpoint", "", "S3 endpoint base `URL`, e.g. https://s3.eu-central-1.amazonaws.com")
	fl.StringVar(&f.bucket, "bucket", "", "bucket `NAME` (must exist)")
	fl.StringVar(&f.prefix, "prefix", "", "key `PREFIX` in the bucket, e.g. image/ (the server's S3 prefix)")
	fl.StringVar(&f.region, "region", "", "bucket `REGION` (empty: ask the server)")
	fl.BoolVar(&f.pathStyle, "path-style", false, "path-style requests (most self-hosted S3 servers)")
	fl.BoolVar(&f.allowHTTP, "allow-http", false, "allow a plain-http endpoint that is not on loopback")
	for _, name := range []string{"dir", "endpoint", "bucket"} {
		c.MarkFlagRequired(name)
	}
	return c
}
