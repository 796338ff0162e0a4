package main

import (
	"fmt"
	"os"

	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

type signFlags struct {
	role, key, export, out, imp string
}

func newRepoSignCmd(m *Main) *cobra.Command {
	var f signFlags
	c := &cobra.Command{
		Use:   "sign (--role ROLE --key REF | --export ROLE --out FILE | --import FILE)",
		Short: "Add a signature to the staged root or targets",
		Long: `Add one signature to a staged role (root or targets). The role is complete
when a threshold of distinct authorised keys has signed it; a new root also
needs a threshold of the previous root's keys. Then publish (or commit).

  --role ROLE --key REF     sign here with a key file or pkcs11: token
  --export ROLE --out FILE  write the staged role to FILE for an offline
                            signer (koshin repo sign-offline on the air-gapped
                            machine)
  --import FILE             add the signature file the offline signer made;
                            it is verified against the authorised key first`,
		Example: `  koshin repo sign --role targets --key keys/targets.key
  koshin repo sign --export root --out /media/usb/root-2.json
  koshin repo sign --import /media/usb/root-2.alice.sig`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			switch {
			case f.role != "" && f.key != "" && f.export == "" && f.imp == "":
				return m.signWithKey(f.role, f.key)
			case f.export != "" && f.out != "" && f.role == "" && f.imp == "":
				return m.exportUnsigned(f.export, f.out)
			case f.imp != "" && f.role == "" && f.export == "":
				return m.importSignature(f.imp)
			}
			return usagef("give --role and --key, or --export and --out, or --import")
		},
	}
	c.Flags().StringVar(&f.role, "role", "", "role to sign: root or targets")
	c.Flags().StringVar(&f.key, "key", "", "key `REF`: key file or pkcs11: URI")
	c.Flags().StringVar(&f.export, "export", "", "role to export for offline signing")
	c.Flags().StringVar(&f.out, "out", "", "with --export: `FILE` to write")
	c.Flags().StringVar(&f.imp, "import", "", "signature `FILE` made by koshin repo sign-offline")
	return c
}

func (m *Main) signWithKey(role, ref string) error {
	return m.withRepo(func(r *repo.Repo) error {
		s, err := m.openSigner(ref)
		if err != nil {
			return err
		}
		defer keys.CloseSigner(s)
		if err := r.Sign(role, s); err != nil {
			return err
		}
		return m.printSignatures(r, role)
	})
}

func (m *Main) exportUnsigned(role, out string) error {
	return m.withRepo(func(r *repo.Repo) error {
		b, err := r.ExportUnsigned(role)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(out, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "wrote staged %s to %s; sign it with `koshin repo sign-offline` and bring back the signature\n", role, out)
		return nil
	})
}

func (m *Main) importSignature(name string) error {
	b, err := readSmallFile(name)
	if err != nil {
		return err
	}
	sf, err := repo.ParseSignatureFile(b)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return m.withRepo(func(r *repo.Repo) error {
		if err := r.ImportSignature(sf.Role, b); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "imported %s signature by key %s\n", sf.Role, sf.KeyID)
		return m.printSignatures(r, sf.Role)
	})
}

// readSmallFile reads a metadata or signature file, refusing huge ones.
func readSmallFile(name string) ([]byte, error) {
	const limit = 32 << 20
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return os.ReadFile(name)
}
