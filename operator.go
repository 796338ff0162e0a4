package koshin

import (
	"context"
	"time"
)

// Role is what an operator or API token may do. Roles are checked on every
// management endpoint (CCDS STS05, STS14); the endpoint-to-role matrix
// lives in httpapi.
type Role string

const (
	RoleAdmin          Role = "admin"           // everything, including operators
	RoleReleaseManager Role = "release-manager" // releases and revocation
	RoleOperator       Role = "operator"        // devices, rollouts, approvals
	RoleViewer         Role = "viewer"          // read the fleet
	RoleAuditor        Role = "auditor"         // read the fleet, audit log, compliance
)

// Validate reports whether r is a known role.
func (r Role) Validate() error {
	switch r {
	case RoleAdmin, RoleReleaseManager, RoleOperator, RoleViewer, RoleAuditor:
		return nil
	}
	return Errorf(EINVALID, "Role must be admin, release-manager, operator, viewer or auditor.")
}

// Covers reports whether a holder of r may hand out a credential of role
// other: an API token never has powers its owner lacks.
func (r Role) Covers(other Role) bool {
	if r.Validate() != nil || other.Validate() != nil {
		return false
	}
	return r == RoleAdmin || r == other || other == RoleViewer
}

// Limits of operator fields.
const (
	MaxPasswordHashLen = 512
	MinTOTPSecretLen   = 10 // 80 bits, RFC 4226's minimum
	MaxTOTPSecretLen   = 64
)

// Operator is a person who manages the fleet. There is no default operator
// and no default password (EN 303 645 5.1-1, MIC terminal rules): the first
// administrator is created explicitly.
type Operator struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// PasswordHash is an encoded argon2id hash (package password); the
	// password itself is never stored (OTA trust framework 17).
	PasswordHash string `json:"-"`
	// TOTPSecret enables the second factor when set (CCDS ORG08).
	TOTPSecret []byte `json:"-"`
	// TOTPLastStep is the time step of the last one-time code accepted
	// from this operator; codes of that step or earlier are refused (RFC
	// 6238 §5.2). It lives in the store so that a code used on one server
	// replica cannot be replayed on another.
	TOTPLastStep int64 `json:"-"`
	// TOTPPending is a second-factor secret offered to the operator and
	// not yet confirmed with a code; it expires at TOTPPendingUntil. Kept
	// in the store so that the offer and the confirmation may reach
	// different replicas.
	TOTPPending      []byte    `json:"-"`
	TOTPPendingUntil time.Time `json:"-"`
	// FailedLogins and LockedUntil implement lockout with growing delay
	// (EN 303 645 5.1-5, CCDS STS13); see LockoutPolicy.
	FailedLogins int       `json:"failed_logins"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
	LastLoginAt  time.Time `json:"last_login_at,omitzero"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Validate checks the operator's fields.
func (o *Operator) Validate() error {
	if err := ValidateID("Operator name", o.Name); err != nil {
		return err
	}
	if err := o.Role.Validate(); err != nil {
		return err
	}
	if o.PasswordHash == "" || len(o.PasswordHash) > MaxPasswordHashLen {
		return Errorf(EINVALID, "Password hash must be 1-%d bytes.", MaxPasswordHashLen)
	}
	return validateTOTPSecret(o.TOTPSecret)
}

// ValidateTOTPSecret checks a second-factor secret that must be present.
func ValidateTOTPSecret(s []byte) error {
	if len(s) == 0 {
		return Errorf(EINVALID, "TOTP secret must be %d-%d bytes.", MinTOTPSecretLen, MaxTOTPSecretLen)
	}
	return validateTOTPSecret(s)
}

func validateTOTPSecret(s []byte) error {
	if len(s) != 0 && (len(s) < MinTOTPSecretLen || len(s) > MaxTOTPSecretLen) {
		return Errorf(EINVALID, "TOTP secret must be %d-%d bytes.", MinTOTPSecretLen, MaxTOTPSecretLen)
	}
	return nil
}

// PendingTOTP returns the offered second-factor secret if it has not
// expired at now.
func (o *Operator) PendingTOTP(now time.Time) ([]byte, bool) {
	if len(o.TOTPPending) == 0 || !now.Before(o.TOTPPendingUntil) {
		return nil, false
	}
	return o.TOTPPending, true
}

// Locked reports whether the operator must wait before trying again.
func (o *Operator) Locked(now time.Time) bool { return now.Before(o.LockedUntil) }

// LockoutPolicy makes password guessing impracticable (EN 303 645 5.1-5,
// CCDS STS13): after FreeAttempts consecutive failures each further failure
// locks the account for BaseDelay, doubling per failure up to MaxDelay. A
// delay rather than a permanent lock keeps an attacker from locking real
// operators out for good.
type LockoutPolicy struct {
	FreeAttempts int           `json:"free_attempts"`
	BaseDelay    time.Duration `json:"base_delay"`
	MaxDelay     time.Duration `json:"max_delay"`
}

// DefaultLockoutPolicy: five free attempts, then 1 s, 2 s, 4 s … 15 min.
var DefaultLockoutPolicy = LockoutPolicy{FreeAttempts: 5, BaseDelay: time.Second, MaxDelay: 15 * time.Minute}

// Validate checks the policy.
func (p LockoutPolicy) Validate() error {
	if p.FreeAttempts < 1 || p.FreeAttempts > 100 {
		return Errorf(EINVALID, "Free login attempts must be between 1 and 100.")
	}
	if p.BaseDelay <= 0 || p.MaxDelay < p.BaseDelay || p.MaxDelay > 24*time.Hour {
		return Errorf(EINVALID, "Lockout delays must satisfy 0 < base ≤ max ≤ 24h.")
	}
	return nil
}

// Delay is how long an account stays locked after its failures-th
// consecutive failure.
func (p LockoutPolicy) Delay(failures int) time.Duration {
	if failures < p.FreeAttempts {
		return 0
	}
	d := p.BaseDelay
	for i := p.FreeAttempts; i < failures && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// OperatorUpdate changes an operator; nil fields stay. An empty TOTPSecret
// removes the second factor; setting TOTPSecret (to anything) also drops a
// pending offer.
type OperatorUpdate struct {
	Role         *Role   `json:"role,omitempty"`
	PasswordHash *string `json:"-"`
	TOTPSecret   *[]byte `json:"-"`
}

// Apply copies the set fields onto o and validates the result.
func (u *OperatorUpdate) Apply(o *Operator) error {
	if u.Role != nil {
		o.Role = *u.Role
	}
	if u.PasswordHash != nil {
		o.PasswordHash = *u.PasswordHash
	}
	if u.TOTPSecret != nil {
		o.TOTPSecret = *u.TOTPSecret
	}
	return o.Validate()
}

// OperatorFilter lists operators by name.
type OperatorFilter struct {
	Role  Role   `json:"role,omitempty"`
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// Validate checks the filter.
func (f *OperatorFilter) Validate() error {
	if f.Role != "" {
		if err := f.Role.Validate(); err != nil {
			return err
		}
	}
	if err := validateOptionalIDs("Cursor", f.After); err != nil {
		return err
	}
	_, err := Limit(f.Limit)
	return err
}

// OperatorStore keeps operators and their API tokens. It never sees a
// password or a token secret, only their hashes.
type OperatorStore interface {
	// CreateOperator sets CreatedAt and UpdatedAt. Returns EINVALID, or
	// ECONFLICT if the name exists.
	CreateOperator(ctx context.Context, o *Operator) error

	// FindOperatorByName returns ENOTFOUND if absent. Login handlers must
	// answer an unknown name exactly like a wrong password.
	FindOperatorByName(ctx context.Context, name string) (*Operator, error)

	// FindOperators lists operators matching f.
	FindOperators(ctx context.Context, f OperatorFilter) ([]*Operator, error)

	// UpdateOperator returns ENOTFOUND, EINVALID, or ECONFLICT if the
	// change would leave no administrator.
	UpdateOperator(ctx context.Context, name string, upd OperatorUpdate) (*Operator, error)

	// DeleteOperator removes an operator and their API tokens. Returns
	// ENOTFOUND, or ECONFLICT for the last administrator.
	DeleteOperator(ctx context.Context, name string) error

	// RecordLoginFailure counts a failed login atomically (concurrent
	// guesses all count) and locks the account as policy says. Returns
	// the updated operator; ENOTFOUND, EINVALID.
	RecordLoginFailure(ctx context.Context, name string, policy LockoutPolicy, now time.Time) (*Operator, error)

	// RecordLoginSuccess clears the failure count and lock and sets
	// LastLoginAt. Returns ENOTFOUND.
	RecordLoginSuccess(ctx context.Context, name string, now time.Time) (*Operator, error)

	// UseTOTPStep records that a one-time code of time step step was
	// accepted from the operator, atomically, so that each code works once
	// across all replicas (RFC 6238 §5.2). Returns ECONFLICT if step is not
	// after the last recorded step (a replayed or older code), ENOTFOUND,
	// EINVALID for a negative step.
	UseTOTPStep(ctx context.Context, name string, step int64) error

	// OfferTOTP keeps secret as the operator's pending second factor until
	// expires, replacing an earlier offer; UpdateOperator setting
	// TOTPSecret clears it. Returns ENOTFOUND, EINVALID.
	OfferTOTP(ctx context.Context, name string, secret []byte, expires time.Time) error

	// CreateAPIToken stores a token's hash and sets ID and CreatedAt.
	// Returns EINVALID; ENOTFOUND for an unknown operator; EFORBIDDEN if the
	// operator's role does not cover the token's; ETOOMANY past
	// MaxAPITokensPerOperator; ECONFLICT if the hash exists.
	CreateAPIToken(ctx context.Context, t *APIToken) error

	// FindAPITokenByHash authenticates a token at now. Returns
	// EUNAUTHORIZED if it is unknown, expired, or its owner's role no
	// longer covers it.
	FindAPITokenByHash(ctx context.Context, hash []byte, now time.Time) (*APIToken, error)

	// FindAPITokens lists an operator's tokens (at most
	// MaxAPITokensPerOperator). Returns ENOTFOUND for an unknown operator.
	FindAPITokens(ctx context.Context, operator string) ([]*APIToken, error)

	// DeleteAPIToken revokes a token; ENOTFOUND if absent.
	DeleteAPIToken(ctx context.Context, id int64) error
}
