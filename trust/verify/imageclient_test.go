package verify_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// generic is an ImageClient on a repository without koshin's fields.
type generic struct {
	t    *testing.T
	repo *trusttest.Repo
	c    *verify.ImageClient
	dir  string
}

func newGeneric(t *testing.T, opt trusttest.Options) *generic {
	t.Helper()
	opt.Channel = trusttest.NoChannel
	g := &generic{t: t, repo: trusttest.NewRepo(t, opt), dir: t.TempDir()}
	if err := verify.InitImageClient(g.dir, g.repo.TrustedRoot()); err != nil {
		t.Fatal(err)
	}
	g.c = g.open("")
	return g
}

func (g *generic) open(ch trust.Channel) *verify.ImageClient {
	g.t.Helper()
	c, err := verify.NewImageClient(verify.ImageConfig{Dir: g.dir, MetadataURL: g.repo.MetadataURL(),
		TargetsURL: g.repo.TargetsURL(), Fetcher: g.repo, Now: g.repo.Now, Channel: ch})
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

func (g *generic) download(name string) ([]byte, error) {
	ctx := context.Background()
	if err := g.c.Refresh(ctx); err != nil {
		return nil, err
	}
	in, err := g.c.Target(ctx, name)
	if err != nil {
		return nil, err
	}
	rc, err := g.repo.Open(ctx, in.URL, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(verify.NewPayloadReader(rc, in, verify.PayloadOptions{}))
}

// A generic TUF repository (no channel label, no custom fields) works with
// the image client, also without consistent snapshots.
func TestImageClientGeneric(t *testing.T) {
	for _, consistent := range []bool{true, false} {
		g := newGeneric(t, trusttest.Options{TargetHashes: []string{"sha256", "sha512"}})
		if !consistent {
			g.repo.Root.Signed.ConsistentSnapshot = false
			g.repo.PublishRoot()
		}
		data := testPayload(2000)
		g.repo.AddTarget("a/b/c.txt", data, nil)
		g.repo.Publish()
		got, err := g.download("a/b/c.txt")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("consistent=%v: %d bytes, %v", consistent, len(got), err)
		}
		_, err = g.c.Target(context.Background(), "missing")
		wantErr(t, err, trust.ErrNotFound)
	}
	// With a channel set, the image client applies koshin's root policy.
	g := newGeneric(t, trusttest.Options{})
	wantErr(t, g.open(trust.ChannelRelease).Refresh(context.Background()), trust.ErrInvalid)
}

// addDelegation delegates paths to a new role holding targets.
func addDelegation(t *testing.T, r *trusttest.Repo, role string, paths []string, terminating bool, targets map[string][]byte) {
	t.Helper()
	s, pub := r.NewSigner()
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if r.Targets.Signed.Delegations == nil {
		r.Targets.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	r.Targets.Signed.Delegations.Roles = append(r.Targets.Signed.Delegations.Roles,
		metadata.DelegatedRole{Name: role, Threshold: 1, Paths: paths, Terminating: terminating})
	if err := r.Targets.Signed.AddKey(k, role); err != nil {
		t.Fatal(err)
	}
	md := metadata.Targets(r.Now().Add(trusttest.TargetsExpiry))
	for name, data := range targets {
		tf, err := metadata.TargetFile().FromBytes(name, data)
		if err != nil {
			t.Fatal(err)
		}
		md.Signed.Targets[name] = tf
		r.SetFile(trusttest.TargetPath(name, tf.Hashes["sha256"]), data)
	}
	r.SetFile(trusttest.RolePath(role, 1), trusttest.Sign(t, md, s))
	r.Snapshot.Signed.Meta[role+".json"] = metadata.MetaFile(1)
}

// Delegated roles are searched in order; a terminating delegation hides
// later ones.
func TestImageClientDelegations(t *testing.T) {
	g := newGeneric(t, trusttest.Options{})
	addDelegation(t, g.repo, "first", []string{"d/*"}, true, map[string][]byte{"d/one": []byte("one")})
	addDelegation(t, g.repo, "second", []string{"d/*", "e/*"}, false, map[string][]byte{"d/two": []byte("two"), "e/three": []byte("three")})
	g.repo.Publish()
	if got, err := g.download("d/one"); err != nil || string(got) != "one" {
		t.Fatalf("d/one: %q, %v", got, err)
	}
	if got, err := g.download("e/three"); err != nil || string(got) != "three" {
		t.Fatalf("e/three: %q, %v", got, err)
	}
	_, err := g.download("d/two") // behind the terminating "first"
	wantErr(t, err, trust.ErrNotFound)
}

// A delegated role named like a top-level role would overwrite its trusted
// copy on disk; it is refused.
func TestImageClientDelegationNamedRoot(t *testing.T) {
	g := newGeneric(t, trusttest.Options{})
	addDelegation(t, g.repo, "root", []string{"*"}, false, map[string][]byte{"x": []byte("x")})
	g.repo.Publish()
	_, err := g.download("x")
	wantErr(t, err, trust.ErrInvalid)
}

// The generic path relies on go-tuf's own threshold checks: one key listed
// under two key IDs counts once, and a threshold of 0 is refused.
func TestImageClientThresholds(t *testing.T) {
	for _, keyType := range []string{"ed25519", "ecdsa"} {
		t.Run("key listed twice/"+keyType, func(t *testing.T) {
			g := newGeneric(t, trusttest.Options{KeyType: keyType})
			alias := listTwice(t, g.repo, metadata.TARGETS)
			g.repo.PublishRoot()
			g.repo.PublishTargets()
			md := g.repo.Targets
			trusttest.Sign(t, md, g.repo.Signers[metadata.TARGETS]...)
			md.Signatures = append(md.Signatures, metadata.Signature{KeyID: alias, Signature: md.Signatures[0].Signature})
			data, err := md.ToBytes(false)
			if err != nil {
				t.Fatal(err)
			}
			g.repo.SetFile(trusttest.RolePath(metadata.TARGETS, md.Signed.Version), data)
			g.repo.PublishSnapshot()
			g.repo.PublishTimestamp()
			wantErr(t, g.c.Refresh(context.Background()), trust.ErrThreshold)
		})
	}
	t.Run("threshold 0", func(t *testing.T) {
		g := newGeneric(t, trusttest.Options{})
		g.repo.Root.Signed.Roles[metadata.SNAPSHOT].Threshold = 0
		g.repo.PublishRoot()
		wantErr(t, g.c.Refresh(context.Background()), trust.ErrThreshold)
	})
}
