package bundle

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Writer writes a bundle: the manifest first, then entries in the order
// added. It signs nothing and checks no signature; the metadata it is given
// must already be signed (by the image repository's roles and, for the
// instruction, by the director).
type Writer struct {
	tw    *tar.Writer
	names map[string]bool
	// modTime is stamped on every entry; a fixed value keeps bundles of
	// the same content byte-identical.
	modTime time.Time
}

// NewWriter starts a bundle on w with manifest m (Format is set).
func NewWriter(w io.Writer, m Manifest) (*Writer, error) {
	m.Format = FormatVersion
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	bw := &Writer{tw: tar.NewWriter(w), names: map[string]bool{}, modTime: time.Unix(0, 0)}
	return bw, bw.Add(ManifestName, data)
}

// Add writes one entry from memory.
func (w *Writer) Add(name string, data []byte) error {
	return w.AddFrom(name, int64(len(data)), bytes.NewReader(data))
}

// AddFrom writes one entry of size bytes read from r (a payload streamed
// from disk).
func (w *Writer) AddFrom(name string, size int64, r io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	if w.names[name] {
		return fmt.Errorf("%w: %q added twice", ErrFormat, name)
	}
	if len(w.names) >= MaxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrFormat, MaxEntries)
	}
	w.names[name] = true
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: w.modTime, Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("bundle: %s: %w", name, err)
	}
	if n, err := io.CopyN(w.tw, r, size); err != nil {
		return fmt.Errorf("bundle: %s: wrote %d of %d bytes: %w", name, n, size, err)
	}
	return nil
}

// Close writes the end of the archive (not closing the underlying writer).
func (w *Writer) Close() error { return w.tw.Close() }
