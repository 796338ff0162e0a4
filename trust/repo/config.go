package repo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/koshin-ota/koshin/trust"
)

// configFormat is the version of repo.json's layout; Open refuses others so
// an old binary never misreads a newer workspace.
const configFormat = 1

// Limits on repo.json: it is small, and bounding it keeps a damaged or
// hostile workspace from exhausting memory.
const (
	maxConfigSize = 1 << 20
	maxKeyRefLen  = 4096
	maxKeyRefs    = 1024
	minExpiry     = time.Hour
	maxExpiry     = 10 * 365 * 24 * time.Hour
)

// Expiry is the expiry policy: how long a newly signed version of each role
// stays valid. Short online expiries bound how long a device can be kept on
// stale metadata (freeze attack); long offline expiries keep key ceremonies
// rare.
type Expiry struct {
	Root      Duration `json:"root"`
	Targets   Duration `json:"targets"`
	Snapshot  Duration `json:"snapshot"`
	Timestamp Duration `json:"timestamp"`
}

// DefaultExpiry is used for every role an InitOptions leaves zero.
var DefaultExpiry = Expiry{
	Root:      Duration(365 * 24 * time.Hour),
	Targets:   Duration(90 * 24 * time.Hour),
	Snapshot:  Duration(7 * 24 * time.Hour),
	Timestamp: Duration(24 * time.Hour),
}

// For returns the policy of a top-level role.
func (e Expiry) For(role string) time.Duration {
	switch role {
	case roleRoot:
		return time.Duration(e.Root)
	case roleTargets:
		return time.Duration(e.Targets)
	case roleSnapshot:
		return time.Duration(e.Snapshot)
	case roleTimestamp:
		return time.Duration(e.Timestamp)
	}
	return 0
}

func (e Expiry) withDefaults() Expiry {
	def := func(d *Duration, v Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&e.Root, DefaultExpiry.Root)
	def(&e.Targets, DefaultExpiry.Targets)
	def(&e.Snapshot, DefaultExpiry.Snapshot)
	def(&e.Timestamp, DefaultExpiry.Timestamp)
	return e
}

// Validate checks every role's expiry is within 1 hour .. 10 years.
func (e Expiry) Validate() error {
	for _, role := range topLevelRoles {
		d := e.For(role)
		if d < minExpiry || d > maxExpiry {
			return fmt.Errorf("%w: %s expiry %s outside %s..%s", trust.ErrInvalid, role, Duration(d), Duration(minExpiry), Duration(maxExpiry))
		}
	}
	return nil
}

// Duration is a time.Duration written in repo.json as "90d" (whole days) or
// a Go duration such as "6h".
type Duration time.Duration

// ParseDuration accepts "Nd" (days) or anything time.ParseDuration accepts.
func ParseDuration(s string) (Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%w: duration %q", trust.ErrInvalid, s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: duration %q", trust.ErrInvalid, s)
	}
	return Duration(d), nil
}

func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: duration must be a string like \"90d\" or \"6h\"", trust.ErrInvalid)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// config is repo.json. The root metadata, not this file, is the authority
// on keys and thresholds; the file only says which channel the workspace
// serves, how long new versions live, and where the private half of each
// key can be found on this machine (a key file path or a pkcs11: URI).
type config struct {
	Format  int               `json:"format"`
	Channel trust.Channel     `json:"channel"`
	Expiry  Expiry            `json:"expiry"`
	KeyRefs map[string]string `json:"key_refs"`
}

func (c *config) validate() error {
	if c.Format != configFormat {
		return fmt.Errorf("%w: repo.json format %d, this koshin reads %d", trust.ErrInvalid, c.Format, configFormat)
	}
	if err := c.Channel.Validate(); err != nil {
		return err
	}
	if err := c.Expiry.Validate(); err != nil {
		return err
	}
	if len(c.KeyRefs) > maxKeyRefs {
		return fmt.Errorf("%w: more than %d key refs", trust.ErrInvalid, maxKeyRefs)
	}
	for id, ref := range c.KeyRefs {
		if err := validateKeyID(id); err != nil {
			return err
		}
		if err := validateKeyRef(ref); err != nil {
			return err
		}
	}
	return nil
}

// parseConfig decodes and validates repo.json strictly: unknown fields are
// refused so that a typo does not silently fall back to a default.
func parseConfig(data []byte) (*config, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%w: repo.json larger than %d bytes", trust.ErrInvalid, maxConfigSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: repo.json: %v", trust.ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: repo.json: trailing data", trust.ErrInvalid)
	}
	if c.KeyRefs == nil {
		c.KeyRefs = map[string]string{}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *config) encode() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic(err) // plain struct: cannot fail
	}
	return append(b, '\n')
}

// validateKeyID accepts TUF key IDs: hex SHA-256.
func validateKeyID(id string) error {
	if b, err := hex.DecodeString(id); err != nil || len(b) != 32 || strings.ToLower(id) != id {
		return fmt.Errorf("%w: key ID %q is not 64 lowercase hex digits", trust.ErrInvalid, id)
	}
	return nil
}

// validateKeyRef accepts a key-file path or a pkcs11: URI without control
// characters (refs are printed in status output and passed to key loaders).
func validateKeyRef(ref string) error {
	if len(ref) > maxKeyRefLen {
		return fmt.Errorf("%w: key ref longer than %d bytes", trust.ErrInvalid, maxKeyRefLen)
	}
	for _, r := range ref {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: key ref %q contains a control character", trust.ErrInvalid, ref)
		}
	}
	return nil
}
