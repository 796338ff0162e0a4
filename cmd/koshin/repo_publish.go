package main

import (
	"fmt"

	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

func newRepoPublishCmd(m *Main) *cobra.Command {
	var f onlineFlags
	var dir string
	var noCommit bool
	c := &cobra.Command{
		Use:   "publish --dir OUT",
		Short: "Commit fully signed staged roles and write the repository for serving",
		Long: `Commit every staged role that has reached its threshold (like 'koshin repo
commit'), then write the signed repository to OUT in TUF's consistent-
snapshot layout, ready for a web server, S3 bucket, CDN or mirror:

  OUT/N.root.json          every root version
  OUT/root.json            the latest root (for provisioning devices)
  OUT/N.targets.json       current targets
  OUT/N.snapshot.json      current snapshot
  OUT/targets/SHA256.NAME  payloads (hard links into the workspace when possible)
  OUT/timestamp.json       written last

Files are only added, never changed, and timestamp.json is replaced last, so
readers see the old or the new repository, never a mix. Publishing again is
harmless.`,
		Example: `  koshin repo publish --repo ./release-repo --dir /srv/www/tuf`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return m.withRepo(func(r *repo.Repo) error {
				if !noCommit {
					if err := m.commit(r, f, true); err != nil {
						return err
					}
				}
				return m.publish(r, dir)
			})
		},
	}
	f.add(c)
	c.Flags().StringVar(&dir, "dir", "", "output directory `OUT` (required)")
	c.Flags().BoolVar(&noCommit, "no-commit", false, "publish the signed state as it is, without committing")
	c.MarkFlagRequired("dir")
	return c
}

func (m *Main) publish(r *repo.Repo, dir string) error {
	if err := r.Publish(dir); err != nil {
		return err
	}
	v := r.Versions()
	fmt.Fprintf(m.Stdout, "published root %d, targets %d, snapshot %d, timestamp %d to %s\n", v.Root, v.Targets, v.Snapshot, v.Timestamp, dir)
	return nil
}
