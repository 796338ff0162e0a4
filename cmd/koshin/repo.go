package main

import (
	"crypto"
	"fmt"

	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
)

func init() { register(newRepoCmd) }

func newRepoCmd(m *Main) *cobra.Command {
	c := &cobra.Command{
		Use:   "repo",
		Short: "Manage the image repository: keys, signing, rotation, publishing",
		Long: `The image repository holds what the manufacturer released, signed with
TUF metadata: root and targets by people holding offline or token keys (with
thresholds), snapshot and timestamp by online keys. Edits are staged, signed
until each role's threshold is met, committed and published.

The workspace is --repo DIR (or $KOSHIN_REPO). See docs/trust.md for the key
ceremony, offline signing, revocation and rotation runbooks.`,
	}
	c.AddCommand(
		newRepoInitCmd(m), newRepoKeyCmd(m), newRepoSignCmd(m), newRepoSignOfflineCmd(m),
		newRepoRotateRootCmd(m), newRepoCommitCmd(m), newRepoTimestampCmd(m), newRepoPublishCmd(m),
		newRepoStatusCmd(m), newRepoStageCmd(m), newRepoDiscardCmd(m), newRepoPublishS3Cmd(m),
	)
	return c
}

// withRepo opens the workspace, runs fn and closes it.
func (m *Main) withRepo(fn func(r *repo.Repo) error) error {
	r, err := repo.Open(m.repoDir)
	if err != nil {
		return err
	}
	defer r.Close()
	r.Now = m.Now
	return fn(r)
}

// openSigner opens a key reference (key file or pkcs11: URI), asking for
// its passphrase or PIN. Close it with keys.CloseSigner.
func (m *Main) openSigner(ref string) (crypto.Signer, error) {
	s, err := keys.Open(ref, m.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("open key %s: %w", ref, err)
	}
	return s, nil
}

// onlineKeys opens the snapshot and timestamp keys: the given refs, or the
// refs the workspace recorded for those roles.
func (m *Main) onlineKeys(r *repo.Repo, snapshotRef, timestampRef string) (repo.OnlineKeys, func(), error) {
	var k repo.OnlineKeys
	var opened []crypto.Signer
	closeAll := func() {
		for _, s := range opened {
			keys.CloseSigner(s)
		}
	}
	for _, want := range []struct {
		role string
		ref  string
		dst  *crypto.Signer
	}{{"snapshot", snapshotRef, &k.Snapshot}, {"timestamp", timestampRef, &k.Timestamp}} {
		ref := want.ref
		if ref == "" {
			ref = recordedRef(r, want.role)
		}
		if ref == "" {
			closeAll()
			return k, nil, usagef("no %s key: pass --%s-key or add one with a key file or pkcs11: ref", want.role, want.role)
		}
		s, err := m.openSigner(ref)
		if err != nil {
			closeAll()
			return k, nil, err
		}
		opened = append(opened, s)
		*want.dst = s
	}
	return k, closeAll, nil
}

func recordedRef(r *repo.Repo, role string) string {
	for _, k := range r.Keys() {
		if k.Role == role && k.Ref != "" {
			return k.Ref
		}
	}
	return ""
}

// printSignatures reports a staged role's progress towards its threshold.
func (m *Main) printSignatures(r *repo.Repo, role string) error {
	s, err := r.SignatureStatus(role)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%s %d: %d of %d signatures", role, s.Version, s.Have, s.Need)
	if s.PrevNeed > 0 {
		fmt.Fprintf(m.Stdout, ", %d of %d by the previous root's keys", s.PrevHave, s.PrevNeed)
	}
	if s.Complete() {
		fmt.Fprintln(m.Stdout, " — complete; `koshin repo publish` commits and publishes it")
	} else {
		fmt.Fprintln(m.Stdout, " — more signatures needed")
	}
	return nil
}
