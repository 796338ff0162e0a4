package httpapi

import (
	"net/http"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/pki"
)

const apiDevice = "device"

// deviceFunc handles a request from an authenticated device.
type deviceFunc func(w http.ResponseWriter, r *http.Request, d *koshin.Device) error

// DeviceHandler serves device API v1. Serve it with the TLS configuration
// from pki.Authority.DeviceTLSConfig: client certificates are verified
// there, and checked against the store here on every request.
func (s *Server) DeviceHandler() http.Handler {
	mux := http.NewServeMux()
	api := func(h http.Handler) http.Handler { return s.admit(apiDevice, s.admission, h) }
	dl := func(h http.Handler) http.Handler { return s.admit(apiDevice, s.downloads, h) }
	mux.Handle("POST "+deviceapi.PathEnroll, api(s.handle(s.enroll)))
	mux.Handle("POST "+deviceapi.PathCheckIn, api(s.device(s.checkIn)))
	mux.Handle("POST "+deviceapi.PathEvents, api(s.device(s.events)))
	mux.Handle("GET "+deviceapi.PathImage+"{file}", dl(s.device(s.imageFile)))
	mux.Handle("GET "+deviceapi.PathDirector+"{file}", dl(s.device(s.directorRoot)))
	mux.Handle("GET "+deviceapi.PathTargets+"{file}", dl(s.device(s.targetFile)))
	mux.Handle("GET "+deviceapi.PathAdvisories+"{release...}", dl(s.device(s.deviceAdvisory)))
	mux.Handle("GET /healthz", http.HandlerFunc(s.healthz))
	return s.Metrics.observe(apiDevice, s.limitSource(apiDevice, s.routeOr404(mux)))
}

// handle adapts an error-returning handler.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, s.Log, r, err)
		}
	})
}

// device authenticates the device behind the connection's client
// certificate on every request (CCDS UPD08): the certificate must be the
// device's current one (serial) and unexpired, and the device active, so a
// decommissioned device is refused at once, even on a kept-alive
// connection. Then the per-device token bucket applies.
func (s *Server) device(h deviceFunc) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		d, err := s.authDevice(r)
		if err != nil {
			return err
		}
		if ok, wait := s.deviceLimits.allow(d.ID, s.now()); !ok {
			s.Metrics.reject(apiDevice, "rate-limited-device")
			return retryLater(koshin.ETOOMANY, wait, "Too many requests from this device; retry later.")
		}
		return h(w, r, d)
	})
}

func (s *Server) authDevice(r *http.Request) (*koshin.Device, error) {
	id := pki.Identify(r.TLS)
	if id == nil {
		s.Metrics.reject(apiDevice, "no-certificate")
		return nil, errDeviceAuth
	}
	if id.Expired(s.now()) {
		s.Metrics.reject(apiDevice, "expired-certificate")
		return nil, koshin.Errorf(koshin.EUNAUTHORIZED, "The device certificate has expired; enroll again to renew it.")
	}
	d, err := s.Store.FindDeviceByID(r.Context(), id.ID)
	if koshin.ErrorCode(err) == koshin.ENOTFOUND {
		s.Metrics.reject(apiDevice, "unknown-device")
		return nil, errDeviceAuth
	} else if err != nil {
		return nil, err
	}
	if d.Status != koshin.DeviceActive || d.CertSerial != id.Serial {
		s.Metrics.reject(apiDevice, "revoked-certificate")
		return nil, errDeviceAuth
	}
	return d, nil
}

// routeOr404 answers requests no route matches with the generic JSON 404
// (and wrong methods the same way), so unauthenticated probing learns
// nothing from the router's own pages.
func (s *Server) routeOr404(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			writeError(w, s.Log, r, errNotFound)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// healthz says the process serves HTTP; nothing else.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
