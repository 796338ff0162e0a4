package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/pki"
	"github.com/koshin-ota/koshin/trust/encryption"
)

// Enrollment methods, as metrics and audit details name them.
const (
	methodToken         = "token"
	methodPreauthorized = "preauthorized"
	methodRenewal       = "renewal"
)

// enroll admits a device (CCDS HLC04, HLC05, STS01, STS02). The CSR's
// self-signature proves the device holds its key; the device ID is the
// hash of that key. A new key needs a one-time token or a factory
// pre-authorisation matching serial, hardware ID and key; the store
// consumes the credential and creates the device in one transaction. A
// key that is already enrolled renews its certificate instead, which needs
// no credential because the key is the identity: this is how a device
// renews, and how it recovers from a lost answer.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) error {
	if ok, wait := s.enrollLimits.allow(sourceKey(r), s.now()); !ok {
		s.Metrics.reject(apiDevice, "rate-limited-enroll")
		return retryLater(koshin.ETOOMANY, wait, "Too many enrollment requests from your address; retry later.")
	}
	var req deviceapi.EnrollRequest
	if err := decodeJSON(w, r, &req, deviceapi.MaxRequestBody); err != nil {
		s.Metrics.enrollments.WithLabelValues("unknown", "invalid").Inc()
		return err
	}
	in, err := parseEnroll(&req)
	if err != nil {
		s.Metrics.enrollments.WithLabelValues("unknown", "invalid").Inc()
		return err
	}
	existing, err := s.Store.FindDeviceByID(r.Context(), in.csr.DeviceID)
	var resp *deviceapi.EnrollResponse
	switch koshin.ErrorCode(err) {
	case koshin.ENOTFOUND:
		resp, err = s.enrollNew(r.Context(), &req, in)
	case "":
		resp, err = s.renew(r.Context(), existing, &req, in)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type enrollInput struct {
	csr           *pki.CSR
	encryptionKey []byte
}

func parseEnroll(req *deviceapi.EnrollRequest) (*enrollInput, error) {
	if err := req.Validate(); err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "Enrollment request: %v.", err)
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "%v", err)
	}
	in := &enrollInput{csr: csr}
	if req.EncryptionKey != "" {
		pub, err := encryption.ParseDevicePublicKey(req.EncryptionKey)
		if err != nil {
			return nil, koshin.Errorf(koshin.EINVALID, "Encryption key must be a base64 X25519 public key.")
		}
		in.encryptionKey = pub.Bytes()
	}
	return in, nil
}

func (s *Server) enrollNew(ctx context.Context, req *deviceapi.EnrollRequest, in *enrollInput) (*deviceapi.EnrollResponse, error) {
	cert, err := s.PKI.IssueDevice(in.csr)
	if err != nil {
		return nil, koshin.Internal(err)
	}
	dev := &koshin.Device{
		ID: in.csr.DeviceID, Serial: req.Serial, HardwareID: req.HardwareID,
		PublicKey: in.csr.PublicKeyDER, EncryptionKey: in.encryptionKey,
		CertSerial: cert.Serial, CertExpiresAt: cert.Cert.NotAfter, Status: koshin.DeviceActive,
	}
	e := koshin.Enrollment{Device: dev}
	method := methodPreauthorized
	if req.Token != "" {
		method, e.TokenHash = methodToken, koshin.HashSecret(req.Token)
	}
	d, err := s.Store.EnrollDevice(ctx, e, s.now())
	principal := "device:" + dev.ID
	detail := fmt.Sprintf("%s serial %s hardware %s", method, req.Serial, req.HardwareID)
	s.audit(ctx, principal, "device.enroll", "device:"+dev.ID, err, detail)
	if err != nil {
		s.Metrics.enrollments.WithLabelValues(method, resultOf(err)).Inc()
		if koshin.ErrorCode(err) == koshin.EUNAUTHORIZED {
			return nil, koshin.Errorf(koshin.EUNAUTHORIZED, "Enrollment refused: the token or pre-authorisation is not valid for this device.")
		}
		return nil, err
	}
	s.Metrics.enrollments.WithLabelValues(method, "ok").Inc()
	s.Log.Info("device enrolled", "device", d.ID, "serial", d.Serial, "method", method)
	return s.enrollResponse(d.ID, cert), nil
}

// renew re-issues the certificate of an enrolled key. The request must
// repeat the enrolled serial and hardware ID; a decommissioned identity
// stays retired (a device that is reset gets a new key, CCDS HLC06).
func (s *Server) renew(ctx context.Context, d *koshin.Device, req *deviceapi.EnrollRequest, in *enrollInput) (*deviceapi.EnrollResponse, error) {
	principal := "device:" + d.ID
	var err error
	switch {
	case d.Status != koshin.DeviceActive:
		err = koshin.Errorf(koshin.EFORBIDDEN, "This device identity has been decommissioned; a reset device enrolls with a new key.")
	case d.Serial != req.Serial || d.HardwareID != req.HardwareID:
		err = koshin.Errorf(koshin.ECONFLICT, "This key is enrolled with another serial or hardware ID.")
	}
	if err != nil {
		s.audit(ctx, principal, "device.renew", principal, err, "")
		s.Metrics.enrollments.WithLabelValues(methodRenewal, resultOf(err)).Inc()
		return nil, err
	}
	cert, err := s.PKI.IssueDevice(in.csr)
	if err != nil {
		return nil, koshin.Internal(err)
	}
	exp := cert.Cert.NotAfter
	_, err = s.Store.UpdateDevice(ctx, d.ID, koshin.DeviceUpdate{CertSerial: &cert.Serial, CertExpiresAt: &exp})
	s.audit(ctx, principal, "device.renew", principal, err, "certificate serial "+cert.Serial)
	s.Metrics.enrollments.WithLabelValues(methodRenewal, resultOf(err)).Inc()
	if err != nil {
		return nil, err
	}
	return s.enrollResponse(d.ID, cert), nil
}

func (s *Server) enrollResponse(id string, cert *pki.DeviceCert) *deviceapi.EnrollResponse {
	return &deviceapi.EnrollResponse{DeviceID: id, Certificate: string(cert.PEM), ServerCA: string(s.PKI.ServerCAPEM())}
}

// resultOf classifies an outcome for metrics.
func resultOf(err error) string {
	switch koshin.ErrorCode(err) {
	case "":
		return "ok"
	case koshin.EUNAUTHORIZED, koshin.EFORBIDDEN:
		return "denied"
	case koshin.EINVALID:
		return "invalid"
	case koshin.ECONFLICT:
		return "conflict"
	}
	return "error"
}
