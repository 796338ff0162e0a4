package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

func init() { register(newBundleCmd) }

func newBundleCmd(m *Main) *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Offline update bundles for devices without a path to the server",
		Long: `An offline bundle is one file (agent/bundle format) that carries the image
repository's metadata, the director's instruction for each device and the
payload, for 'koshin-agent install FILE' from a USB stick or a site laptop.
It adds no trust path: the device verifies it exactly as an online update.`,
	}
	c.AddCommand(newBundleCreateCmd(m))
	return c
}

// bundleFlags are the inputs of bundle create.
type bundleFlags struct {
	director, key, image, imageRoot, release, out, description string
	device, nonce, hardware, devices                           string
	expires                                                    time.Duration
}

func newBundleCreateCmd(m *Main) *cobra.Command {
	var f bundleFlags
	c := &cobra.Command{
		Use:   "create --director DIR --image DIR --release NAME (--device ID --nonce NONCE | --devices FILE) -o FILE",
		Short: "Sign per-device instructions for a release and write them with the release into a bundle",
		Long: `Write an offline bundle that installs release NAME on the given devices.

The director (--director, the server's director workspace, and its online
targets key --key) signs one instruction per device, bound to the device's
ID and to the offline nonce its 'koshin-agent status' shows; the device
accepts it once, and no other device accepts it. The image repository's
published directory (--image, as 'koshin repo publish' writes it) supplies
the signed metadata and the payload; it is verified first, from
--image-root (default: its 1.root.json), so a bundle that could not install
is never written.

Devices come from --device/--nonce[/--hardware-id] or from a CSV file
(--devices) of device_id,nonce[,hardware_id] lines (a header line is
allowed). The hardware ID may be left out when the release fits one board.

The bundle must be installed before the image repository's timestamp and
the instructions (--expires) expire by the device's clock; the command
prints the deadline.`,
		Example: `  koshin-agent status                  # on the device: device ID and offline nonce
  koshin bundle create --director /var/lib/koshin/director --image /srv/www/tuf \
      --release rootfs-2.4.img --device 3fa1… --nonce 9c0e… -o update.koshin
  koshin bundle create --director /var/lib/koshin/director --image /srv/www/tuf \
      --release rootfs-2.4.img --devices site-7.csv -o site-7.koshin`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return m.bundleCreate(f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.director, "director", "", "director workspace `DIR` (required)")
	fl.StringVar(&f.key, "key", "", "director online targets key `REF`: key file or pkcs11: URI (default DIR/targets.key)")
	fl.StringVar(&f.image, "image", "", "published image repository `DIR` (required)")
	fl.StringVar(&f.imageRoot, "image-root", "", "trusted image root `FILE` to verify the repository from (default: its 1.root.json)")
	fl.StringVar(&f.release, "release", "", "target `NAME` of the release (required)")
	fl.StringVar(&f.device, "device", "", "device `ID`")
	fl.StringVar(&f.nonce, "nonce", "", "the device's offline `NONCE` (koshin-agent status)")
	fl.StringVar(&f.hardware, "hardware-id", "", "the device's hardware `ID` (default: the release's, if it fits one)")
	fl.StringVar(&f.devices, "devices", "", "CSV `FILE` of device_id,nonce[,hardware_id]")
	fl.DurationVar(&f.expires, "expires", 7*24*time.Hour, "how long the instructions stay valid")
	fl.StringVarP(&f.out, "output", "o", "", "bundle `FILE` to write (required)")
	fl.StringVar(&f.description, "description", "", "free text for the manifest")
	for _, name := range []string{"director", "image", "release", "output"} {
		c.MarkFlagRequired(name)
	}
	return c
}

// bundleDevice is one device a bundle is for.
type bundleDevice struct {
	ID, Nonce, Hardware string
}

// maxBundleDevices leaves room in a bundle (bundle.MaxEntries) for the
// metadata and the payload.
const maxBundleDevices = bundle.MaxEntries - 1024

func (m *Main) bundleCreate(f bundleFlags) error {
	devs, err := f.deviceList()
	if err != nil {
		return err
	}
	if f.expires < time.Minute || f.expires > 366*24*time.Hour {
		return usagef("--expires %s: want between 1m and 8784h", f.expires)
	}
	now := m.Now()
	pub, err := openPublished(f.image, f.imageRoot, now)
	if err != nil {
		return err
	}
	tf, custom, err := pub.target(f.release)
	if err != nil {
		return err
	}
	d, closeKey, err := m.openDirectorWorkspace(f.director, f.key)
	if err != nil {
		return err
	}
	defer closeKey()
	instr, err := signInstructions(d, devs, f.release, tf, custom, now, now.Add(f.expires))
	if err != nil {
		return err
	}
	err = atomicfile.Write(f.out, 0o644, func(w io.Writer) error {
		return writeBundle(w, bundle.Manifest{Description: f.description}, pub, d, instr, f.release, tf)
	})
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	deadline := now.Add(f.expires)
	if pub.expires.Before(deadline) {
		deadline = pub.expires
	}
	fmt.Fprintf(m.Stdout, "wrote %s: %s %s for %d device(s)\ninstall before %s (by the device's clock)\n",
		f.out, f.release, custom.Version, len(devs), deadline.UTC().Format(time.RFC3339))
	return nil
}

// deviceList reads the devices from the flags or the CSV file.
func (f *bundleFlags) deviceList() ([]bundleDevice, error) {
	var devs []bundleDevice
	switch {
	case f.devices != "" && (f.device != "" || f.nonce != ""):
		return nil, usagef("give --device and --nonce, or --devices, not both")
	case f.devices != "":
		data, err := readLimitedFile(f.devices, 16<<20)
		if err != nil {
			return nil, err
		}
		if devs, err = parseDeviceCSV(data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.devices, err)
		}
	case f.device == "" || f.nonce == "":
		return nil, usagef("give --device and --nonce (from koshin-agent status), or --devices FILE")
	default:
		devs = []bundleDevice{{ID: f.device, Nonce: f.nonce, Hardware: f.hardware}}
	}
	for i := range devs {
		if devs[i].Hardware == "" {
			devs[i].Hardware = f.hardware
		}
		if err := devs[i].validate(); err != nil {
			return nil, err
		}
	}
	return devs, nil
}

// parseDeviceCSV reads device_id,nonce[,hardware_id] records; a first
// record starting with "device_id" is a header.
func parseDeviceCSV(data []byte) ([]bundleDevice, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord, r.TrimLeadingSpace, r.Comment = -1, true, '#'
	var devs []bundleDevice
	seen := map[string]bool{}
	for first := true; ; first = false {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, usageError{err}
		}
		line, _ := r.FieldPos(0)
		if first && strings.EqualFold(strings.TrimSpace(rec[0]), "device_id") {
			continue
		}
		if len(rec) < 2 || len(rec) > 3 {
			return nil, usagef("line %d: want device_id,nonce[,hardware_id]", line)
		}
		d := bundleDevice{ID: strings.TrimSpace(rec[0]), Nonce: strings.TrimSpace(rec[1])}
		if len(rec) == 3 {
			d.Hardware = strings.TrimSpace(rec[2])
		}
		if seen[d.ID] {
			return nil, usagef("line %d: device %s listed twice", line, d.ID)
		}
		seen[d.ID] = true
		if len(devs) == maxBundleDevices {
			return nil, usagef("more than %d devices; split them over several bundles", maxBundleDevices)
		}
		devs = append(devs, d)
	}
	if len(devs) == 0 {
		return nil, usagef("no devices listed")
	}
	return devs, nil
}

func (d *bundleDevice) validate() error {
	if err := trust.ValidateID("device ID", d.ID); err != nil {
		return usageError{err}
	}
	if d.Nonce == "" || len(d.Nonce) > trust.MaxNonceLen || strings.ContainsFunc(d.Nonce, func(r rune) bool {
		return r > unicode.MaxASCII || !unicode.IsPrint(r)
	}) {
		return usagef("device %s: nonce %q is not an offline nonce (see koshin-agent status)", d.ID, d.Nonce)
	}
	if d.Hardware != "" {
		if err := trust.ValidateID("hardware ID", d.Hardware); err != nil {
			return usageError{fmt.Errorf("device %s: %w", d.ID, err)}
		}
	}
	return nil
}

func readLimitedFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, err
}

// openDirectorWorkspace opens the director with its online targets key.
func (m *Main) openDirectorWorkspace(dir, ref string) (*repo.Director, func(), error) {
	if ref == "" {
		ref = filepath.Join(dir, "targets.key")
	}
	signer, err := m.openSigner(ref)
	if err != nil {
		return nil, nil, err
	}
	closeKey := func() { keys.CloseSigner(signer) }
	d, err := repo.OpenDirector(dir, signer)
	if err != nil {
		closeKey()
		return nil, nil, err
	}
	return d, closeKey, nil
}

// signInstructions signs one director instruction per device. The version
// is the clock in seconds, the scheme the server uses, so a device accepts
// the server's later instructions after this one and refuses older ones
// (as long as this machine's clock is not ahead of the server's).
func signInstructions(d *repo.Director, devs []bundleDevice, name string, tf *metadata.TargetFiles,
	custom *trust.TargetCustom, now, expires time.Time) (map[string][]byte, error) {
	if custom.Encryption != "" {
		return nil, fmt.Errorf("%w: %s is encrypted; its content key would have to be wrapped to each device's key, "+
			"which bundles do not carry: use an unencrypted release for offline installs", trust.ErrInvalid, name)
	}
	out := make(map[string][]byte, len(devs))
	for _, dev := range devs {
		hw := dev.Hardware
		if hw == "" {
			if len(custom.HardwareIDs) != 1 {
				return nil, usagef("device %s: give its hardware ID; %s fits %v", dev.ID, name, custom.HardwareIDs)
			}
			hw = custom.HardwareIDs[0]
		}
		t, err := repo.DirectorTargetFor(name, tf, hw, nil)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", dev.ID, err)
		}
		doc, err := d.SignTargets(trust.DirectorInfo{DeviceID: dev.ID, Nonce: dev.Nonce}, max(1, now.Unix()), expires, []repo.DirectorTarget{t})
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", dev.ID, err)
		}
		out[dev.ID] = doc
	}
	return out, nil
}

// published is a verified copy of the image repository's published
// directory: the metadata files a device needs, by their published names.
type published struct {
	dir        string
	files      []string // N.root.json…, timestamp.json, snapshot and targets
	targets    *metadata.TargetsType
	consistent bool
	expires    time.Time // earliest expiry of root, timestamp, snapshot, targets
}

// openPublished runs the TUF client workflow over dir at now, as a device
// would, and records the files it used.
func openPublished(dir, rootFile string, now time.Time) (*published, error) {
	if rootFile == "" {
		rootFile = filepath.Join(dir, "1.root.json")
	}
	root, err := readLimitedFile(rootFile, 32<<20)
	if err != nil {
		return nil, fmt.Errorf("trusted image root: %w", err)
	}
	tm, err := trustedmetadata.New(root)
	if err != nil {
		return nil, fmt.Errorf("trusted image root %s: %w", rootFile, err)
	}
	tm.RefTime = now
	p := &published{dir: dir}
	if err := p.walkRoots(tm); err != nil {
		return nil, err
	}
	if err := p.topLevel(tm); err != nil {
		return nil, err
	}
	p.expires = slices.MinFunc([]time.Time{tm.Root.Signed.Expires, tm.Timestamp.Signed.Expires,
		tm.Snapshot.Signed.Expires, tm.Targets[metadata.TARGETS].Signed.Expires}, time.Time.Compare)
	return p, nil
}

func (p *published) read(name string) ([]byte, error) {
	return readLimitedFile(filepath.Join(p.dir, name), 32<<20)
}

// walkRoots takes the root chain to the newest root; the bundle carries
// every version, since devices may hold any of them.
func (p *published) walkRoots(tm *trustedmetadata.TrustedMetadata) error {
	for {
		next := tm.Root.Signed.Version + 1
		name := strconv.FormatInt(next, 10) + ".root.json"
		data, err := p.read(name)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("image repository: %w", err)
		}
		if _, err := tm.UpdateRoot(data); err != nil {
			return fmt.Errorf("image repository root %d: %w", next, err)
		}
	}
	for v := int64(1); v <= tm.Root.Signed.Version; v++ {
		name := strconv.FormatInt(v, 10) + ".root.json"
		if _, err := os.Stat(filepath.Join(p.dir, name)); err == nil {
			p.files = append(p.files, name)
		}
	}
	p.consistent = tm.Root.Signed.ConsistentSnapshot
	return nil
}

func (p *published) topLevel(tm *trustedmetadata.TrustedMetadata) error {
	steps := []struct {
		role   string
		name   func() string
		update func([]byte) error
	}{
		{metadata.TIMESTAMP, func() string { return "timestamp.json" }, func(b []byte) error { _, err := tm.UpdateTimestamp(b); return err }},
		{metadata.SNAPSHOT, func() string { return p.versioned(metadata.SNAPSHOT, tm.Timestamp.Signed.Meta["snapshot.json"]) },
			func(b []byte) error { _, err := tm.UpdateSnapshot(b, false); return err }},
		{metadata.TARGETS, func() string { return p.versioned(metadata.TARGETS, tm.Snapshot.Signed.Meta["targets.json"]) },
			func(b []byte) error { _, err := tm.UpdateTargets(b); return err }},
	}
	for _, s := range steps {
		name := s.name()
		data, err := p.read(name)
		if err != nil {
			return fmt.Errorf("image repository %s: %w", s.role, err)
		}
		if err := s.update(data); err != nil {
			return fmt.Errorf("image repository %s (%s): %w", s.role, name, err)
		}
		p.files = append(p.files, name)
	}
	p.targets = &tm.Targets[metadata.TARGETS].Signed
	return nil
}

func (p *published) versioned(role string, m *metadata.MetaFiles) string {
	if p.consistent && m != nil {
		return strconv.FormatInt(m.Version, 10) + "." + role + ".json"
	}
	return role + ".json"
}

// target returns the release's signed entry and custom fields.
func (p *published) target(name string) (*metadata.TargetFiles, *trust.TargetCustom, error) {
	tf := p.targets.Targets[name]
	if tf == nil {
		return nil, nil, fmt.Errorf("%w: the image repository's targets have no %q (delegated targets are not bundled)", trust.ErrNotFound, name)
	}
	c, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(tf.Hashes["sha256"]) != sha256.Size {
		return nil, nil, fmt.Errorf("%w: %s has no sha256", trust.ErrInvalid, name)
	}
	return tf, c, nil
}

// payloadName is the payload's name as devices ask for it (consistent
// snapshots: HASH.NAME, TUF 5.7.3) and as koshin repo publish stores it.
func (p *published) payloadName(name string, tf *metadata.TargetFiles) string {
	if p.consistent {
		return hex.EncodeToString(tf.Hashes["sha256"]) + "." + name
	}
	return name
}

// writeBundle writes the manifest, the image metadata, the director's
// root chain, the instructions and the payload, checking the payload's
// signed length and hash on the way.
func writeBundle(w io.Writer, man bundle.Manifest, p *published, d *repo.Director, instr map[string][]byte,
	name string, tf *metadata.TargetFiles) error {
	bw, err := bundle.NewWriter(w, man)
	if err != nil {
		return err
	}
	for _, f := range p.files {
		data, err := p.read(f)
		if err != nil {
			return err
		}
		if err := bw.Add(bundle.ImagePath(f), data); err != nil {
			return err
		}
	}
	for v := int64(1); v <= d.Version(); v++ {
		root, err := d.RootVersion(v)
		if err != nil {
			return err
		}
		if err := bw.Add(bundle.DirectorPath(strconv.FormatInt(v, 10)+".root.json"), root); err != nil {
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(instr)) {
		if err := bw.Add(bundle.InstructionPath(id), instr[id]); err != nil {
			return err
		}
	}
	if err := addPayload(bw, p, name, tf); err != nil {
		return err
	}
	return bw.Close()
}

func addPayload(bw *bundle.Writer, p *published, name string, tf *metadata.TargetFiles) error {
	file := p.payloadName(name, tf)
	// koshin repo publish always names payloads HASH.NAME.
	path := filepath.Join(p.dir, "targets", hex.EncodeToString(tf.Hashes["sha256"])+"."+name)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("payload of %s: %w", name, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != tf.Length {
		return fmt.Errorf("%w: published payload %s does not have the signed %d bytes", trust.ErrMismatch, path, tf.Length)
	}
	h := sha256.New()
	if err := bw.AddFrom(bundle.TargetPath(file), tf.Length, io.TeeReader(f, h)); err != nil {
		return err
	}
	if !bytes.Equal(h.Sum(nil), tf.Hashes["sha256"]) {
		return fmt.Errorf("%w: published payload %s does not hash to its signed sha256", trust.ErrMismatch, path)
	}
	return nil
}
