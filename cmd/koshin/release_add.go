package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

type releaseFlags struct {
	name, component, version, supportEnd, sbom, advisory, keyOut string
	hardware, advisories                                         []string
	counter                                                      uint64
	security, encrypt                                            bool
}

func newReleaseAddCmd(m *Main) *cobra.Command {
	var f releaseFlags
	c := &cobra.Command{
		Use:   "add FILE --hardware-id HW… --component C --counter N --version V",
		Short: "Stage a payload as a release",
		Long: `Stage FILE as a release in the staged targets. The file is read once,
streaming: it is hashed (SHA-256, SHA-512) while it is copied into the
workspace, so images of any size work.

The release counter is the anti-rollback number devices compare (CCDS
UPC02): it must be above every existing release of the same component that
shares a hardware ID, and at least the floor a revocation left. --version is
informational. The channel is the repository's.

--advisory names a CSAF 2.0 security advisory (JSON) saying which
vulnerabilities the release fixes, and --sbom a CycloneDX SBOM (JSON). Both
are validated, kept in the workspace and published next to the payloads;
their SHA-256 digests are signed into the release, so devices can show
their users why the update matters (EN 303 645 5.3-11) without trusting the
server that hands them the document. An advisory makes the release a
security update and adds its tracking ID and CVE IDs to the signed advisory
IDs; --advisory-id adds IDs without a document.

--encrypt encrypts the payload with a new random content key (chunked
AES-256-GCM); the target then signs the ciphertext, and the plaintext's
length and hash go into its custom fields. The content key is written to
--content-key-out (default DIR/content-keys/NAME.key, 64 hex digits, mode
0600) for the server, which wraps it to each device.`,
		Example: `  koshin release add build/rootfs.img --name rootfs-1.4.0.img --hardware-id board-a --hardware-id board-b \
    --component rootfs --counter 14 --version 1.4.0 --advisory build/KSA-2026-001.csaf.json --support-end 2031-12-31 --sbom build/sbom.cdx.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return m.withRepo(func(r *repo.Repo) error { return m.addRelease(r, args[0], f) })
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.name, "name", "", "target name (default: the file's base name)")
	fl.StringArrayVar(&f.hardware, "hardware-id", nil, "hardware ID the release fits (repeatable, required)")
	fl.StringVar(&f.component, "component", "", "component the payload updates, e.g. rootfs (required)")
	fl.Uint64Var(&f.counter, "counter", 0, "release counter for anti-rollback (required)")
	fl.StringVar(&f.version, "version", "", "human-readable version (required)")
	fl.BoolVar(&f.security, "security", false, "mark as a security update")
	fl.StringVar(&f.advisory, "advisory", "", "CSAF 2.0 advisory `FILE` whose SHA-256 is signed into the release")
	fl.StringArrayVar(&f.advisories, "advisory-id", nil, "advisory `ID` this release fixes, without a document (repeatable)")
	fl.StringVar(&f.supportEnd, "support-end", "", "end of security support for this release, `YYYY-MM-DD`")
	fl.StringVar(&f.sbom, "sbom", "", "CycloneDX SBOM `FILE` whose SHA-256 is signed into the release")
	fl.BoolVar(&f.encrypt, "encrypt", false, "encrypt the payload with a new content key")
	fl.StringVar(&f.keyOut, "content-key-out", "", "with --encrypt: `FILE` for the content key")
	for _, req := range []string{"hardware-id", "component", "counter", "version"} {
		c.MarkFlagRequired(req)
	}
	return c
}

func (m *Main) addRelease(r *repo.Repo, file string, f releaseFlags) error {
	if f.name == "" {
		f.name = filepath.Base(file)
	}
	c := trust.TargetCustom{
		HardwareIDs: f.hardware, Component: f.component, ReleaseCounter: f.counter, Version: f.version,
		Channel: r.Channel(), Security: f.security, Advisories: f.advisories, SupportEnd: f.supportEnd,
	}
	docs, err := readReleaseDocuments(f, &c)
	if err != nil {
		return err
	}
	if err := r.CheckTarget(f.name, c); err != nil {
		return err
	}
	if err := docs.store(r); err != nil {
		return err
	}
	payload, size, cleanup, err := m.releasePayload(r, file, f, &c)
	if err != nil {
		return err
	}
	defer cleanup()
	bar := m.progress(size, "hashing "+f.name)
	if err := r.AddTarget(f.name, payload, c, bar); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "staged release %s (component %s, counter %d, %s channel)\n", f.name, c.Component, c.ReleaseCounter, c.Channel)
	return m.printSignatures(r, "targets")
}

// releasePayload opens the payload to stage: the file itself, or its
// encryption into a temporary file in the workspace.
func (m *Main) releasePayload(r *repo.Repo, file string, f releaseFlags, c *trust.TargetCustom) (io.Reader, int64, func(), error) {
	src, err := os.Open(file)
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := src.Stat()
	if err != nil {
		src.Close()
		return nil, 0, nil, err
	}
	if !f.encrypt {
		return src, fi.Size(), func() { src.Close() }, nil
	}
	defer src.Close()
	return m.encryptPayload(r, src, fi.Size(), f, c)
}

func (m *Main) encryptPayload(r *repo.Repo, src io.Reader, size int64, f releaseFlags, c *trust.TargetCustom) (io.Reader, int64, func(), error) {
	key, err := encryption.NewContentKey()
	if err != nil {
		return nil, 0, nil, err
	}
	defer clear(key)
	keyOut := f.keyOut
	if keyOut == "" {
		keyOut = filepath.Join(r.Dir(), "content-keys", f.name+".key")
	}
	if err := writeContentKey(keyOut, key); err != nil {
		return nil, 0, nil, err
	}
	tmp, err := os.CreateTemp(r.Dir(), ".encrypt-*")
	if err != nil {
		os.Remove(keyOut)
		return nil, 0, nil, err
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	bar := m.progress(size, "encrypting "+f.name)
	res, err := encryption.Encrypt(tmp, &progressReader{r: src, fn: bar}, key)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		os.Remove(keyOut)
		return nil, 0, nil, err
	}
	c.Encryption, c.PlaintextLength, c.PlaintextSHA256 = trust.EncryptionScheme, res.PlaintextLength, res.PlaintextSHA256
	fmt.Fprintf(m.Stdout, "content key written to %s (keep it secret; the server wraps it per device)\n", keyOut)
	return tmp, res.CiphertextLength, cleanup, nil
}

// writeContentKey writes the key as hex, mode 0600, never replacing a file.
func writeContentKey(name string, key []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("content key: %w", err)
	}
	_, err = fmt.Fprintln(f, hex.EncodeToString(key))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("content key: %w", err)
	}
	return nil
}

// progress returns a callback drawing a progress bar on a terminal, or nil
// when stdout is a file or pipe.
func (m *Main) progress(size int64, what string) func(int64) {
	if !isTerminal(m.Stdout) {
		return nil
	}
	bar := progressbar.NewOptions64(size, progressbar.OptionSetWriter(m.Stdout), progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true), progressbar.OptionClearOnFinish())
	return func(n int64) { bar.Set64(n) }
}

// progressReader reports the running count of bytes read.
type progressReader struct {
	r  io.Reader
	fn func(int64)
	n  int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.fn != nil {
		p.fn(p.n)
	}
	return n, err
}
