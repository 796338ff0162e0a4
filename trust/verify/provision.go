package verify

import (
	"fmt"
	"path/filepath"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Provision writes a device's initial trusted roots into dir: the image
// repository root to dir/image/root.json and the director root to
// dir/director/root.json. It is the factory step that anchors all later
// verification (CCDS HLC01), so it refuses
//
//   - a root whose signed channel is not the device's (a production device
//     never gets a dev root: CCDS UPC04) → trust.ErrWrongChannel;
//   - a root not signed by a threshold of its own root keys, or with a role
//     whose threshold distinct keys cannot meet → trust.ErrThreshold;
//   - a device that already holds an image root → ErrProvisioned.
//
// An expired root is accepted: a device may sit in a warehouse, and its
// first refresh walks the chain to the current root.
func Provision(dir string, imageRoot, directorRoot []byte, channel trust.Channel) error {
	if err := channel.Validate(); err != nil {
		return err
	}
	img := store{dir: filepath.Join(dir, imageSubdir)}
	dirs := store{dir: filepath.Join(dir, directorSubdir)}
	done, err := img.exists(metadata.ROOT)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if done {
		return fmt.Errorf("provision %s: %w", dir, ErrProvisioned)
	}
	if err := checkInitialRoot(imageRoot, &rootPolicy{channel: channel, roles: imageRoles}); err != nil {
		return fmt.Errorf("provision: image root: %w", err)
	}
	if err := checkInitialRoot(directorRoot, &rootPolicy{channel: channel, roles: directorRoles}); err != nil {
		return fmt.Errorf("provision: director root: %w", err)
	}
	return writeRoots(img, dirs, imageRoot, directorRoot)
}

// writeRoots writes the image root last: its presence is what marks the
// device provisioned, so a power cut in between leaves a device that can
// simply be provisioned again.
func writeRoots(img, dirs store, imageRoot, directorRoot []byte) error {
	for _, s := range []store{img, dirs} {
		if err := s.mkdir(); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}
	if err := dirs.write(metadata.ROOT, directorRoot); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if err := img.write(metadata.ROOT, imageRoot); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	return nil
}

// checkInitialRoot requires a root that verifies by itself and passes the
// device policy.
func checkInitialRoot(data []byte, p *rootPolicy) error {
	if len(data) > DefaultMaxRootSize {
		return fmt.Errorf("%w: root is %d bytes, limit %d", trust.ErrTooLong, len(data), DefaultMaxRootSize)
	}
	var tm *trustedmetadata.TrustedMetadata
	err := guard(func() (err error) {
		tm, err = trustedmetadata.New(data)
		return err
	})
	if err != nil {
		return err
	}
	return p.check(tm.Root)
}
