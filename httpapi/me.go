package httpapi

import (
	"net/http"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/password"
	"github.com/koshin-ota/koshin/totp"
)

type passwordChange struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// changePassword lets an operator set their own password, proving the
// current one (EN 303 645 5.1-4: a simple way to change it).
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req passwordChange
	if err := decodeJSON(w, r, &req, maxSmallBody); err != nil {
		return err
	}
	if req.Current == "" || len(req.Current) > password.MaxLen {
		return koshin.Errorf(koshin.EINVALID, "The current password is required (at most %d bytes).", password.MaxLen)
	}
	// The new password is checked first, so a request that would fail
	// anyway never counts as a failed attempt at the current one.
	if err := password.Check(p.Operator, req.New); err != nil {
		return err
	}
	if err := s.reauthenticate(r, p, req.Current); err != nil {
		return err
	}
	h, err := s.hashNew(req.New, p.Operator)
	if err != nil {
		return err
	}
	_, err = s.Store.UpdateOperator(r.Context(), p.Operator, koshin.OperatorUpdate{PasswordHash: &h})
	s.audit(r.Context(), p.String(), "operator.password", "operator:"+p.Operator, err, "changed own password")
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// reauthenticate checks the caller's current password; failures count
// towards the lockout like failed logins.
func (s *Server) reauthenticate(r *http.Request, p *principal, pw string) error {
	now := s.now()
	o, err := s.Store.FindOperatorByName(r.Context(), p.Operator)
	if err != nil {
		return err
	}
	if o.Locked(now) {
		return s.lockedOut(r.Context(), o.Name, o.LockedUntil, now)
	}
	ok, err := s.checkPassword(o.PasswordHash, pw)
	if err != nil {
		return err
	}
	if !ok {
		if _, err := s.Store.RecordLoginFailure(r.Context(), o.Name, s.Config.Lockout, now); err != nil {
			return err
		}
		err := koshin.Errorf(koshin.EFORBIDDEN, "The current password is wrong.")
		s.audit(r.Context(), p.String(), "operator.reauthenticate", "operator:"+o.Name, err, "")
		return err
	}
	return nil
}

// hashNew applies the password policy (CCDS STS15) and hashes.
func (s *Server) hashNew(pw, account string) (string, error) {
	if err := password.Check(account, pw); err != nil {
		return "", err
	}
	release, err := s.acquireHash()
	if err != nil {
		return "", err
	}
	defer release()
	h, err := s.Config.Password.Hash(pw)
	if err != nil {
		return "", koshin.Internal(err)
	}
	return h, nil
}

type totpOffer struct {
	Secret string `json:"secret"` // base32, for manual entry
	URI    string `json:"uri"`    // otpauth:// for a QR code
}

// beginTOTP offers a new second-factor secret; it takes effect only when
// confirmed with a code from the app (confirmTOTP).
func (s *Server) beginTOTP(w http.ResponseWriter, r *http.Request, p *principal) error {
	secret := totp.NewSecret()
	if err := s.Store.OfferTOTP(r.Context(), p.Operator, secret, s.now().Add(pendingTOTPLifetime)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, totpOffer{Secret: totp.EncodeSecret(secret), URI: totp.URI(s.Config.TOTPIssuer, p.Operator, secret, totp.Default)})
	return nil
}

type totpConfirm struct {
	Code string `json:"code"`
}

func (s *Server) confirmTOTP(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req totpConfirm
	if err := decodeJSON(w, r, &req, maxSmallBody); err != nil {
		return err
	}
	now := s.now()
	o, err := s.Store.FindOperatorByName(r.Context(), p.Operator)
	if err != nil {
		return err
	}
	secret, ok := o.PendingTOTP(now)
	if !ok {
		return koshin.Errorf(koshin.ECONFLICT, "No second-factor enrollment is pending; start one first.")
	}
	if len(req.Code) > 16 {
		ok = false
	} else if ok, err = s.useTOTP(r.Context(), p.Operator, secret, req.Code, now); err != nil {
		return err
	}
	if !ok {
		return koshin.Errorf(koshin.EINVALID, "The one-time code does not match; check the app's clock and try again.")
	}
	_, err = s.Store.UpdateOperator(r.Context(), p.Operator, koshin.OperatorUpdate{TOTPSecret: &secret})
	s.audit(r.Context(), p.String(), "operator.totp.enable", "operator:"+p.Operator, err, "")
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type totpRemove struct {
	Password string `json:"password"`
}

// removeTOTP switches the second factor off, proving the password.
func (s *Server) removeTOTP(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req totpRemove
	if err := decodeJSON(w, r, &req, maxSmallBody); err != nil {
		return err
	}
	if req.Password == "" || len(req.Password) > password.MaxLen {
		return koshin.Errorf(koshin.EINVALID, "The password is required (at most %d bytes).", password.MaxLen)
	}
	if err := s.reauthenticate(r, p, req.Password); err != nil {
		return err
	}
	empty := []byte{}
	_, err := s.Store.UpdateOperator(r.Context(), p.Operator, koshin.OperatorUpdate{TOTPSecret: &empty})
	s.audit(r.Context(), p.String(), "operator.totp.disable", "operator:"+p.Operator, err, "")
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
