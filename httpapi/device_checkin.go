package httpapi

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
)

// checkIn takes a device's signed report (CCDS SSS01, SSS04: only the
// device could have written it), stores it as the device's inventory and
// security state, and answers with the poll schedule and, when the device
// has an update to work on, director metadata signed for this device and
// the nonce it just sent.
func (s *Server) checkIn(w http.ResponseWriter, r *http.Request, d *koshin.Device) error {
	var ci deviceapi.CheckIn
	if err := decodeJSON(w, r, &ci, deviceapi.MaxRequestBody); err != nil {
		s.Metrics.reject(apiDevice, "invalid-report")
		return err
	}
	now := s.now()
	if err := s.recordReport(r, d, &ci, now); err != nil {
		return err
	}
	resp := deviceapi.CheckInResponse{PollInterval: s.pollInterval(d), PollJitter: s.pollJitter(d)}
	offer, err := s.Rollouts.Instruction(r.Context(), d.ID, now)
	if err != nil {
		return err
	}
	answer := "none"
	if offer != nil {
		if err := s.direct(r.Context(), &resp, d, ci.Nonce, offer, now); err != nil {
			return err
		}
		if resp.Director != nil {
			answer = "offer"
		}
	}
	s.Metrics.checkins.WithLabelValues(answer).Inc()
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// recordReport stores the check-in's report. A report this server already
// verified and stored for the device (same bytes, same signature) only
// marks the device seen; any other is verified with the enrolled key,
// validated and stored first.
func (s *Server) recordReport(r *http.Request, d *koshin.Device, ci *deviceapi.CheckIn, now time.Time) error {
	if err := ci.Validate(); err != nil {
		s.Metrics.reject(apiDevice, "invalid-report")
		return koshin.Errorf(koshin.EINVALID, "Check-in: %v.", err)
	}
	sum := reportSum(ci.Report, ci.Signature)
	if s.known.has(d.ID, sum) {
		return s.touch(r.Context(), d.ID, now)
	}
	// The certificate's key, parsed once per connection by the TLS layer,
	// is the enrolled key: authDevice found the device by its hash.
	rep, err := checkReport(ci, d, r.TLS.PeerCertificates[0].PublicKey)
	if err != nil {
		s.Metrics.reject(apiDevice, "invalid-report")
		return err
	}
	if _, err := s.Store.RecordDeviceReport(r.Context(), d.ID, inventoryOf(rep), now); err != nil {
		return err
	}
	s.known.remember(d.ID, sum)
	return nil
}

// checkReport verifies the signature over the exact report bytes, then
// decodes and validates the report and checks that it speaks for this
// device. It is the pure part of recordReport, shared with the fuzz test;
// key is d's public key.
func checkReport(ci *deviceapi.CheckIn, d *koshin.Device, key crypto.PublicKey) (*deviceapi.Report, error) {
	if err := ci.Validate(); err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "Check-in: %v.", err)
	}
	if !verifyReport(key, ci.Report, ci.Signature) {
		return nil, koshin.Errorf(koshin.EINVALID, "The report signature does not verify with this device's key.")
	}
	var rep deviceapi.Report
	if err := decodeStrict(ci.Report, &rep); err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "Report: %s", koshin.ErrorMessage(err))
	}
	if err := rep.Validate(); err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "Report: %v.", err)
	}
	if rep.DeviceID != d.ID || rep.HardwareID != d.HardwareID {
		return nil, koshin.Errorf(koshin.EINVALID, "The report names another device or hardware ID than the one enrolled.")
	}
	inv := inventoryOf(&rep)
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	return &rep, nil
}

// verifyReport checks sig over msg: Ed25519 over the bytes, ECDSA (ASN.1)
// over their SHA-256, as deviceapi.CheckIn documents.
func verifyReport(pub crypto.PublicKey, msg, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, sum[:], sig)
	}
	return false
}

// inventoryOf converts the wire report into the domain inventory.
func inventoryOf(rep *deviceapi.Report) koshin.Inventory {
	inv := koshin.Inventory{
		Components: make([]koshin.Component, len(rep.Components)),
		Slot:       koshin.SlotState{Active: rep.Slot.Active, Trial: rep.Slot.Trial, Healthy: rep.Slot.Healthy},
		Settings: koshin.AgentSettings{UpdatesEnabled: rep.Settings.UpdatesEnabled, Automatic: rep.Settings.Automatic,
			Notifications: rep.Settings.Notifications, NotifyTarget: rep.Settings.NotifyTarget},
		Security: koshin.SecurityState{BootIntegrity: koshin.BootIntegrity(rep.Security.BootIntegrity),
			FailedVerifications: rep.Security.FailedVerifications, Lockouts: rep.Security.Lockouts, Restricted: rep.Security.Restricted},
		AgentVersion: rep.AgentVersion,
	}
	for i, c := range rep.Components {
		inv.Components[i] = koshin.Component{Name: c.Name, Version: c.Version, ReleaseCounter: c.ReleaseCounter, Target: c.Target}
	}
	if rep.Update != nil {
		inv.Update = &koshin.UpdateProgress{Target: rep.Update.Target, State: rep.Update.State}
	}
	inv.Normalize()
	return inv
}

func (s *Server) pollInterval(d *koshin.Device) int {
	iv := s.Config.PollInterval
	if d.PollInterval != 0 {
		iv = d.PollInterval
	}
	return int(iv / time.Second)
}

// pollJitter never exceeds the device's interval.
func (s *Server) pollJitter(d *koshin.Device) int {
	return min(int(s.Config.PollJitter/time.Second), s.pollInterval(d))
}

// rawJSON is compact JSON for the response's director field.
func rawJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}
