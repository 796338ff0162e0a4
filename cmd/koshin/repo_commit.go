package main

import (
	"errors"
	"fmt"

	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

type onlineFlags struct{ snapshot, timestamp string }

func (f *onlineFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.snapshot, "snapshot-key", "", "snapshot key `REF` (default: the one this workspace recorded)")
	c.Flags().StringVar(&f.timestamp, "timestamp-key", "", "timestamp key `REF` (default: the one this workspace recorded)")
}

func newRepoCommitCmd(m *Main) *cobra.Command {
	var f onlineFlags
	c := &cobra.Command{
		Use:   "commit",
		Short: "Promote fully signed staged roles and sign a new snapshot and timestamp",
		Long: `Promote every staged role that has reached its threshold to the signed
state, and sign a new snapshot and timestamp over it with the online keys.
Everything is verified the way a device would verify it before anything is
written, and the switch to the new state is a single atomic file replace.
'koshin repo publish' does this too before publishing.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return m.withRepo(func(r *repo.Repo) error { return m.commit(r, f, false) })
		},
	}
	f.add(c)
	return c
}

// commit promotes what is complete; with quiet, having nothing to commit is
// not an error unless the repository was never committed (then the error
// says which signatures are missing).
func (m *Main) commit(r *repo.Repo, f onlineFlags, quiet bool) error {
	quiet = quiet && r.Versions().Root != 0
	if quiet && !anythingComplete(r) {
		return nil
	}
	online, closeAll, err := m.onlineKeys(r, f.snapshot, f.timestamp)
	if err != nil {
		return err
	}
	defer closeAll()
	c, err := r.Commit(m.Now(), online)
	if quiet && errors.Is(err, repo.ErrNothingToCommit) {
		return nil
	}
	if err != nil {
		return err
	}
	v := c.Versions
	fmt.Fprintf(m.Stdout, "committed: root %d, targets %d, snapshot %d, timestamp %d\n", v.Root, v.Targets, v.Snapshot, v.Timestamp)
	return nil
}

func anythingComplete(r *repo.Repo) bool {
	for _, role := range []string{"root", "targets"} {
		if s, err := r.SignatureStatus(role); err == nil && s.Complete() {
			return true
		}
	}
	return false
}

func newRepoTimestampCmd(m *Main) *cobra.Command {
	var f onlineFlags
	var publishDir string
	c := &cobra.Command{
		Use:   "timestamp",
		Short: "Re-sign snapshot and timestamp with fresh expiries (run daily from cron)",
		Long: `Re-sign snapshot and timestamp with new versions and expiries, then publish
(with --dir) or leave publishing to 'koshin repo publish'. Devices refuse
expired metadata, so a repository must be timestamped well within the
timestamp expiry (default 1 day): that bound is how long a device can be held
on an old, possibly revoked state (CCDS UPC05).`,
		Example: `  # crontab: every 6 hours
  0 */6 * * *  koshin repo timestamp --repo /srv/koshin/repo --dir /srv/www/tuf`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return m.withRepo(func(r *repo.Repo) error {
				online, closeAll, err := m.onlineKeys(r, f.snapshot, f.timestamp)
				if err != nil {
					return err
				}
				defer closeAll()
				if err := r.Timestamp(m.Now(), online.Snapshot, online.Timestamp); err != nil {
					return err
				}
				v := r.Versions()
				fmt.Fprintf(m.Stdout, "timestamped: snapshot %d, timestamp %d\n", v.Snapshot, v.Timestamp)
				if publishDir == "" {
					return nil
				}
				return m.publish(r, publishDir)
			})
		},
	}
	f.add(c)
	c.Flags().StringVar(&publishDir, "dir", "", "also publish to `OUT`")
	return c
}
