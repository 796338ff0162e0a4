package trusttest

import (
	"slices"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// DirectorExpiry is how long a director instruction stays valid.
const DirectorExpiry = 24 * time.Hour

// DirectorTargets starts the director targets document for one check-in:
// the next version for the device, expiring DirectorExpiry after Now, bound
// to deviceID and nonce, with no targets yet. Sign it with SignTargets.
func (r *Repo) DirectorTargets(deviceID, nonce string) *metadata.Metadata[metadata.TargetsType] {
	r.dirVersion[deviceID]++
	md := metadata.Targets(r.opt.Now.Add(DirectorExpiry))
	md.Signed.Version = r.dirVersion[deviceID]
	trust.SetDirectorInfo(&md.Signed, trust.DirectorInfo{DeviceID: deviceID, Nonce: nonce})
	return md
}

// Instruction returns the director target that agrees with image target
// img for a device of hardwareID: same length and hashes, and the
// must-match custom fields copied from img's signed custom object.
func (r *Repo) Instruction(img *metadata.TargetFiles, hardwareID string) *metadata.TargetFiles {
	r.tb.Helper()
	ic, err := trust.ParseTargetCustom(img.Custom)
	if err != nil {
		r.tb.Fatalf("image target %q: %v", img.Path, err)
	}
	dc := &trust.DirectorCustom{HardwareID: hardwareID, Component: ic.Component,
		ReleaseCounter: ic.ReleaseCounter, Channel: ic.Channel}
	out := metadata.TargetFile()
	out.Path, out.Length, out.Custom = img.Path, img.Length, dc.Raw()
	for alg, h := range img.Hashes {
		out.Hashes[alg] = slices.Clone(h)
	}
	return out
}

// SignTargets signs a director targets document with the director's
// targets keys.
func (r *Repo) SignTargets(md *metadata.Metadata[metadata.TargetsType]) []byte {
	r.tb.Helper()
	return Sign(r.tb, md, r.Signers[metadata.TARGETS]...)
}

// Instruct is the honest director: a signed instruction for dev, echoing
// nonce, naming the given targets of image repository img (working copy).
func (r *Repo) Instruct(img *Repo, dev trust.Device, nonce string, names ...string) []byte {
	r.tb.Helper()
	md := r.DirectorTargets(dev.ID, nonce)
	for _, name := range names {
		t := img.Targets.Signed.Targets[name]
		if t == nil {
			r.tb.Fatalf("image repository has no target %q", name)
		}
		md.Signed.Targets[name] = r.Instruction(t, dev.HardwareID)
	}
	return r.SignTargets(md)
}
