package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

func init() { register(newReleaseCmd) }

func newReleaseCmd(m *Main) *cobra.Command {
	c := &cobra.Command{
		Use:   "release",
		Short: "Add, revoke and list releases (targets of the image repository)",
		Long: `A release is a target of the image repository: a payload with signed custom
fields (hardware IDs, component, release counter, channel, security flag and
advisories, support end, SBOM digest). Adding or revoking stages new targets
metadata; sign it with 'koshin repo sign --role targets' and publish.`,
	}
	c.AddCommand(newReleaseAddCmd(m), newReleaseRevokeCmd(m), newReleaseListCmd(m))
	return c
}

func newReleaseRevokeCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Withdraw a release and raise its hardware's release-counter floor",
		Long: `Remove a release from the staged targets and raise the signed
release-counter floor of each of its hardware IDs to its counter + 1, so
devices refuse it even from a stale mirror or cache once they see the new
targets (CCDS UPC05). Floors never go down. Sign targets and publish to make
the revocation effective; the timestamp expiry bounds how long a device can
miss it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return m.withRepo(func(r *repo.Repo) error {
				if err := r.Revoke(args[0]); err != nil {
					return err
				}
				fmt.Fprintf(m.Stdout, "revoked %s in the staged targets\n", args[0])
				return m.printSignatures(r, "targets")
			})
		},
	}
}

func newReleaseListCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List releases, signed and staged, and the release-counter floors",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return m.withRepo(func(r *repo.Repo) error {
				list, err := r.Targets()
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tSTATE\tCOMPONENT\tCOUNTER\tVERSION\tHARDWARE\tSIZE\tFLAGS")
				for _, t := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", t.Name, t.State, t.Custom.Component, t.Custom.ReleaseCounter,
						t.Custom.Version, strings.Join(t.Custom.HardwareIDs, ","), t.Length, flags(t))
				}
				if err := w.Flush(); err != nil {
					return err
				}
				floors, err := r.Floors()
				if err != nil {
					return err
				}
				for _, k := range slices.Sorted(maps.Keys(floors)) {
					hw, comp, _ := trust.SplitFloorKey(k)
					fmt.Fprintf(m.Stdout, "floor %s on %s: release counter >= %d\n", comp, hw, floors[k])
				}
				return nil
			})
		},
	}
}

func flags(t repo.TargetInfo) string {
	var f []string
	if t.Custom.Security {
		f = append(f, "security")
	}
	if t.Custom.Encryption != "" {
		f = append(f, "encrypted")
	}
	f = append(f, t.Custom.Advisories...)
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, ",")
}
