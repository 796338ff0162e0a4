package sim

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// maxFactoryImage bounds the factory image the simulator holds in memory
// (once, shared by every device's set-up).
const maxFactoryImage = 256 << 20

// loadRoots takes the configured roots, or fetches version 1 of each from
// the server with device 0's connection, trusting them on first use: the
// TLS channel is pinned to the server CA, so they are the server's.
func (f *Fleet) loadRoots(ctx context.Context, d0 *device) error {
	f.imageRoot, f.directorRoot = f.cfg.ImageRoot, f.cfg.DirectorRoot
	var err error
	if f.imageRoot == nil {
		if f.imageRoot, err = get(ctx, d0.fetch, f.cfg.ServerURL+deviceapi.PathImage+"1.root.json"); err != nil {
			return fmt.Errorf("sim: image root: %w", err)
		}
		f.log.Warn("image root fetched from the server (trust on first use); pass it to pin it")
	}
	if f.directorRoot == nil {
		if f.directorRoot, err = get(ctx, d0.fetch, f.cfg.ServerURL+deviceapi.PathDirector+"1.root.json"); err != nil {
			return fmt.Errorf("sim: director root: %w", err)
		}
	}
	return nil
}

func get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, verify.DefaultMaxRootSize))
}

// loadFactory finds the factory target in the image repository, verified
// against the image root like any download, and keeps its bytes for the
// devices' slot A.
func (f *Fleet) loadFactory(ctx context.Context, d0 *device) error {
	dir := filepath.Join(f.dir, "factory-metadata")
	if err := verify.InitImageClient(dir, f.imageRoot); err != nil {
		return err
	}
	fetch := &verify.HTTPFetcher{Client: d0.fetch}
	c, err := verify.NewImageClient(verify.ImageConfig{Dir: dir, MetadataURL: f.cfg.ServerURL + "/device/v1/image",
		TargetsURL: f.cfg.ServerURL + "/device/v1/targets", Fetcher: fetch, Now: time.Now, Channel: f.cfg.Channel})
	if err != nil {
		return err
	}
	if err := c.Refresh(ctx); err != nil {
		return fmt.Errorf("sim: image repository: %w", err)
	}
	in, err := c.Target(ctx, f.cfg.Factory)
	if err != nil {
		return fmt.Errorf("sim: factory target %q: %w", f.cfg.Factory, err)
	}
	if in.Custom, err = signedCustom(dir, f.cfg.Factory); err != nil {
		return err
	}
	if !slices.Contains(in.Custom.HardwareIDs, f.cfg.HardwareID) {
		return fmt.Errorf("sim: factory target %q is not signed for hardware %q", f.cfg.Factory, f.cfg.HardwareID)
	}
	if in.Length > maxFactoryImage || in.Custom.Encryption != "" {
		return fmt.Errorf("sim: factory target %q must be a plain image of at most %d bytes", f.cfg.Factory, maxFactoryImage)
	}
	body, err := fetch.Open(ctx, in.URL, 0)
	if err != nil {
		return err
	}
	defer body.Close()
	img, err := io.ReadAll(verify.NewPayloadReader(body, in, verify.PayloadOptions{}))
	if err != nil {
		return fmt.Errorf("sim: factory image: %w", err)
	}
	sha := hex.EncodeToString(in.Hashes["sha256"])
	f.factory = factoryImage{image: img, custom: in.Custom, installed: map[string]agent.Installed{
		in.Custom.Component: {Target: in.Name, Version: in.Custom.Version, ReleaseCounter: in.Custom.ReleaseCounter, SHA256: sha}}}
	f.targets[sha] = in.Length
	f.slotSize = f.cfg.SlotSize
	if f.slotSize == 0 {
		f.slotSize = (in.Length + in.Length/4 + 4095) &^ 4095
	}
	if f.slotSize < in.Length {
		return fmt.Errorf("sim: slots of %d bytes cannot hold the factory image (%d bytes)", f.slotSize, in.Length)
	}
	// A cut lands at a random one of the next write points; an update
	// passes a few per 16 KiB of payload (slot write, sync, journal) and a
	// dozen more (metadata, bootloader, counter, journal transitions).
	f.cutWindow = 12 + 3*int(in.Length/(16<<10)+1)
	return nil
}

// signedCustom reads a target's koshin custom fields from the top-level
// targets metadata the image client verified and persisted in dir (the
// client itself serves generic TUF repositories and leaves them out).
func signedCustom(dir, name string) (trust.TargetCustom, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "targets.json"))
	if err != nil {
		return trust.TargetCustom{}, err
	}
	md, err := metadata.Targets().FromBytes(raw)
	if err != nil {
		return trust.TargetCustom{}, fmt.Errorf("sim: targets metadata: %w", err)
	}
	tf, ok := md.Signed.Targets[name]
	if !ok {
		return trust.TargetCustom{}, fmt.Errorf("sim: factory target %q is not in the top-level targets role", name)
	}
	c, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil {
		return trust.TargetCustom{}, fmt.Errorf("sim: factory target %q: %w", name, err)
	}
	return *c, nil
}
