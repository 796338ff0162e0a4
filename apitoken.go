package koshin

import "time"

// Limits of API tokens.
const (
	MaxAPITokenLifetime     = 366 * 24 * time.Hour
	MaxAPITokensPerOperator = 100
)

// APIToken is a bearer credential for scripts and CI acting for an
// operator. Stores keep only the hash of its secret (see HashSecret). Every
// token expires, so a forgotten one stops working on its own.
type APIToken struct {
	ID        int64     `json:"id"`
	Operator  string    `json:"operator"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Validate checks the token's fields (the lifetime is checked against the
// creation time by ValidateLifetime).
func (t *APIToken) Validate() error {
	if err := ValidateID("Operator name", t.Operator); err != nil {
		return err
	}
	if err := ValidateID("Token name", t.Name); err != nil {
		return err
	}
	if err := t.Role.Validate(); err != nil {
		return err
	}
	if err := validateSecretHash(t.Hash); err != nil {
		return err
	}
	return validateTime("Expiry", t.ExpiresAt)
}

// ValidateLifetime checks that a token created at now expires after now and
// within MaxAPITokenLifetime.
func (t *APIToken) ValidateLifetime(now time.Time) error {
	if !t.ExpiresAt.After(now) || t.ExpiresAt.Sub(now) > MaxAPITokenLifetime {
		return Errorf(EINVALID, "Token expiry must be in the future and within %s.", MaxAPITokenLifetime)
	}
	return nil
}

// Expired reports whether the token no longer authenticates at now.
func (t *APIToken) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }
