package httpapi

import (
	"context"
	"crypto/ecdh"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/rollout"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
	"github.com/koshin-ota/koshin/trust/repo"
)

// ContentKeys gives the director the content key of an encrypted release,
// to wrap for each device (docs/encryption.md).
type ContentKeys interface {
	// ContentKey returns the release's 32-byte content key; ENOTFOUND if
	// the server does not hold it.
	ContentKey(ctx context.Context, rel *koshin.Release) ([]byte, error)
}

// direct signs the director targets document of offer for device d and the
// nonce it sent, and puts it into resp. The document names the release
// with the image repository's length, hashes and must-match fields as
// imported, so the device's agreement check (trust.Agree) compares like
// with like; for an encrypted release it carries the content key wrapped
// to this device alone (EN 303 645 5.5-7).
//
// A release this device cannot be given (encrypted, but the device has no
// encryption key or the server no content key) is logged and not offered:
// the device gets "nothing to do" and its assignment runs into its silence
// deadline, where the threshold and the operator see it.
func (s *Server) direct(ctx context.Context, resp *deviceapi.CheckInResponse, d *koshin.Device, nonce string, offer *rollout.Offer, now time.Time) error {
	rel, err := s.Store.FindReleaseByName(ctx, offer.ReleaseName)
	if err != nil {
		return err
	}
	target, err := s.directorTarget(ctx, d, rel)
	if errors.Is(err, errUndeliverable) {
		s.Log.Error("cannot offer release to device", "device", d.ID, "release", rel.Name, "err", err)
		return nil
	} else if err != nil {
		return err
	}
	version := max(1, now.Unix()) // never decreases for a device while the clock does not
	doc, err := s.Director.SignTargets(trust.DirectorInfo{DeviceID: d.ID, Nonce: nonce}, version,
		now.Add(s.Config.DirectorExpiry), []repo.DirectorTarget{target})
	if err != nil {
		return koshin.Internal(err)
	}
	resp.Director = rawJSON(doc)
	resp.Mode = deviceapi.Mode(offer.Mode)
	resp.Rollout = strconv.FormatInt(offer.RolloutID, 10)
	return nil
}

var errUndeliverable = errors.New("release cannot be delivered to this device")

func (s *Server) directorTarget(ctx context.Context, d *koshin.Device, rel *koshin.Release) (repo.DirectorTarget, error) {
	hashes := metadata.Hashes{}
	for alg, h := range rel.Hashes {
		b, err := hex.DecodeString(h)
		if err != nil {
			return repo.DirectorTarget{}, koshin.Internal(err)
		}
		hashes[alg] = b
	}
	t := repo.DirectorTarget{Name: rel.Name, Length: rel.Length, Hashes: hashes, Custom: trust.DirectorCustom{
		HardwareID: d.HardwareID, Component: rel.Component, ReleaseCounter: rel.ReleaseCounter, Channel: trust.Channel(rel.Channel),
	}}
	if !rel.Encrypted {
		return t, nil
	}
	wrapped, err := s.wrapKey(ctx, d, rel, hashes["sha256"])
	if err != nil {
		return t, err
	}
	t.Custom.WrappedKey = wrapped
	return t, nil
}

// wrapKey seals the release's content key to the device (HPKE, bound to
// device ID and release ID).
func (s *Server) wrapKey(ctx context.Context, d *koshin.Device, rel *koshin.Release, sha []byte) ([]byte, error) {
	if len(d.EncryptionKey) == 0 {
		return nil, errors.Join(errUndeliverable, errors.New("device has no encryption key"))
	}
	if s.ContentKeys == nil {
		return nil, errors.Join(errUndeliverable, errors.New("no content key store configured"))
	}
	key, err := s.ContentKeys.ContentKey(ctx, rel)
	if err != nil {
		return nil, errors.Join(errUndeliverable, err)
	}
	pub, err := ecdh.X25519().NewPublicKey(d.EncryptionKey)
	if err != nil {
		return nil, errors.Join(errUndeliverable, err)
	}
	rid, err := encryption.ReleaseID(rel.Name, sha)
	if err != nil {
		return nil, koshin.Internal(err)
	}
	wrapped, err := encryption.WrapKey(pub, key, d.ID, rid)
	if err != nil {
		return nil, errors.Join(errUndeliverable, err)
	}
	return wrapped, nil
}
