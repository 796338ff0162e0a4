package main

import (
	"crypto"
	"fmt"
	"strings"

	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

func newRepoRotateRootCmd(m *Main) *cobra.Command {
	var keyArgs, thresholds, signWith []string
	c := &cobra.Command{
		Use:   "rotate-root [--keys ROLE=KEY[,KEY…]]… [--threshold ROLE=N]… [--key REF]…",
		Short: "Stage a new root with new keys or thresholds, and sign it",
		Long: `Stage root N+1 replacing the keys and/or thresholds of the roles named, and
sign it with each --key. Root N+1 needs a threshold of root N's root keys
(the old key holders approve the hand-over) and a threshold of its own (the
new ones prove they hold their keys); collect the rest with 'koshin repo sign'
or the offline flow, then publish. Every root version stays published so
devices walk the chain (CCDS UPC06/UPC07; docs/trust.md has the runbook).

Each KEY is a public key PEM file (for keys held elsewhere) or a key ref.
When the targets keys change, also stage and sign targets with the new keys
('koshin repo stage --role targets'); they are committed together.`,
		Example: `  koshin repo rotate-root --keys root=bob.pem,carol.pem,dave.pem --threshold root=2 --key alice-root.key
  koshin repo rotate-root --keys timestamp=keys/timestamp-2.key --key root.key`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			spec, err := rotationSpec(keyArgs, thresholds)
			if err != nil {
				return err
			}
			return m.withRepo(func(r *repo.Repo) error {
				signers, closeAll, err := m.openSigners(signWith)
				if err != nil {
					return err
				}
				defer closeAll()
				if err := r.RotateRoot(spec, signers...); err != nil {
					return err
				}
				fmt.Fprintln(m.Stdout, "staged a new root")
				return m.printSignatures(r, "root")
			})
		},
	}
	c.Flags().StringArrayVar(&keyArgs, "keys", nil, "new keys of a role, as `ROLE=KEY[,KEY…]` (repeatable)")
	c.Flags().StringArrayVar(&thresholds, "threshold", nil, "new threshold of a role, as `ROLE=N` (repeatable)")
	c.Flags().StringArrayVar(&signWith, "key", nil, "sign the new root with this key `REF` (repeatable)")
	return c
}

func rotationSpec(keyArgs, thresholds []string) (map[string]repo.RoleSpec, error) {
	spec := map[string]repo.RoleSpec{}
	kv, err := splitAssign("keys", keyArgs)
	if err != nil {
		return nil, err
	}
	for role, list := range kv {
		var ks []repo.KeySpec
		for _, arg := range strings.Split(list, ",") {
			pub, ref, err := publicKeyArg(arg)
			if err != nil {
				return nil, err
			}
			ks = append(ks, repo.KeySpec{Public: pub, Ref: ref})
		}
		spec[role] = repo.RoleSpec{Keys: ks}
	}
	th, err := parseThresholds(thresholds)
	if err != nil {
		return nil, err
	}
	for role, n := range th {
		rs := spec[role]
		rs.Threshold = n
		spec[role] = rs
	}
	if len(spec) == 0 {
		return nil, usagef("nothing to change: give --keys or --threshold")
	}
	return spec, nil
}

func (m *Main) openSigners(refs []string) ([]crypto.Signer, func(), error) {
	var out []crypto.Signer
	closeAll := func() {
		for _, s := range out {
			keys.CloseSigner(s)
		}
	}
	for _, ref := range refs {
		s, err := m.openSigner(ref)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		out = append(out, s)
	}
	return out, closeAll, nil
}
