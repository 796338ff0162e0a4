// Command koshin-tuf-client is a TUF client over koshin's image-repository
// verification path (trust/verify.ImageClient), with the command line the
// TUF conformance suite (theupdateframework/tuf-conformance) drives:
//
//	koshin-tuf-client --metadata-dir DIR init TRUSTED_ROOT
//	koshin-tuf-client --metadata-dir DIR --metadata-url URL refresh
//	koshin-tuf-client --metadata-dir DIR --metadata-url URL \
//	    --target-name NAME --target-base-url URL --target-dir DIR download
//
// It exits 0 on success and 1 on any failure. Trusted metadata lives in
// DIR under non-versioned names (root.json, timestamp.json, ...); a
// downloaded target is stored as TARGET_DIR/<URL-escaped name>, written
// atomically only after its length and hashes verified, and not downloaded
// again while that file still verifies.
//
// The repositories the suite generates are generic TUF repositories: their
// roots carry no koshin channel label. The client therefore runs without
// koshin's root policy unless --channel names the channel the roots must
// carry, which applies the policy a koshin device applies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
)

func main() {
	m := &Main{Now: time.Now, Stdout: os.Stdout, Stderr: os.Stderr}
	os.Exit(m.Run(context.Background(), os.Args[1:]))
}

// Main is one invocation of the client.
type Main struct {
	// Now is the verification clock; Fetcher defaults to a verify.HTTPFetcher.
	Now     func() time.Time
	Fetcher verify.Fetcher
	Stdout  io.Writer
	Stderr  io.Writer

	metadataDir, metadataURL          string
	targetName, targetBaseURL, target string
	channel                           string
}

var errUsage = errors.New("usage: koshin-tuf-client --metadata-dir DIR [--metadata-url URL] [--target-name NAME --target-base-url URL --target-dir DIR] init ROOT | refresh | download")

// Run executes one command and returns the exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	if err := m.run(ctx, args); err != nil {
		fmt.Fprintf(m.Stderr, "koshin-tuf-client: %v\n", err)
		return 1
	}
	return 0
}

func (m *Main) run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("koshin-tuf-client", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.metadataDir, "metadata-dir", "", "directory of trusted metadata")
	fs.StringVar(&m.metadataURL, "metadata-url", "", "repository metadata base URL")
	fs.StringVar(&m.targetName, "target-name", "", "TUF target path to download")
	fs.StringVar(&m.targetBaseURL, "target-base-url", "", "repository targets base URL")
	fs.StringVar(&m.target, "target-dir", "", "directory for downloaded targets")
	fs.StringVar(&m.channel, "channel", "", "require roots signed for this koshin channel (release|dev); empty for generic TUF repositories")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if m.metadataDir == "" || fs.NArg() == 0 {
		return errUsage
	}
	switch cmd, rest := fs.Arg(0), fs.Args()[1:]; {
	case cmd == "init" && len(rest) == 1:
		return m.initRoot(rest[0])
	case cmd == "refresh" && len(rest) == 0 && m.metadataURL != "":
		_, err := m.refresh(ctx)
		return err
	case cmd == "download" && len(rest) == 0 && m.metadataURL != "" && m.targetName != "" && m.targetBaseURL != "" && m.target != "":
		return m.download(ctx)
	default:
		return errUsage
	}
}

// client opens the image client on the metadata directory.
func (m *Main) client() (*verify.ImageClient, error) {
	return verify.NewImageClient(verify.ImageConfig{Dir: m.metadataDir, MetadataURL: m.metadataURL,
		TargetsURL: m.targetBaseURL, Fetcher: m.fetcher(), Now: m.Now, Channel: trust.Channel(m.channel)})
}

func (m *Main) fetcher() verify.Fetcher {
	if m.Fetcher == nil {
		m.Fetcher = &verify.HTTPFetcher{}
	}
	return m.Fetcher
}
