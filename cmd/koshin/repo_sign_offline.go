package main

import (
	"fmt"

	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

func newRepoSignOfflineCmd(m *Main) *cobra.Command {
	var key, in, out string
	c := &cobra.Command{
		Use:   "sign-offline --key REF --in FILE --out FILE",
		Short: "Sign an exported role on an offline machine (needs no repository)",
		Long: `Sign a role exported with 'koshin repo sign --export' on an air-gapped
machine (CCDS UPC11). It prints what is being signed — every key and
threshold of a root, every target and floor of targets — then writes a
signature file to carry back for 'koshin repo sign --import'. The private
key never leaves the offline machine.`,
		Example: `  koshin repo sign-offline --key /media/token/alice-root.key --in root-2.json --out root-2.alice.sig`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			unsigned, err := readSmallFile(in)
			if err != nil {
				return err
			}
			desc, err := repo.DescribeUnsigned(unsigned)
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			fmt.Fprintf(m.Stdout, "signing:\n%s", desc)
			s, err := m.openSigner(key)
			if err != nil {
				return err
			}
			defer keys.CloseSigner(s)
			sig, err := repo.SignOffline(unsigned, s)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(out, sig, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "wrote signature to %s\n", out)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "key `REF`: key file or pkcs11: URI (required)")
	c.Flags().StringVar(&in, "in", "", "exported role `FILE` (required)")
	c.Flags().StringVar(&out, "out", "", "signature `FILE` to write (required)")
	for _, f := range []string{"key", "in", "out"} {
		c.MarkFlagRequired(f)
	}
	return c
}
