package agent

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/koshin-ota/koshin/deviceapi"
)

// checkIn sends the signed report with a fresh nonce and returns the
// validated answer and the nonce the director must echo.
func (e *Engine) checkIn(ctx context.Context) (deviceapi.CheckInResponse, string, error) {
	var resp deviceapi.CheckInResponse
	bs, err := e.cfg.Bootloader.State()
	if err != nil {
		return resp, "", fmt.Errorf("bootloader state: %w", err)
	}
	nonce, err := e.randomHex(16)
	if err != nil {
		return resp, "", err
	}
	ci, err := e.signedReport(bs)
	if err != nil {
		return resp, "", err
	}
	ci.Nonce = nonce
	resp, err = e.cfg.Server.CheckIn(ctx, ci)
	if err != nil {
		return resp, "", fmt.Errorf("check in: %w", err)
	}
	if err := resp.Validate(); err != nil {
		return resp, "", fmt.Errorf("check-in response: %w", err)
	}
	return resp, nonce, nil
}

// signedReport returns the current report and its signature. The report
// is signed again only when its content changed since the last signature
// (the nonce travels beside it): a device key in a TPM or secure element
// is slow and may wear, and the server verifies each distinct report once.
func (e *Engine) signedReport(bs BootState) (deviceapi.CheckIn, error) {
	rep := e.report(bs)
	if err := rep.Validate(); err != nil {
		return deviceapi.CheckIn{}, fmt.Errorf("agent: own report invalid: %w", err)
	}
	content, err := json.Marshal(rep) // Time still zero: the content alone
	if err != nil {
		return deviceapi.CheckIn{}, err
	}
	if s := e.signed; s != nil && bytes.Equal(s.content, content) {
		return deviceapi.CheckIn{Report: s.body, Signature: s.sig}, nil
	}
	rep.Time = e.cfg.Now().UTC()
	body, err := json.Marshal(rep)
	if err != nil {
		return deviceapi.CheckIn{}, err
	}
	sig, err := signReport(e.cfg.Signer, e.cfg.Rand, body)
	if err != nil {
		return deviceapi.CheckIn{}, fmt.Errorf("sign report: %w", err)
	}
	e.signed = &signed{content: content, body: body, sig: sig}
	return deviceapi.CheckIn{Report: body, Signature: sig}, nil
}

// signed is the last report the engine signed.
type signed struct {
	content   []byte // the report without its time
	body, sig []byte
}

// report is the device's state now, without the signing time.
func (e *Engine) report(bs BootState) deviceapi.Report {
	rep := deviceapi.Report{
		DeviceID:     e.cfg.DeviceID,
		HardwareID:   e.cfg.HardwareID,
		Components:   e.components(),
		Slot:         deviceapi.SlotState{Active: bs.Booted, Trial: bs.Trial, Healthy: !bs.Trial},
		Settings:     e.settings(),
		Security:     e.security(),
		AgentVersion: e.cfg.AgentVersion,
	}
	if tx := e.j.Tx; tx != nil {
		rep.Update = &deviceapi.UpdateState{Target: tx.Target.Name, State: string(tx.State)}
	}
	return rep
}

// security is the security state every report carries (CCDS SSS01, SSS02;
// EN 303 645 5.7-2).
func (e *Engine) security() deviceapi.Security {
	return deviceapi.Security{BootIntegrity: e.cfg.BootIntegrity(), FailedVerifications: e.j.FailedVerifications,
		Lockouts: e.lockouts(), Restricted: e.Restricted()}
}

// components lists what is installed: the last commit of each component,
// else the factory image.
func (e *Engine) components() []deviceapi.Component {
	all := maps.Clone(e.cfg.Factory)
	if all == nil {
		all = map[string]Installed{}
	}
	maps.Copy(all, e.j.Installed)
	var out []deviceapi.Component
	for _, name := range slices.Sorted(maps.Keys(all)) {
		in := all[name]
		out = append(out, deviceapi.Component{Name: name, Version: in.Version, ReleaseCounter: in.ReleaseCounter, Target: in.Target})
	}
	return out
}

// installedSHA256 returns the digest of component's installed image.
func (e *Engine) installedSHA256(component string) string {
	if in, ok := e.j.Installed[component]; ok {
		return in.SHA256
	}
	return e.cfg.Factory[component].SHA256
}

// signReport signs with Ed25519 (pure) or with ECDSA/RSA over SHA-256, the
// schemes deviceapi.CheckIn documents.
func signReport(s crypto.Signer, rand io.Reader, msg []byte) ([]byte, error) {
	if _, ok := s.Public().(ed25519.PublicKey); ok {
		return s.Sign(rand, msg, crypto.Hash(0))
	}
	sum := sha256.Sum256(msg)
	return s.Sign(rand, sum[:], crypto.SHA256)
}

func (e *Engine) randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(e.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("agent: randomness: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// newID returns a random identifier for transactions and events.
func (e *Engine) newID() string {
	id, err := e.randomHex(8)
	if err != nil {
		// IDs need uniqueness, not secrecy; a failing RNG is reported
		// where it matters (nonces), so fall back to the clock here.
		return fmt.Sprintf("t%x", e.cfg.Now().UnixNano())
	}
	return id
}
