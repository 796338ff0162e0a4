package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
)

// fakeServer is a minimal device API v1 for end-to-end tests of the agent
// binary's wiring: enrollment with a one-time token, check-in with an
// honest director, events, and the repositories' files. The real server
// (httpapi) has its own tests; linking it here would be fine for a test,
// but a fake keeps this test about the agent.
type fakeServer struct {
	t        *testing.T
	srv      *httptest.Server
	img, dir *trusttest.Repo
	token    string
	caKey    *ecdsa.PrivateKey
	ca       *x509.Certificate
	assign   string
	hardware string

	mu      sync.Mutex
	events  []deviceapi.Event
	reports []deviceapi.Report
	enrolls []deviceapi.EnrollRequest
}

func newFakeServer(t *testing.T, img, dir *trusttest.Repo, token, assign, hardware string) *fakeServer {
	f := &fakeServer{t: t, img: img, dir: dir, token: token, assign: assign, hardware: hardware}
	f.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, f.caKey.Public(), f.caKey)
	if err != nil {
		t.Fatal(err)
	}
	f.ca, _ = x509.ParseCertificate(der)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device/v1/enroll", f.enroll)
	mux.HandleFunc("POST /device/v1/checkin", f.mtls(f.checkIn))
	mux.HandleFunc("POST /device/v1/events", f.mtls(f.eventsHandler))
	mux.HandleFunc("GET /device/v1/image/{file}", f.mtls(f.file(img, "metadata/")))
	mux.HandleFunc("GET /device/v1/director/{file}", f.mtls(f.file(dir, "metadata/")))
	mux.HandleFunc("GET /device/v1/targets/{file}", f.mtls(f.file(img, "targets/")))
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// serverCA is the PEM the device pins.
func (f *fakeServer) serverCA() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}))
}

func (f *fakeServer) enroll(w http.ResponseWriter, r *http.Request) {
	var req deviceapi.EnrollRequest
	if json.NewDecoder(r.Body).Decode(&req) != nil || req.Validate() != nil {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	blk, _ := pem.Decode([]byte(req.CSR))
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil || csr.CheckSignature() != nil || req.Token != f.token {
		http.Error(w, `{"error":"refused"}`, http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	f.enrolls = append(f.enrolls, req)
	f.mu.Unlock()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(180 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, f.ca, csr.PublicKey, f.caKey)
	if err != nil {
		f.t.Error(err)
		return
	}
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	json.NewEncoder(w).Encode(deviceapi.EnrollResponse{DeviceID: hex.EncodeToString(sum[:]),
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), ServerCA: f.serverCA()})
}

// mtls requires a client certificate issued by the device CA.
func (f *fakeServer) mtls(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].CheckSignatureFrom(f.ca) != nil {
			http.Error(w, `{"error":"certificate required"}`, http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (f *fakeServer) checkIn(w http.ResponseWriter, r *http.Request) {
	var ci deviceapi.CheckIn
	var rep deviceapi.Report
	if json.NewDecoder(r.Body).Decode(&ci) != nil || json.Unmarshal(ci.Report, &rep) != nil || rep.Validate() != nil {
		http.Error(w, `{"error":"bad report"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.reports = append(f.reports, rep)
	offer := f.offering(rep)
	f.mu.Unlock()
	resp := deviceapi.CheckInResponse{PollInterval: 60, PollJitter: 10}
	if offer {
		dev := trust.Device{ID: rep.DeviceID, HardwareID: f.hardware, Channel: trust.ChannelRelease}
		resp.Director, resp.Mode = f.dir.Instruct(f.img, dev, ci.Nonce, f.assign), deviceapi.ModeAutomatic
	}
	json.NewEncoder(w).Encode(resp)
}

// offering: the assignment stands until the device reports it installed
// or finished.
func (f *fakeServer) offering(rep deviceapi.Report) bool {
	for _, c := range rep.Components {
		if c.Target == f.assign {
			return false
		}
	}
	for _, e := range f.events {
		if e.Target == f.assign && (e.Type == deviceapi.EventCommitted || e.Type == deviceapi.EventFailed || e.Type == deviceapi.EventRejected) {
			return false
		}
	}
	return f.assign != ""
}

func (f *fakeServer) eventsHandler(w http.ResponseWriter, r *http.Request) {
	var b deviceapi.EventBatch
	if json.NewDecoder(r.Body).Decode(&b) != nil || b.Validate() != nil {
		http.Error(w, `{"error":"bad batch"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.events = append(f.events, b.Events...)
	f.mu.Unlock()
	json.NewEncoder(w).Encode(deviceapi.EventsResponse{Accepted: len(b.Events)})
}

func (f *fakeServer) file(repo *trusttest.Repo, prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data := repo.File(prefix + r.PathValue("file"))
		if data == nil {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}
}

func (f *fakeServer) has(typ deviceapi.EventType) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func (f *fakeServer) enrollments() []deviceapi.EnrollRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]deviceapi.EnrollRequest(nil), f.enrolls...)
}
