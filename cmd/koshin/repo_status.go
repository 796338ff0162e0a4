package main

import (
	"fmt"

	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

func newRepoStatusCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show what is staged for signing compared with what is signed",
		Long: `Show the signed versions and expiries, and for each staged role its
signatures against its threshold and every change signing it would make:
keys and thresholds added or removed, targets added or revoked, floors
raised, version and expiry. Warns about expiries that are close.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return m.withRepo(func(r *repo.Repo) error {
				st, err := r.Status()
				if err != nil {
					return err
				}
				fmt.Fprint(m.Stdout, st.String())
				return nil
			})
		},
	}
}

func newRepoStageCmd(m *Main) *cobra.Command {
	var role string
	c := &cobra.Command{
		Use:   "stage --role root|targets",
		Short: "Stage a new version of root or targets unchanged, to renew its expiry",
		Long: `Stage the next version of root or targets with no other change and a fresh
expiry, to be signed like any other change. Do this well before the signed
version expires (koshin repo status warns), or to re-sign targets with new
keys after a rotation.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return m.withRepo(func(r *repo.Repo) error {
				if err := r.Stage(role); err != nil {
					return err
				}
				return m.printSignatures(r, role)
			})
		},
	}
	c.Flags().StringVar(&role, "role", "", "root or targets (required)")
	c.MarkFlagRequired("role")
	return c
}

func newRepoDiscardCmd(m *Main) *cobra.Command {
	var role string
	c := &cobra.Command{
		Use:   "discard --role root|targets",
		Short: "Drop the staged version of root or targets and its signatures",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return m.withRepo(func(r *repo.Repo) error {
				if err := r.Discard(role); err != nil {
					return err
				}
				fmt.Fprintf(m.Stdout, "discarded the staged %s\n", role)
				return nil
			})
		},
	}
	c.Flags().StringVar(&role, "role", "", "root or targets (required)")
	c.MarkFlagRequired("role")
	return c
}
