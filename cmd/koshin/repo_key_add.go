package main

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"

	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

type keyAddFlags struct {
	role, public, ref, key, out, algorithm string
	generate                               bool
}

func newRepoKeyAddCmd(m *Main) *cobra.Command {
	var f keyAddFlags
	c := &cobra.Command{
		Use:   "add --role ROLE (--public PEM | --key REF | --generate --out FILE)",
		Short: "Authorise a key for a role",
		Long: `Authorise a key for a role in the staged root. The key is given as one of:

  --public PEM      the public key of a key held elsewhere (an offline root or
                    targets key); this workspace records no way to use it
  --key REF         a key this machine can use: an encrypted key file or a
                    pkcs11: URI (HSM keys are ECDSA P-256)
  --generate        a new key, written encrypted to --out FILE (passphrase
                    from $KOSHIN_PASSPHRASE or the terminal), with its public
                    key in FILE.pub

Snapshot and timestamp keys must have a ref (key file or pkcs11:) so that
commit and timestamp can sign with them, and must not also be root or
targets keys.`,
		Example: `  koshin repo key add --role root --public alice-root.pem
  koshin repo key add --role targets --key 'pkcs11:token=release;object=targets-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin'
  koshin repo key add --role timestamp --generate --out keys/timestamp.key`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			pub, ref, err := m.keyToAdd(f)
			if err != nil {
				return err
			}
			return m.withRepo(func(r *repo.Repo) error {
				if err := r.AddKey(f.role, pub, ref); err != nil {
					return err
				}
				id, _ := keys.KeyID(pub)
				fmt.Fprintf(m.Stdout, "added %s key %s to the staged root\n", f.role, id)
				return m.printSignatures(r, "root")
			})
		},
	}
	c.Flags().StringVar(&f.role, "role", "", "role to authorise the key for: root, targets, snapshot or timestamp (required)")
	c.Flags().StringVar(&f.public, "public", "", "public key `PEM` file of a key held elsewhere")
	c.Flags().StringVar(&f.ref, "ref", "", "with --public: where the private key can be found, if on this machine")
	c.Flags().StringVar(&f.key, "key", "", "key `REF`: key file or pkcs11: URI")
	c.Flags().BoolVar(&f.generate, "generate", false, "generate a new encrypted key file")
	c.Flags().StringVar(&f.out, "out", "", "with --generate: key `FILE` to create (never overwritten)")
	c.Flags().StringVar(&f.algorithm, "algorithm", string(keys.Ed25519), "with --generate: ed25519 or ecdsa-p256")
	c.MarkFlagRequired("role")
	c.MarkFlagsMutuallyExclusive("public", "key", "generate")
	c.MarkFlagsOneRequired("public", "key", "generate")
	return c
}

func (m *Main) keyToAdd(f keyAddFlags) (crypto.PublicKey, string, error) {
	switch {
	case f.public != "":
		pub, err := keys.ReadPublicKeyPEM(f.public)
		return pub, f.ref, err
	case f.key != "":
		pub, err := keys.Public(f.key)
		if err != nil {
			return nil, "", err
		}
		ref, err := absRef(f.key)
		return pub, ref, err
	}
	if f.out == "" {
		return nil, "", usagef("--generate needs --out FILE")
	}
	s, err := m.generateKeyFile(keys.Algorithm(f.algorithm), f.out)
	if err != nil {
		return nil, "", err
	}
	ref, err := absRef(f.out)
	return s.Public(), ref, err
}

// generateKeyFile creates an encrypted key file and its public PEM.
func (m *Main) generateKeyFile(alg keys.Algorithm, out string) (crypto.Signer, error) {
	if err := alg.Validate(); err != nil {
		return nil, usageError{err}
	}
	pass, err := m.newPassphrase(out)
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	s, err := keys.Generate(alg)
	if err != nil {
		return nil, err
	}
	if err := keys.WriteKeyFile(out, s, pass, m.KDF); err != nil {
		return nil, err
	}
	if err := keys.WritePublicKeyPEM(out+".pub", s.Public()); err != nil {
		return nil, err
	}
	fmt.Fprintf(m.Stdout, "wrote %s and %s.pub\n", out, out)
	return s, nil
}

// newPassphrase asks twice so a typo does not lock the key away; from the
// environment both answers are the same.
func (m *Main) newPassphrase(name string) ([]byte, error) {
	p1, err := m.Passphrase("New passphrase for " + name + ": ")
	if err != nil {
		return nil, err
	}
	p2, err := m.Passphrase("Repeat passphrase for " + name + ": ")
	if err != nil {
		return nil, err
	}
	defer clear(p2)
	if !bytes.Equal(p1, p2) {
		clear(p1)
		return nil, errors.New("passphrases differ")
	}
	return p1, nil
}
