package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

func newRepoKeyCmd(m *Main) *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Authorise, withdraw and list the keys of each role",
		Long: `Keys are authorised per role in root metadata. Adding or removing a key
stages a new root version; it takes effect once that root is signed by the
current root keys' threshold and its own, and committed.`,
	}
	c.AddCommand(newRepoKeyAddCmd(m), newRepoKeyRemoveCmd(m), newRepoKeyListCmd(m), newRepoKeyGenerateCmd(m), newRepoKeyThresholdCmd(m))
	return c
}

func newRepoKeyGenerateCmd(m *Main) *cobra.Command {
	var out, algorithm string
	c := &cobra.Command{
		Use:   "generate --out FILE [--algorithm ed25519|ecdsa-p256]",
		Short: "Create an encrypted key file and its public PEM (needs no repository)",
		Long: `Create a new signing key, written encrypted to FILE (passphrase from
$KOSHIN_PASSPHRASE or the terminal, asked twice) with its public key in
FILE.pub. It needs no repository, so key holders run it on the offline
machine during a key ceremony and hand over only FILE.pub, which the
repository authorises with 'koshin repo key add --public'. An existing file
is never overwritten.`,
		Example: `  koshin repo key generate --out /media/alice/root.key`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := m.generateKeyFile(keys.Algorithm(algorithm), out)
			if err != nil {
				return err
			}
			id, _ := keys.KeyID(s.Public())
			fmt.Fprintf(m.Stdout, "key ID %s\n", id)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "key `FILE` to create (required)")
	c.Flags().StringVar(&algorithm, "algorithm", string(keys.Ed25519), "ed25519 or ecdsa-p256")
	c.MarkFlagRequired("out")
	return c
}

func newRepoKeyRemoveCmd(m *Main) *cobra.Command {
	var role string
	c := &cobra.Command{
		Use:   "remove --role ROLE KEYID",
		Short: "Withdraw a key from a role (revokes it once the new root is committed)",
		Long: `Withdraw a key from a role in the staged root. Use this when a key is lost
or compromised (CCDS UPC05/UPC06): once the new root is committed, anything
the key signs no longer counts. KEYID may be an unambiguous prefix of at
least 8 hex digits.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return m.withRepo(func(r *repo.Repo) error {
				id, err := resolveKeyID(r, role, args[0])
				if err != nil {
					return err
				}
				if err := r.RemoveKey(role, id); err != nil {
					return err
				}
				fmt.Fprintf(m.Stdout, "removed %s key %s from the staged root\n", role, id)
				return m.printSignatures(r, "root")
			})
		},
	}
	c.Flags().StringVar(&role, "role", "", "role to remove the key from (required)")
	c.MarkFlagRequired("role")
	return c
}

// resolveKeyID expands a key ID prefix among role's keys.
func resolveKeyID(r *repo.Repo, role, prefix string) (string, error) {
	if len(prefix) < 8 {
		return "", usagef("key ID prefix %q is shorter than 8 digits", prefix)
	}
	var match []string
	for _, k := range r.Keys() {
		if k.Role == role && strings.HasPrefix(k.KeyID, prefix) {
			match = append(match, k.KeyID)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("%w: no %s key %s", repo.ErrUnknown, role, prefix)
	case 1:
		return match[0], nil
	}
	return "", usagef("key ID prefix %s matches %d keys", prefix, len(match))
}

func newRepoKeyListCmd(m *Main) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List each role's keys and threshold (as the staged root, else the signed root, has them)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return m.withRepo(func(r *repo.Repo) error {
				w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ROLE\tTHRESHOLD\tKEY ID\tALGORITHM\tREF")
				for _, k := range r.Keys() {
					ref := k.Ref
					if ref == "" {
						ref = "(offline)"
					}
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", k.Role, r.Threshold(k.Role), k.KeyID, k.Algorithm, ref)
				}
				return w.Flush()
			})
		},
	}
}

func newRepoKeyThresholdCmd(m *Main) *cobra.Command {
	var role string
	c := &cobra.Command{
		Use:   "threshold --role ROLE N",
		Short: "Set how many distinct keys must sign a role (in the staged root)",
		Long: `Set a role's threshold in the staged root. It may exceed the current number
of keys while keys are still being added; the root cannot be signed until
the keys can meet every threshold. Snapshot and timestamp stay at 1.`,
		Example: `  koshin repo key threshold --role targets 2`,
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return usagef("threshold %q is not a number", args[0])
			}
			return m.withRepo(func(r *repo.Repo) error {
				if err := r.SetThreshold(role, n); err != nil {
					return err
				}
				fmt.Fprintf(m.Stdout, "%s threshold is %d in the staged root\n", role, n)
				return m.printSignatures(r, "root")
			})
		},
	}
	c.Flags().StringVar(&role, "role", "", "role (required)")
	c.MarkFlagRequired("role")
	return c
}
