package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/koshin-ota/koshin/trust/verify"
	"github.com/spf13/cobra"
)

func init() { register(newDemoCmd) }

func newDemoCmd(m *Main) *cobra.Command {
	var keep bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "Sign a release, verify it as a device would, and show attacks being rejected",
		Long: `demo runs the trust core end to end in a temporary directory, with nothing
else installed: it creates a release-channel image repository and a director,
signs and publishes a release, serves both repositories on 127.0.0.1, and
plays a device that refreshes the metadata, checks the director's
per-device instruction against the image repository and streams the payload
while verifying it. It then replays a series of attacks (tampered payload,
replayed instruction, wrong hardware, rollback, revoked release, development
root on a production device) and checks that each is rejected with the
right error. It exits non-zero if the update fails or any attack gets
through. Keys are held in memory for the demo; real repositories keep them
in encrypted key files or on PKCS#11 tokens (see docs/trust.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "koshin-demo-*")
			if err != nil {
				return err
			}
			if !keep {
				defer os.RemoveAll(dir)
			}
			d := &demo{m: m, dir: dir, out: m.Stdout}
			return d.run(cmd.Context())
		},
	}
	c.Flags().BoolVar(&keep, "keep", false, "keep the temporary directory (repositories, published files, device state)")
	return c
}

const (
	demoHardware  = "demo-board"
	demoComponent = "rootfs"
	demoPayload   = 4 << 20
)

// demo is one run: the signing side, the served repositories and a device.
type demo struct {
	m   *Main
	dir string
	out io.Writer

	img      *repo.Repo
	online   repo.OnlineKeys
	signers  map[string]crypto.Signer
	director *repo.Director
	pubDir   string
	server   *httptest.Server
	tamper   atomic.Bool

	dev        trust.Device
	v          *verify.Verifier
	dirVersion int64 // the director's per-device document version
	rejected   int
	attacks    int
}

func (d *demo) run(ctx context.Context) error {
	fmt.Fprintf(d.out, "koshin demo: the update trust core end to end (in %s)\n\n", d.dir)
	steps := []func(context.Context) error{d.createRepository, d.signRelease, d.createDirector, d.serve, d.provisionDevice, d.update}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	defer d.server.Close()
	fmt.Fprintf(d.out, "\nAttacks (each must be rejected):\n")
	d.attack("payload tampered on the mirror (one byte flipped)", trust.ErrMismatch, d.tamperedPayload)
	d.attack("director instruction replayed with an old nonce", trust.ErrStaleNonce, d.replayedInstruction)
	d.attack("instruction for a release signed for other hardware", trust.ErrWrongHardware, d.wrongHardware)
	d.attack("rollback to the older release 1.0", trust.ErrRollback, d.rollback)
	d.attack("release revoked after the instruction was signed", trust.ErrNotFound, d.revoked)
	d.attack("development root written to a production device", trust.ErrWrongChannel, d.devRoot)
	fmt.Fprintf(d.out, "\nSummary: update verified and installed; %d of %d attacks rejected.\n", d.rejected, d.attacks)
	if d.rejected != d.attacks {
		return fmt.Errorf("%d attack(s) were not rejected", d.attacks-d.rejected)
	}
	return nil
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.out, "  ✓ "+format+"\n", args...)
}

func newDemoKey() crypto.Signer {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}

// createRepository makes a release-channel image repository with one key
// per role.
func (d *demo) createRepository(context.Context) error {
	r, err := repo.Init(filepath.Join(d.dir, "image-repo"), repo.InitOptions{Channel: trust.ChannelRelease, Now: d.m.Now})
	if err != nil {
		return err
	}
	d.img = r
	d.signers = map[string]crypto.Signer{}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		d.signers[role] = newDemoKey()
		if err := r.AddKey(role, d.signers[role].Public(), ""); err != nil {
			return fmt.Errorf("add %s key: %w", role, err)
		}
	}
	d.online = repo.OnlineKeys{Snapshot: d.signers["snapshot"], Timestamp: d.signers["timestamp"]}
	d.step("image repository created (channel release; root, targets, snapshot and timestamp keys)")
	return nil
}

// signRelease adds releases 1.0 and 1.1 for the demo board and one for other
// hardware, signs them and publishes the repository.
func (d *demo) signRelease(context.Context) error {
	releases := []struct {
		name    string
		counter uint64
		version string
		hw      string
	}{
		{"demo-os-1.0.img", 1, "1.0", demoHardware},
		{"demo-os-1.1.img", 2, "1.1", demoHardware},
		{"other-os-1.1.img", 3, "1.1", "other-board"},
	}
	for _, rel := range releases {
		custom := trust.TargetCustom{HardwareIDs: []string{rel.hw}, Component: demoComponent,
			ReleaseCounter: rel.counter, Version: rel.version, Channel: trust.ChannelRelease}
		payload := io.LimitReader(rand.Reader, demoPayload)
		if err := d.img.AddTarget(rel.name, payload, custom, nil); err != nil {
			return fmt.Errorf("add %s: %w", rel.name, err)
		}
	}
	if err := d.commit("root", "targets"); err != nil {
		return err
	}
	d.step("releases 1.0 and 1.1 (%d MiB each) signed for %s, plus one for other-board; published", demoPayload>>20, demoHardware)
	return nil
}

// commit signs the staged roles, commits and publishes.
func (d *demo) commit(roles ...string) error {
	for _, role := range roles {
		if err := d.img.Sign(role, d.signers[role]); err != nil {
			return fmt.Errorf("sign %s: %w", role, err)
		}
	}
	if _, err := d.img.Commit(d.m.Now(), d.online); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	d.pubDir = filepath.Join(d.dir, "published")
	return d.img.Publish(d.pubDir)
}

func (d *demo) createDirector(context.Context) error {
	dr, err := repo.InitDirector(filepath.Join(d.dir, "director"), d.m.Now(), repo.DirectorOptions{
		Channel: trust.ChannelRelease, RootKeys: []crypto.Signer{newDemoKey()}, Targets: newDemoKey()})
	if err != nil {
		return err
	}
	d.director = dr
	d.step("director created (its own root; an online key signs per-device instructions)")
	return nil
}

// serve publishes the image repository directory and the director's root
// chain over HTTP on 127.0.0.1, with a switch that corrupts payloads as a
// rogue mirror would.
func (d *demo) serve(context.Context) error {
	mux := http.NewServeMux()
	files := http.StripPrefix("/image/", http.FileServer(http.Dir(d.pubDir)))
	mux.HandleFunc("/image/", func(w http.ResponseWriter, r *http.Request) {
		if d.tamper.Load() && strings.HasPrefix(r.URL.Path, "/image/targets/") {
			d.serveTampered(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /director/{file}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(strings.TrimSuffix(r.PathValue("file"), ".root.json"), 10, 64)
		root, rerr := d.director.RootVersion(n)
		if err != nil || rerr != nil {
			http.NotFound(w, r)
			return
		}
		w.Write(root)
	})
	d.server = httptest.NewServer(mux)
	d.step("both repositories served on %s", d.server.URL)
	return nil
}

func (d *demo) serveTampered(w http.ResponseWriter, r *http.Request) {
	b, err := os.ReadFile(filepath.Join(d.pubDir, strings.TrimPrefix(r.URL.Path, "/image/")))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	b[len(b)/2] ^= 0x01
	w.Write(b)
}

func (d *demo) provisionDevice(context.Context) error {
	id := sha256.Sum256(newDemoKey().Public().(ed25519.PublicKey))
	d.dev = trust.Device{ID: hex.EncodeToString(id[:]), HardwareID: demoHardware, Channel: trust.ChannelRelease,
		Installed: map[string]uint64{demoComponent: 1}}
	state := filepath.Join(d.dir, "device")
	imageRoot, err := os.ReadFile(filepath.Join(d.pubDir, "1.root.json"))
	if err != nil {
		return err
	}
	if err := verify.Provision(state, imageRoot, d.director.Root(), trust.ChannelRelease); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	d.v, err = verify.New(verify.Config{Device: d.dev, Dir: state, Fetcher: &verify.HTTPFetcher{MinRate: 64 << 10},
		ImageURL: d.server.URL + "/image", DirectorURL: d.server.URL + "/director", TargetsURL: d.server.URL + "/image/targets",
		Now: d.m.Now})
	if err != nil {
		return err
	}
	d.step("device %s… (hardware %s, running 1.0) provisioned with both roots", d.dev.ID[:12], demoHardware)
	return nil
}

// instruct has the director sign an instruction for the device to install
// name, echoing nonce. It builds the director target itself rather than with
// repo.DirectorTargetFor, which refuses mismatches: the attacks play a
// compromised director, and the device must catch them on its own.
func (d *demo) instruct(name, hardware, nonce string) ([]byte, error) {
	tf, err := d.img.SignedTarget(name)
	if err != nil {
		return nil, err
	}
	c, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil {
		return nil, err
	}
	dt := repo.DirectorTarget{Name: name, Length: tf.Length, Hashes: tf.Hashes,
		Custom: trust.DirectorCustom{HardwareID: hardware, Component: c.Component,
			ReleaseCounter: c.ReleaseCounter, Channel: c.Channel}}
	d.dirVersion++
	return d.director.SignTargets(trust.DirectorInfo{DeviceID: d.dev.ID, Nonce: nonce}, d.dirVersion,
		d.m.Now().Add(time.Hour), []repo.DirectorTarget{dt})
}

func newNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// check runs one device check-in: refresh, verify the instruction, stream
// the payload into a slot file.
func (d *demo) check(ctx context.Context, instruction []byte, nonce string) (int64, error) {
	if err := d.v.RefreshImage(ctx); err != nil {
		return 0, err
	}
	plan, err := d.v.CheckDirector(ctx, instruction, nonce)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, in := range plan.Targets {
		m, err := d.download(ctx, in)
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

func (d *demo) download(ctx context.Context, in verify.Install) (int64, error) {
	body, err := (&verify.HTTPFetcher{}).Open(ctx, in.URL, 0)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	slot, err := os.Create(filepath.Join(d.dir, "device", "slot-b.img"))
	if err != nil {
		return 0, err
	}
	defer slot.Close()
	return io.Copy(slot, verify.NewPayloadReader(body, in, verify.PayloadOptions{}))
}

func (d *demo) update(ctx context.Context) error {
	nonce := newNonce()
	instruction, err := d.instruct("demo-os-1.1.img", demoHardware, nonce)
	if err != nil {
		return err
	}
	n, err := d.check(ctx, instruction, nonce)
	if err != nil {
		return fmt.Errorf("honest update failed: %w", err)
	}
	d.dev.Installed[demoComponent] = 2
	d.v.SetInstalled(d.dev.Installed)
	d.step("device verified both repositories, the director's instruction (nonce echoed) and their agreement")
	d.step("device streamed %d bytes of demo-os-1.1.img into slot B; length and SHA-256 match the signed target", n)
	return nil
}

// attack runs one attack and counts it rejected when it fails with want.
func (d *demo) attack(what string, want error, fn func(context.Context) error) {
	d.attacks++
	err := fn(context.Background())
	switch {
	case errors.Is(err, want):
		d.rejected++
		fmt.Fprintf(d.out, "  ✓ %s\n      rejected: %v\n", what, err)
	case err == nil:
		fmt.Fprintf(d.out, "  ✗ %s\n      NOT REJECTED\n", what)
	default:
		fmt.Fprintf(d.out, "  ✗ %s\n      rejected for the wrong reason: %v\n", what, err)
	}
}

func (d *demo) tamperedPayload(ctx context.Context) error {
	d.tamper.Store(true)
	defer d.tamper.Store(false)
	nonce := newNonce()
	instruction, err := d.instruct("demo-os-1.1.img", demoHardware, nonce)
	if err != nil {
		return err
	}
	_, err = d.check(ctx, instruction, nonce)
	return err
}

func (d *demo) replayedInstruction(ctx context.Context) error {
	instruction, err := d.instruct("demo-os-1.1.img", demoHardware, newNonce())
	if err != nil {
		return err
	}
	_, err = d.check(ctx, instruction, newNonce()) // the device sent a new nonce
	return err
}

func (d *demo) wrongHardware(ctx context.Context) error {
	nonce := newNonce()
	instruction, err := d.instruct("other-os-1.1.img", demoHardware, nonce)
	if err != nil {
		return err
	}
	_, err = d.check(ctx, instruction, nonce)
	return err
}

func (d *demo) rollback(ctx context.Context) error {
	nonce := newNonce()
	instruction, err := d.instruct("demo-os-1.0.img", demoHardware, nonce)
	if err != nil {
		return err
	}
	_, err = d.check(ctx, instruction, nonce)
	return err
}

// revoked signs an instruction for 1.1, then revokes 1.1 in the image
// repository before the device checks.
func (d *demo) revoked(ctx context.Context) error {
	nonce := newNonce()
	instruction, err := d.instruct("demo-os-1.1.img", demoHardware, nonce)
	if err != nil {
		return err
	}
	if err := d.img.Revoke("demo-os-1.1.img"); err != nil {
		return err
	}
	if err := d.commit("targets"); err != nil {
		return err
	}
	_, err = d.check(ctx, instruction, nonce)
	return err
}

// devRoot builds a development-channel repository and tries to provision a
// production device with its root.
func (d *demo) devRoot(context.Context) error {
	dev, err := repo.Init(filepath.Join(d.dir, "dev-repo"), repo.InitOptions{Channel: trust.ChannelDev, Now: d.m.Now})
	if err != nil {
		return err
	}
	defer dev.Close()
	keys := map[string]crypto.Signer{}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		keys[role] = newDemoKey()
		if err := dev.AddKey(role, keys[role].Public(), ""); err != nil {
			return err
		}
	}
	for _, role := range []string{"root", "targets"} {
		if err := dev.Sign(role, keys[role]); err != nil {
			return err
		}
	}
	if _, err := dev.Commit(d.m.Now(), repo.OnlineKeys{Snapshot: keys["snapshot"], Timestamp: keys["timestamp"]}); err != nil {
		return err
	}
	out := filepath.Join(d.dir, "dev-published")
	if err := dev.Publish(out); err != nil {
		return err
	}
	root, err := os.ReadFile(filepath.Join(out, "1.root.json"))
	if err != nil {
		return err
	}
	return verify.Provision(filepath.Join(d.dir, "device-2"), root, d.director.Root(), trust.ChannelRelease)
}
