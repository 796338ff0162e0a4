package deviceclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/deviceclient"
	"github.com/koshin-ota/koshin/agent/identity"
	"github.com/koshin-ota/koshin/deviceapi"
)

func TestRetryAfterReachesTheEngine(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := deviceapi.NewClient(srv.URL, srv.Client())
	c.Attempts = 1
	s := &deviceclient.Server{Client: c}
	_, err := s.CheckIn(context.Background(), deviceapi.CheckIn{Report: []byte(`{}`), Signature: []byte{1}})
	var ra agent.RetryAfter
	if !errors.As(err, &ra) || ra.RetryAfter() != 2*time.Minute {
		t.Fatalf("check-in error %v, want one carrying Retry-After 2m", err)
	}
	var se *deviceapi.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("status error lost: %v", err)
	}
}

func TestURLs(t *testing.T) {
	img, dir, tg := deviceclient.URLs("https://updates.example:8443/")
	if img != "https://updates.example:8443/device/v1/image" || dir != "https://updates.example:8443/device/v1/director" ||
		tg != "https://updates.example:8443/device/v1/targets" {
		t.Fatalf("URLs %s %s %s", img, dir, tg)
	}
}

func TestNotEnrolled(t *testing.T) {
	var s agent.Server = deviceclient.NotEnrolled{}
	if _, err := s.CheckIn(context.Background(), deviceapi.CheckIn{}); !errors.Is(err, identity.ErrNotEnrolled) {
		t.Fatal(err)
	}
}

// A certificate close to expiry is renewed by enrolling the same key
// again, without a credential.
func TestRenewBeforeExpiry(t *testing.T) {
	store := identity.Store{Dir: t.TempDir()}
	id, err := store.Generate()
	if err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	ca, _ = x509.ParseCertificate(caDER)
	issue := func(notAfter time.Time) string {
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(notAfter.Unix()),
			NotBefore: time.Unix(0, 0), NotAfter: notAfter}, ca, id.Key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e := identity.Enrollment{DeviceID: id.ID, Serial: "SN1", HardwareID: "board-a"}
	if err := store.SaveEnrollment(id, issue(now.Add(10*24*time.Hour)), "", e); err != nil {
		t.Fatal(err)
	}
	id, _ = store.Load()
	var got deviceapi.EnrollRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		json.NewEncoder(w).Encode(deviceapi.EnrollResponse{DeviceID: id.ID, Certificate: issue(now.Add(180 * 24 * time.Hour))})
	}))
	defer srv.Close()
	cert := deviceclient.NewCertificate(id)
	r := &deviceclient.Renewer{Store: store, ID: id, Client: deviceapi.NewClient(srv.URL, srv.Client()), Cert: cert,
		Now: func() time.Time { return now }}
	if !r.Due() {
		t.Fatal("certificate expiring in 10 days not due for renewal")
	}
	if err := r.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got.Token != "" || got.Serial != "SN1" || got.HardwareID != "board-a" {
		t.Fatalf("renewal request %+v", got)
	}
	if r.Due() || !cert.Leaf().NotAfter.Equal(now.Add(180*24*time.Hour)) {
		t.Fatalf("certificate not replaced: expires %s", cert.Leaf().NotAfter)
	}
}
