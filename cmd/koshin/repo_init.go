package main

import (
	"fmt"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

func newRepoInitCmd(m *Main) *cobra.Command {
	var channel string
	var thresholds, expiry []string
	c := &cobra.Command{
		Use:   "init --channel release|dev",
		Short: "Create an image repository workspace",
		Long: `Create an image repository workspace in --repo DIR for one channel.

The channel is signed into every root: a device provisioned for production
refuses a dev root, and the repository refuses targets of the other channel
(CCDS UPC03/UPC04). Keep release and dev repositories, and their keys, apart.

Thresholds default to 1 for a quick start; a production root is typically
--threshold root=3 with five root keys held by different people, and targets
2 of 3. Snapshot and timestamp are signed online and keep threshold 1.
Expiry defaults: root 365d, targets 90d, snapshot 7d, timestamp 1d.`,
		Example: `  koshin repo init --repo ./release-repo --channel release --threshold root=3 --threshold targets=2
  koshin repo init --repo ./dev-repo --channel dev --expiry timestamp=6h`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			th, err := parseThresholds(thresholds)
			if err != nil {
				return err
			}
			exp, err := parseExpiry(expiry)
			if err != nil {
				return err
			}
			r, err := repo.Init(m.repoDir, repo.InitOptions{Channel: trust.Channel(channel), Thresholds: th, Expiry: exp, Now: m.Now})
			if err != nil {
				return err
			}
			defer r.Close()
			fmt.Fprintf(m.Stdout, "initialised %s repository in %s\nnext: koshin repo key add --role root|targets|snapshot|timestamp …, then sign root and targets and publish\n", channel, m.repoDir)
			return nil
		},
	}
	c.Flags().StringVar(&channel, "channel", "", "channel this repository serves: release or dev (required)")
	c.Flags().StringArrayVar(&thresholds, "threshold", nil, "signatures a role needs, as `ROLE=N` (repeatable)")
	c.Flags().StringArrayVar(&expiry, "expiry", nil, "lifetime of newly signed versions, as `ROLE=DURATION` like targets=90d or timestamp=6h (repeatable)")
	c.MarkFlagRequired("channel")
	return c
}
