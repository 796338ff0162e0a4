package ui

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/compliance"
)

// Prefix is where the UI is mounted on the management listener.
const Prefix = "/ui/"

// UI serves the web UI. Set the fields, call Init, then mount it at Prefix
// on the management listener (which serves TLS: the session cookie is
// Secure).
type UI struct {
	Store koshin.Store
	// API is the management API (httpapi.Server.ManagementHandler). Sign-in,
	// sign-out and every action go through it in-process.
	API http.Handler
	// Compliance is the product profile the compliance page reports on;
	// nil shows how to configure one.
	Compliance *Compliance
	// PollInterval is the server's default device poll interval; a device
	// silent for three of its intervals needs attention.
	PollInterval time.Duration
	// PollJitter is the random part of the poll interval devices are told.
	PollJitter time.Duration
	// LiveInterval is how often live pages are refreshed (default 1s).
	LiveInterval time.Duration
	// MaxStreams bounds live connections at once (default 256).
	MaxStreams int
	// Version names the server build in the page footer and reports.
	Version string
	Now     func() time.Time
	Log     *slog.Logger

	mux     *http.ServeMux
	pages   map[string]*pageTemplate
	static  map[string]staticFile
	perms   map[string][]koshin.Role
	fleet   fleetCache
	history historyCache
	streams chan struct{}
	done    chan struct{}
	once    sync.Once
}

// Compliance is the configured product profile.
type Compliance struct {
	// Profile is the loaded product profile; Path where it came from.
	Profile *compliance.Profile
	Path    string
	// Edition is the EN 303 645 numbering ("" for V2.1.1, or V3.1.3).
	Edition string
	// Fleet supplies the fleet facts (the server's fleetfacts.Fleet, as
	// GET /api/v1/compliance/fleet serves them); nil: the UI's own scan.
	Fleet compliance.Fleet
}

// Init checks the fields and prepares templates, static files and routes.
func (u *UI) Init() error {
	if u.Store == nil || u.API == nil {
		return errors.New("ui: Store and API are required")
	}
	if u.Now == nil {
		u.Now = time.Now
	}
	if u.Log == nil {
		u.Log = slog.New(slog.DiscardHandler)
	}
	if u.LiveInterval <= 0 {
		u.LiveInterval = time.Second
	}
	if u.MaxStreams <= 0 {
		u.MaxStreams = 256
	}
	if u.PollInterval <= 0 {
		u.PollInterval = time.Hour
	}
	u.streams = make(chan struct{}, u.MaxStreams)
	u.done = make(chan struct{})
	u.perms = routePermissions()
	var err error
	if u.static, err = loadStatic(); err != nil {
		return err
	}
	if u.pages, err = u.parsePages(); err != nil {
		return err
	}
	u.routes()
	return nil
}

// Shutdown ends live streams so that the HTTP server can stop; register it
// with http.Server.RegisterOnShutdown.
func (u *UI) Shutdown() { u.once.Do(func() { close(u.done) }) }

// ServeHTTP serves the UI with its security headers.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

// pageCSP allows scripts, styles and connections to this origin only: no
// inline script or style, so markup that slipped past escaping could not
// run anyway.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// handler is a UI handler that returns an error to be shown as a page.
type handler func(w http.ResponseWriter, r *http.Request, s *session) error

func (u *UI) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/static/{file}", u.serveStatic)
	m.HandleFunc("GET /ui/login", u.loginPage)
	m.HandleFunc("POST /ui/login", u.loginSubmit)
	m.Handle("POST /ui/logout", u.authed(u.logout))

	m.Handle("GET /ui/{$}", u.authed(u.overview))
	m.Handle("GET /ui/fleet/live", u.authed(u.fleetLive))
	m.Handle("GET /ui/devices", u.authed(u.devices))
	m.Handle("GET /ui/devices/{id}", u.authed(u.device))
	m.Handle("POST /ui/devices/{id}", u.authed(u.updateDevice))
	m.Handle("POST /ui/devices/{id}/decommission", u.authed(u.decommission))
	m.Handle("POST /ui/devices/{id}/approve", u.authed(u.approveDevice))
	m.Handle("GET /ui/releases", u.authed(u.releases))
	m.Handle("POST /ui/releases/import", u.authed(u.importReleases))
	m.Handle("POST /ui/releases/revoke", u.authed(u.revokeRelease))
	m.Handle("GET /ui/rollouts", u.authed(u.rollouts))
	m.Handle("GET /ui/rollouts/new", u.authed(u.newRollout))
	m.Handle("POST /ui/rollouts", u.authed(u.createRollout))
	m.Handle("GET /ui/rollouts/{id}", u.authed(u.rollout))
	m.Handle("GET /ui/rollouts/{id}/live", u.authed(u.rolloutLive))
	m.Handle("POST /ui/rollouts/{id}/approve", u.authed(u.approveRollout))
	m.Handle("POST /ui/rollouts/{id}/{action}", u.authed(u.rolloutAction))
	m.Handle("GET /ui/approvals", u.authed(u.approvals))
	m.Handle("GET /ui/audit", u.authed(u.audit))
	m.Handle("GET /ui/compliance", u.authed(u.compliancePage))
	m.Handle("GET /ui/compliance/{standard}", u.authed(u.complianceReport))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, nil, http.StatusNotFound, "There is no such page.")
	})
	u.mux = m
}

// Mount returns a handler that serves the UI under Prefix, redirects "/"
// to it and passes everything else to api.
func Mount(u *UI, api http.Handler) http.Handler {
	m := http.NewServeMux()
	m.Handle(Prefix, u)
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
	})
	m.Handle("/", api)
	return m
}

// uiPath reports whether p is a path inside the UI, safe as a redirect
// target after sign-in (no scheme, no host, no "//").
func uiPath(p string) bool {
	return strings.HasPrefix(p, Prefix) && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\\r\n") &&
		!strings.Contains(p, "/../") && len(p) <= 512
}
