// Package httpapi serves koshin's two HTTP APIs:
//
//   - the device API v1 (package deviceapi), over TLS where every call but
//     enrollment needs the device certificate (mutual TLS, CCDS UPD08,
//     STS12): enrollment, signed check-ins answered with per-device director
//     metadata, event reports, and the image repository, director root
//     chain, payloads with HTTP Range and release advisories;
//   - the management API (JSON, documented in docs/openapi.yaml) for
//     operators and their scripts: sessions, API tokens, operators,
//     devices, pre-authorisations and enrollment tokens, releases (with
//     their advisories and SBOMs), rollouts, events, the audit log and
//     compliance evidence (fleet facts, telemetry anomaly alerts), plus
//     /healthz, /readyz, /metrics and /.well-known/security.txt.
//
// Every management route is listed once in the route table (routes.go)
// with the roles allowed to call it; the table is the access-control policy
// (CCDS STS05, EN 303 645 5.5-5) and what the role-matrix test and the
// OpenAPI document are checked against. Every request that changes state
// appends an audit entry naming the principal (CCDS STS14).
//
// Errors are koshin *Error values mapped to HTTP statuses by one function
// (ErrorStatus) with a JSON body {"error": message}. Unauthenticated
// callers get generic answers that reveal no versions (EN 303 645 5.6-2).
// Overload is answered early: a cap on requests in flight (503) and token
// buckets per source address and per device (429), both with Retry-After
// (CCDS UPD06, EN 303 645 5.9-3).
package httpapi

import (
	"log/slog"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/compliance"
	"github.com/koshin-ota/koshin/password"
	"github.com/koshin-ota/koshin/pki"
	"github.com/koshin-ota/koshin/rollout"
	"github.com/koshin-ota/koshin/trust/repo"
)

// Server holds what both APIs need. Set the fields, call Init, then serve
// DeviceHandler and ManagementHandler on their listeners.
type Server struct {
	Store    koshin.Store
	Rollouts *rollout.Service
	Director *repo.Director
	PKI      *pki.Authority
	// Image is the published image repository the device API serves and
	// releases are imported from.
	Image *ImageRepo
	// ContentKeys holds the content keys of encrypted releases; nil means
	// encrypted releases cannot be offered.
	ContentKeys ContentKeys
	// Fleet computes the compliance report's fleet facts (GET
	// /api/v1/compliance/fleet); nil answers 404.
	Fleet compliance.Fleet
	// SecurityTxt renders /.well-known/security.txt at an instant
	// (compliance.Profile.SecurityTxt); nil answers 404.
	SecurityTxt func(now time.Time) []byte
	Config      Config
	Metrics     *Metrics
	Log         *slog.Logger
	Now         func() time.Time

	hashSlots     chan struct{} // bounds concurrent password hashing
	deviceLimits  *keyedLimiter
	addrLimits    *keyedLimiter
	loginLimits   *keyedLimiter
	enrollLimits  *keyedLimiter
	admission     *admission
	downloads     *admission
	mgmtAdmission *admission
	shadow        *shadowLockout
	dummyHash     string // verified against for unknown login names
	known         knownReports
	sightings     sightings
}

// Config tunes both APIs. Zero fields take the defaults in DefaultConfig.
type Config struct {
	// PollInterval and PollJitter are what devices are told (CCDS UPD05,
	// EN 303 645 5.3-5): come back after interval ± a random part of jitter.
	PollInterval time.Duration
	PollJitter   time.Duration
	// DirectorExpiry is how long a director document is valid; the nonce,
	// not the expiry, gives freshness.
	DirectorExpiry time.Duration
	// MaxInFlight caps device API calls being served; more get 503.
	MaxInFlight int
	// MaxDownloads caps metadata and payload downloads being served.
	MaxDownloads int
	// DeviceRate/DeviceBurst: token bucket per device ID (requests/second).
	DeviceRate  float64
	DeviceBurst int
	// AddrRate/AddrBurst: token bucket per source address, both APIs.
	AddrRate  float64
	AddrBurst int
	// LoginRate/LoginBurst: token bucket per source address for logins.
	LoginRate  float64
	LoginBurst int
	// EnrollRate/EnrollBurst: token bucket per source address for
	// enrollment requests, which cost a signature check, a certificate and
	// an audit entry each even when refused.
	EnrollRate  float64
	EnrollBurst int
	// RetryAfter is what 503 answers ask clients to wait.
	RetryAfter time.Duration
	// Lockout is the login lockout policy (EN 303 645 5.1-5, CCDS STS13).
	Lockout koshin.LockoutPolicy
	// SessionLifetime bounds a login session.
	SessionLifetime time.Duration
	// Password is the Argon2id cost of new password hashes.
	Password password.Params
	// MaxHashing bounds concurrent password hashes (memory: each uses
	// Password.Memory KiB).
	MaxHashing int
	// TOTPIssuer names the service in authenticator apps.
	TOTPIssuer string
}

// DefaultConfig is a single node's configuration on a small server.
var DefaultConfig = Config{
	PollInterval:    time.Hour,
	PollJitter:      10 * time.Minute,
	DirectorExpiry:  24 * time.Hour,
	MaxInFlight:     1024,
	MaxDownloads:    256,
	DeviceRate:      1,
	DeviceBurst:     20,
	AddrRate:        500,
	AddrBurst:       1000,
	LoginRate:       1,
	LoginBurst:      10,
	EnrollRate:      10,
	EnrollBurst:     100,
	RetryAfter:      30 * time.Second,
	Lockout:         koshin.DefaultLockoutPolicy,
	SessionLifetime: 12 * time.Hour,
	Password:        password.Default,
	MaxHashing:      2,
	TOTPIssuer:      "koshin",
}

// WithDefaults fills zero fields from DefaultConfig.
func (c Config) WithDefaults() Config {
	d := DefaultConfig
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.PollInterval, d.PollInterval)
	set(&c.PollJitter, d.PollJitter)
	set(&c.DirectorExpiry, d.DirectorExpiry)
	set(&c.RetryAfter, d.RetryAfter)
	set(&c.SessionLifetime, d.SessionLifetime)
	setInt(&c.MaxInFlight, d.MaxInFlight)
	setInt(&c.MaxDownloads, d.MaxDownloads)
	setInt(&c.DeviceBurst, d.DeviceBurst)
	setInt(&c.AddrBurst, d.AddrBurst)
	setInt(&c.LoginBurst, d.LoginBurst)
	setInt(&c.EnrollBurst, d.EnrollBurst)
	setInt(&c.MaxHashing, d.MaxHashing)
	setFloat(&c.DeviceRate, d.DeviceRate)
	setFloat(&c.AddrRate, d.AddrRate)
	setFloat(&c.LoginRate, d.LoginRate)
	setFloat(&c.EnrollRate, d.EnrollRate)
	if c.Lockout == (koshin.LockoutPolicy{}) {
		c.Lockout = d.Lockout
	}
	if c.Password == (password.Params{}) {
		c.Password = d.Password
	}
	if c.TOTPIssuer == "" {
		c.TOTPIssuer = d.TOTPIssuer
	}
	return c
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func setFloat(v *float64, def float64) {
	if *v == 0 {
		*v = def
	}
}

// Validate checks the configuration after defaults.
func (c Config) Validate() error {
	if c.PollInterval < koshin.MinPollInterval || c.PollInterval > koshin.MaxPollInterval {
		return koshin.Errorf(koshin.EINVALID, "Poll interval must be between %s and %s.", koshin.MinPollInterval, koshin.MaxPollInterval)
	}
	if c.PollJitter < 0 || c.PollJitter > c.PollInterval {
		return koshin.Errorf(koshin.EINVALID, "Poll jitter must be between 0 and the poll interval.")
	}
	if c.DirectorExpiry < time.Minute || c.DirectorExpiry > 30*24*time.Hour {
		return koshin.Errorf(koshin.EINVALID, "Director expiry must be between 1m and 720h.")
	}
	if c.MaxInFlight < 1 || c.MaxDownloads < 1 || c.MaxHashing < 1 {
		return koshin.Errorf(koshin.EINVALID, "Concurrency limits must be positive.")
	}
	if c.DeviceRate <= 0 || c.AddrRate <= 0 || c.LoginRate <= 0 || c.EnrollRate <= 0 ||
		c.DeviceBurst < 1 || c.AddrBurst < 1 || c.LoginBurst < 1 || c.EnrollBurst < 1 {
		return koshin.Errorf(koshin.EINVALID, "Rate limits must be positive.")
	}
	if c.SessionLifetime < time.Minute || c.SessionLifetime > koshin.MaxAPITokenLifetime {
		return koshin.Errorf(koshin.EINVALID, "Session lifetime must be between 1m and %s.", koshin.MaxAPITokenLifetime)
	}
	return c.Lockout.Validate()
}

// Init checks the configuration and prepares the limiters. It must be
// called once before the handlers are used.
func (s *Server) Init() error {
	s.Config = s.Config.WithDefaults()
	if err := s.Config.Validate(); err != nil {
		return err
	}
	if s.Store == nil || s.Rollouts == nil || s.PKI == nil || s.Director == nil {
		return koshin.Errorf(koshin.EINVALID, "httpapi: Store, Rollouts, PKI and Director are required.")
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Metrics == nil {
		s.Metrics = NewMetrics(s.Store)
	}
	c := s.Config
	s.hashSlots = make(chan struct{}, c.MaxHashing)
	s.deviceLimits = newKeyedLimiter(c.DeviceRate, c.DeviceBurst)
	s.addrLimits = newKeyedLimiter(c.AddrRate, c.AddrBurst)
	s.loginLimits = newKeyedLimiter(c.LoginRate, c.LoginBurst)
	s.enrollLimits = newKeyedLimiter(c.EnrollRate, c.EnrollBurst)
	s.admission = newAdmission(c.MaxInFlight)
	s.downloads = newAdmission(c.MaxDownloads)
	s.mgmtAdmission = newAdmission(c.MaxInFlight)
	s.shadow = newShadowLockout()
	var err error
	s.dummyHash, err = c.Password.Hash(koshin.NewSecret())
	return err
}

func (s *Server) now() time.Time { return s.Now() }
