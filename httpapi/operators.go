package httpapi

import (
	"net/http"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/password"
)

// operatorView adds what the operator's JSON leaves out on purpose: only
// whether a second factor is set, never the secret or the hash.
type operatorView struct {
	*koshin.Operator
	TOTP bool `json:"totp"`
}

func viewOperator(o *koshin.Operator) operatorView {
	return operatorView{Operator: o, TOTP: len(o.TOTPSecret) > 0}
}

func (s *Server) listOperators(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	f := koshin.OperatorFilter{Role: koshin.Role(q.str("role")), After: q.str("after"), Limit: q.int("limit")}
	if q.err != nil {
		return q.err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	ops, err := s.Store.FindOperators(r.Context(), f)
	if err != nil {
		return err
	}
	views := make([]operatorView, len(ops))
	for i, o := range ops {
		views[i] = viewOperator(o)
	}
	writeJSON(w, http.StatusOK, keyList(views, f.Limit, func(v operatorView) string { return v.Name }))
	return nil
}

func (s *Server) getOperator(w http.ResponseWriter, r *http.Request, _ *principal) error {
	o, err := s.Store.FindOperatorByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewOperator(o))
	return nil
}

type operatorCreate struct {
	Name string      `json:"name"`
	Role koshin.Role `json:"role"`
	// Password, if empty, is generated and returned once.
	Password string `json:"password,omitempty"`
}

type operatorCreated struct {
	Operator operatorView `json:"operator"`
	Password string       `json:"password,omitempty"`
}

// createOperator adds an operator. There is no default account: every
// operator is created by an administrator, or the first one from the CLI.
func (s *Server) createOperator(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req operatorCreate
	if err := decodeJSON(w, r, &req, maxSmallBody); err != nil {
		return err
	}
	if err := koshin.ValidateID("Operator name", req.Name); err != nil {
		return err
	}
	if err := req.Role.Validate(); err != nil {
		return err
	}
	generated := ""
	if req.Password == "" {
		generated = generatePassword(req.Name)
		req.Password = generated
	}
	h, err := s.hashNew(req.Password, req.Name)
	if err != nil {
		return err
	}
	o := &koshin.Operator{Name: req.Name, Role: req.Role, PasswordHash: h}
	err = s.Store.CreateOperator(r.Context(), o)
	s.audit(r.Context(), p.String(), "operator.create", "operator:"+req.Name, err, "role "+string(req.Role))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, operatorCreated{Operator: viewOperator(o), Password: generated})
	return nil
}

// generatePassword returns a random password (256 bits) that passes the
// policy for name (EN 303 645 5.1-2: random, not derived from anything).
func generatePassword(name string) string {
	for {
		pw := koshin.NewSecret()
		if password.Check(name, pw) == nil {
			return pw
		}
	}
}

type operatorPatch struct {
	Role     *koshin.Role `json:"role,omitempty"`
	Password *string      `json:"password,omitempty"`
	// RemoveTOTP switches the operator's second factor off, for one who
	// lost the device.
	RemoveTOTP bool `json:"remove_totp,omitempty"`
}

func (s *Server) updateOperator(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req operatorPatch
	if err := decodeJSON(w, r, &req, maxSmallBody); err != nil {
		return err
	}
	name := r.PathValue("name")
	upd := koshin.OperatorUpdate{Role: req.Role}
	if req.Role != nil {
		if err := req.Role.Validate(); err != nil {
			return err
		}
	}
	if req.Password != nil {
		h, err := s.hashNew(*req.Password, name)
		if err != nil {
			return err
		}
		upd.PasswordHash = &h
	}
	if req.RemoveTOTP {
		upd.TOTPSecret = &[]byte{}
	}
	o, err := s.Store.UpdateOperator(r.Context(), name, upd)
	s.audit(r.Context(), p.String(), "operator.update", "operator:"+name, err, describePatch(req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewOperator(o))
	return nil
}

func describePatch(req operatorPatch) string {
	d := ""
	if req.Role != nil {
		d += "role " + string(*req.Role) + "; "
	}
	if req.Password != nil {
		d += "password reset; "
	}
	if req.RemoveTOTP {
		d += "second factor removed; "
	}
	return d
}

func (s *Server) deleteOperator(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("name")
	err := s.Store.DeleteOperator(r.Context(), name)
	s.audit(r.Context(), p.String(), "operator.delete", "operator:"+name, err, "")
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
