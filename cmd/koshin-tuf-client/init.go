package main

import (
	"fmt"
	"io"
	"os"

	"github.com/koshin-ota/koshin/trust/verify"
)

// initRoot stores the trusted root; nothing is fetched or verified yet (the
// conformance contract), refresh verifies it before trusting anything.
func (m *Main) initRoot(rootFile string) error {
	f, err := os.Open(rootFile)
	if err != nil {
		return err
	}
	defer f.Close()
	root, err := io.ReadAll(io.LimitReader(f, verify.DefaultMaxRootSize+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", rootFile, err)
	}
	if err := verify.InitImageClient(m.metadataDir, root); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "initialised %s\n", m.metadataDir)
	return nil
}
