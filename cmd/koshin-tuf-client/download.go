package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/koshin-ota/koshin/trust/verify"
)

// download refreshes, looks the target up (through delegations), and
// streams it through a PayloadReader into TARGET_DIR/<escaped name>. The
// file appears only once it verified completely.
func (m *Main) download(ctx context.Context) error {
	c, err := m.refresh(ctx)
	if err != nil {
		return err
	}
	in, err := c.Target(ctx, m.targetName)
	if err != nil {
		return fmt.Errorf("target %q: %w", m.targetName, err)
	}
	dest := filepath.Join(m.target, url.PathEscape(m.targetName))
	if cached(dest, in) {
		fmt.Fprintf(m.Stdout, "%s is up to date\n", dest)
		return nil
	}
	rc, err := m.fetcher().Open(ctx, in.URL, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	err = atomicfile.Write(dest, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, verify.NewPayloadReader(rc, in, verify.PayloadOptions{}))
		return err
	})
	if err != nil {
		return fmt.Errorf("download %q: %w", m.targetName, err)
	}
	fmt.Fprintf(m.Stdout, "downloaded %s\n", dest)
	return nil
}

// cached reports whether dest already holds the verified target.
func cached(dest string, in verify.Install) bool {
	f, err := os.Open(dest)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, verify.NewPayloadReader(f, in, verify.PayloadOptions{}))
	return err == nil
}
