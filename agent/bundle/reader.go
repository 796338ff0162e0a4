package bundle

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/koshin-ota/koshin/trust"
)

// Format constants.
const (
	ManifestName = "koshin-bundle.json"
	// FormatVersion is the manifest format this package reads and writes.
	FormatVersion = 1
	// MaxEntries bounds the tar entries of a bundle (a fleet bundle holds
	// one instruction per device).
	MaxEntries = 16384
	// maxNameLen fits "targets/" + 64 hex + "." + a 1024-byte target name.
	maxNameLen   = 1200
	maxNameBytes = 4 << 20
	maxManifest  = 64 << 10
	// MaxInstruction bounds one director instruction (verify's default).
	MaxInstruction = 256 << 10
)

// URLPrefix prefixes the URLs a Bundle answers as a verify.Fetcher:
// bundle:/image/timestamp.json names the entry image/timestamp.json.
const URLPrefix = "bundle:/"

// URLs for verify.Config.
const (
	ImageURL    = URLPrefix + "image"
	DirectorURL = URLPrefix + "director"
	TargetsURL  = URLPrefix + "targets"
)

// ErrFormat wraps every error about a file that is not a well-formed
// bundle. It also wraps trust.ErrInvalid: a malformed bundle is an invalid
// update.
var ErrFormat = fmt.Errorf("%w: not a well-formed bundle", trust.ErrInvalid)

// Manifest is the bundle's first entry.
type Manifest struct {
	Format int `json:"format"`
	// Description is free text for people (at most 1 KiB).
	Description string `json:"description,omitempty"`
}

type entry struct{ off, size int64 }

// Bundle is an opened bundle: an index of its entries over the file. The
// content is not trusted by being in the index; the verifier decides.
type Bundle struct {
	Manifest Manifest
	r        io.ReaderAt
	size     int64
	entries  map[string]entry
	closer   io.Closer
}

// Open opens a bundle file, which must be a regular file.
func Open(path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%w: %s is not a regular file", ErrFormat, path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	b, err := Read(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	b.closer = f
	return b, nil
}

// Close closes the file Open opened.
func (b *Bundle) Close() error {
	if b.closer == nil {
		return nil
	}
	return b.closer.Close()
}

// Read indexes the bundle in r, size bytes long. It reads the tar headers
// and the manifest, not the payloads.
func Read(r io.ReaderAt, size int64) (*Bundle, error) {
	b := &Bundle{r: r, size: size, entries: map[string]entry{}}
	sr := io.NewSectionReader(r, 0, size)
	tr := tar.NewReader(sr)
	nameBytes, count := 0, 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if count++; count > MaxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrFormat, MaxEntries)
		}
		if nameBytes += len(h.Name); nameBytes > maxNameBytes {
			return nil, fmt.Errorf("%w: entry names exceed %d bytes", ErrFormat, maxNameBytes)
		}
		// tar.Reader reads exactly the header blocks from the section
		// reader, so its position is now the entry's first data byte.
		off, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		if err := b.add(h, off, count == 1); err != nil {
			return nil, err
		}
	}
	if count == 0 {
		return nil, fmt.Errorf("%w: empty", ErrFormat)
	}
	return b, b.readManifest()
}

// add checks one header and indexes a regular file.
func (b *Bundle) add(h *tar.Header, off int64, first bool) error {
	name := strings.TrimSuffix(h.Name, "/")
	if err := checkName(name); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir, tar.TypeXGlobalHeader:
		if first {
			return fmt.Errorf("%w: %s must be the first entry", ErrFormat, ManifestName)
		}
		return nil
	case tar.TypeReg:
	default:
		return fmt.Errorf("%w: %q is not a regular file or directory", ErrFormat, name)
	}
	for k := range h.PAXRecords {
		// A sparse file's stored bytes are not its content.
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("%w: %q is a sparse file", ErrFormat, name)
		}
	}
	if first != (name == ManifestName) {
		return fmt.Errorf("%w: %s must be the first entry", ErrFormat, ManifestName)
	}
	if h.Size < 0 || off < 0 || h.Size > b.size-off {
		return fmt.Errorf("%w: %q extends past the end of the file", ErrFormat, name)
	}
	if _, dup := b.entries[name]; dup {
		return fmt.Errorf("%w: %q appears twice", ErrFormat, name)
	}
	b.entries[name] = entry{off: off, size: h.Size}
	return nil
}

// checkName accepts clean relative slash-separated paths of printable
// characters.
func checkName(name string) error {
	if len(name) > maxNameLen || !utf8.ValidString(name) || !fs.ValidPath(name) || name == "." {
		return fmt.Errorf("%w: entry name %.80q", ErrFormat, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: entry name %.80q has a control character or backslash", ErrFormat, name)
		}
	}
	return nil
}

func (b *Bundle) readManifest() error {
	data, err := b.read(ManifestName, maxManifest)
	if err != nil {
		return fmt.Errorf("%w: manifest: %v", ErrFormat, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b.Manifest); err != nil || dec.More() {
		return fmt.Errorf("%w: manifest is not a JSON object of known fields", ErrFormat)
	}
	if b.Manifest.Format != FormatVersion {
		return fmt.Errorf("%w: manifest format %d, this agent reads %d", ErrFormat, b.Manifest.Format, FormatVersion)
	}
	if len(b.Manifest.Description) > 1024 {
		return fmt.Errorf("%w: manifest description longer than 1 KiB", ErrFormat)
	}
	return nil
}

// Names returns the regular files of the bundle.
func (b *Bundle) Names() []string {
	out := make([]string, 0, len(b.entries))
	for n := range b.entries {
		out = append(out, n)
	}
	return out
}

// read returns an entry of at most max bytes.
func (b *Bundle) read(name string, max int64) ([]byte, error) {
	e, ok := b.entries[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s not in bundle", trust.ErrNotFound, name)
	}
	if e.size > max {
		return nil, fmt.Errorf("%w: %s has %d bytes, limit %d", trust.ErrTooLong, name, e.size, max)
	}
	data := make([]byte, e.size)
	if _, err := b.r.ReadAt(data, e.off); err != nil && !(errors.Is(err, io.EOF) && e.size == 0) {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// Instruction returns the director instruction for deviceID: its own entry
// of a fleet bundle, else the bundle's single instruction (which the
// verifier then checks is signed for this device).
func (b *Bundle) Instruction(deviceID string) ([]byte, error) {
	if err := trust.ValidateID("device ID", deviceID); err != nil {
		return nil, err
	}
	for _, name := range []string{InstructionPath(deviceID), SingleInstructionPath} {
		if _, ok := b.entries[name]; ok {
			return b.read(name, MaxInstruction)
		}
	}
	return nil, fmt.Errorf("%w: the bundle holds no instruction for device %s", trust.ErrNoInstruction, deviceID)
}
