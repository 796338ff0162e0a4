package trusttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Options configure NewRepo. The zero value is a release-channel image
// repository at https://image.test with one Ed25519 key per role.
type Options struct {
	// BaseURL prefixes the published files' URLs for Fetch and Open.
	BaseURL string
	// Channel is signed into every root; NoChannel leaves roots unlabelled,
	// like a generic TUF repository's.
	Channel trust.Channel
	// Now is the reference time for expiries; zero means Epoch.
	Now time.Time
	// Threshold is the number of keys and required signatures per role.
	Threshold int
	// KeyType is "ed25519" (default) or "ecdsa" (P-256).
	KeyType string
	// MetaHashes adds length and sha256 of snapshot and targets to the
	// timestamp and snapshot meta.
	MetaHashes bool
	// TargetHashes are the hash algorithms of added targets ("sha256",
	// "sha512"); default sha256.
	TargetHashes []string
}

// NoChannel as Options.Channel publishes roots without a channel label.
const NoChannel trust.Channel = "-"

// Epoch is the default reference time: fixed, so tests never depend on the
// wall clock.
var Epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// Default expiries relative to Options.Now.
const (
	RootExpiry      = 365 * 24 * time.Hour
	TargetsExpiry   = 90 * 24 * time.Hour
	SnapshotExpiry  = 7 * 24 * time.Hour
	TimestampExpiry = 24 * time.Hour
)

// Repo is an in-memory repository; see the package documentation.
type Repo struct {
	tb  testing.TB
	opt Options

	// Working copies, edited by tests and signed by Publish*.
	Root      *metadata.Metadata[metadata.RootType]
	Targets   *metadata.Metadata[metadata.TargetsType]
	Snapshot  *metadata.Metadata[metadata.SnapshotType]
	Timestamp *metadata.Metadata[metadata.TimestampType]
	// Signers sign each role at publish time; drop some to publish
	// under-signed metadata.
	Signers map[string][]signature.Signer

	prevRoot   []signature.Signer // root signers of the last published root, while rotating
	published  map[string]bool
	dirVersion map[string]int64 // director: last version issued per device

	mu       sync.Mutex // guards files and requests (served concurrently)
	files    map[string][]byte
	requests []string
}

// NewRepo creates a repository and publishes version 1 of every role.
func NewRepo(tb testing.TB, opt Options) *Repo {
	tb.Helper()
	opt = opt.withDefaults()
	r := &Repo{tb: tb, opt: opt, Signers: map[string][]signature.Signer{},
		published: map[string]bool{}, dirVersion: map[string]int64{}, files: map[string][]byte{}}
	r.Root = metadata.Root(opt.Now.Add(RootExpiry))
	r.Targets = metadata.Targets(opt.Now.Add(TargetsExpiry))
	r.Snapshot = metadata.Snapshot(opt.Now.Add(SnapshotExpiry))
	r.Timestamp = metadata.Timestamp(opt.Now.Add(TimestampExpiry))
	if opt.Channel != NoChannel {
		trust.SetRootChannel(&r.Root.Signed, opt.Channel)
	}
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		r.Root.Signed.Roles[role].Threshold = opt.Threshold
		for range opt.Threshold {
			r.addKey(role)
		}
	}
	r.publishRoot()
	r.Publish()
	return r
}

// NewDirector creates a director repository (default BaseURL
// https://director.test): a root chain plus a targets key for DirectorTargets.
func NewDirector(tb testing.TB, opt Options) *Repo {
	tb.Helper()
	if opt.BaseURL == "" {
		opt.BaseURL = "https://director.test"
	}
	return NewRepo(tb, opt)
}

func (o Options) withDefaults() Options {
	if o.BaseURL == "" {
		o.BaseURL = "https://image.test"
	}
	if o.Channel == "" {
		o.Channel = trust.ChannelRelease
	}
	if o.Now.IsZero() {
		o.Now = Epoch
	}
	if o.Threshold < 1 {
		o.Threshold = 1
	}
	if len(o.TargetHashes) == 0 {
		o.TargetHashes = []string{"sha256"}
	}
	return o
}

// addKey generates a key, lists it for role and keeps its signer.
func (r *Repo) addKey(role string) signature.Signer {
	r.tb.Helper()
	s, pub := r.newSigner()
	k, err := keys.TUFKey(pub)
	if err != nil {
		r.tb.Fatal(err)
	}
	if err := r.Root.Signed.AddKey(k, role); err != nil {
		r.tb.Fatal(err)
	}
	r.Signers[role] = append(r.Signers[role], s)
	return s
}

// NewSigner returns a fresh signer of the repository's key type and its
// public key, not listed anywhere (an attacker's key, or one to add by hand).
func (r *Repo) NewSigner() (signature.Signer, crypto.PublicKey) {
	r.tb.Helper()
	return r.newSigner()
}

func (r *Repo) newSigner() (signature.Signer, crypto.PublicKey) {
	var priv crypto.Signer
	var err error
	if r.opt.KeyType == "ecdsa" {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		r.tb.Fatal(err)
	}
	s, err := keys.TUFSigner(priv)
	if err != nil {
		r.tb.Fatal(err)
	}
	return s, priv.Public()
}

// RotateKeys replaces every key of role with Threshold new ones. Rotating
// root keys makes the next PublishRoot sign with the old and the new keys,
// as a root rotation must.
func (r *Repo) RotateKeys(role string) {
	r.tb.Helper()
	if role == metadata.ROOT && r.prevRoot == nil {
		r.prevRoot = r.Signers[role]
	}
	for _, id := range append([]string(nil), r.Root.Signed.Roles[role].KeyIDs...) {
		if err := r.Root.Signed.RevokeKey(id, role); err != nil {
			r.tb.Fatal(err)
		}
	}
	r.Signers[role] = nil
	for range r.Root.Signed.Roles[role].Threshold {
		r.addKey(role)
	}
}

// Now is the repository's reference time.
func (r *Repo) Now() time.Time { return r.opt.Now }

// MetadataURL and TargetsURL are the base URLs Fetch and Open answer.
func (r *Repo) MetadataURL() string { return r.opt.BaseURL + "/metadata" }
func (r *Repo) TargetsURL() string  { return r.opt.BaseURL + "/targets" }

// TrustedRoot returns published root version 1, what a device is
// provisioned with.
func (r *Repo) TrustedRoot() []byte { return r.File(RootPath(1)) }
