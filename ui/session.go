package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/httpapi"
)

// Cookies. The __Host- prefix makes the browser refuse them unless they
// are Secure, for path / and without a Domain: no other host or plain-HTTP
// page can set or overwrite them.
const (
	sessionCookie = "__Host-koshin-session"
	loginCookie   = "__Host-koshin-login" // pre-session CSRF token of the sign-in form
	flashCookie   = "__Host-koshin-flash"
)

// session is the signed-in operator behind a UI request.
type session struct {
	Operator string      `json:"operator"`
	Role     koshin.Role `json:"role"`
	TOTP     bool        `json:"totp"`
	token    string
	// CSRF is the token every form of this session carries.
	CSRF string `json:"-"`
}

// csrfToken is derived from the session secret, so it is bound to the
// session, works on every server replica without shared state, and tells
// nothing about the secret. The label keeps it distinct from the hash the
// store keeps of the token.
func csrfToken(sessionToken string) string {
	h := sha256.Sum256([]byte("koshin ui csrf v1\x00" + sessionToken))
	return hex.EncodeToString(h[:])
}

// authed resolves the session cookie through the management API (so an
// expired or signed-out session ends here too) and, for POST requests,
// checks the origin and the CSRF token before h runs.
func (u *UI) authed(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := u.session(r)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
				clearCookie(w, sessionCookie)
				u.toLogin(w, r)
				return
			}
			u.fail(w, r, nil, err)
			return
		}
		if r.Method == http.MethodPost {
			if err := checkForm(r, s.CSRF); err != nil {
				u.fail(w, r, s, err)
				return
			}
		}
		if err := h(w, r, s); err != nil {
			u.fail(w, r, s, err)
		}
	})
}

// errCSRF refuses a form without this session's token: a forged request
// from another site, or a page left open across a sign-out.
var errCSRF = &apiError{Status: http.StatusForbidden, Message: "The form is out of date or did not come from this site. Reload the page and try again."}

// maxForm bounds a form body.
const maxForm = 64 << 10

// checkForm parses a POST form and compares its CSRF token in constant
// time. A browser's Origin header, when sent, must be this site too.
func checkForm(r *http.Request, want string) error {
	if o := r.Header.Get("Origin"); o != "" && o != "https://"+r.Host {
		return errCSRF
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return &apiError{Status: http.StatusBadRequest, Message: "The form could not be read."}
	}
	got := r.PostForm.Get("csrf")
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}

func (u *UI) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > koshin.MaxSecretLen {
		return nil, &apiError{Status: http.StatusUnauthorized}
	}
	var s session
	if err := u.call(r, c.Value, "GET", "/api/v1/me", nil, &s); err != nil {
		return nil, err
	}
	s.token, s.CSRF = c.Value, csrfToken(c.Value)
	return &s, nil
}

func (u *UI) toLogin(w http.ResponseWriter, r *http.Request) {
	target := "/ui/login"
	if r.Method == http.MethodGet && r.URL.Path != Prefix && uiPath(r.URL.RequestURI()) &&
		!strings.HasSuffix(r.URL.Path, "/live") {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if strings.HasSuffix(r.URL.Path, "/live") {
		signedOutStream(w)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// can reports whether role may call the management API route (method,
// pattern) according to the API's route table.
func (u *UI) can(role koshin.Role, method, pattern string) bool {
	return slices.Contains(u.perms[method+" "+pattern], role)
}

func routePermissions() map[string][]koshin.Role {
	m := map[string][]koshin.Role{}
	for _, rt := range httpapi.Routes() {
		if !rt.Public {
			m[rt.Method+" "+rt.Path] = rt.Roles
		}
	}
	return m
}

// Can is the templates' view of the route table for this session.
func (s *session) can(u *UI, method, pattern string) bool { return u.can(s.Role, method, pattern) }

type loginForm struct {
	Name, Next, Error string
	NeedTOTP          bool
	CSRF              string
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Query().Get("next")
	if !uiPath(next) {
		next = ""
	}
	u.renderLogin(w, r, http.StatusOK, loginForm{Next: next})
}

// renderLogin shows the sign-in form with a fresh pre-session CSRF token
// in a cookie and the form: a login-CSRF attack (signing the victim into
// the attacker's account) needs both.
func (u *UI) renderLogin(w http.ResponseWriter, r *http.Request, status int, f loginForm) {
	f.CSRF = randomToken()
	setCookie(w, loginCookie, f.CSRF)
	u.render(w, r, status, "login", &view{Title: "Sign in", Data: f})
}

// loginSubmit posts the credentials to the management API's session
// endpoint: its per-address limit, lockout and TOTP check decide.
func (u *UI) loginSubmit(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	want := ""
	if err == nil {
		want = c.Value
	}
	if err := checkForm(r, want); err != nil {
		u.renderLogin(w, r, formRefused, loginForm{Error: "The sign-in form expired. Please try again."})
		return
	}
	f := loginForm{Name: strings.TrimSpace(r.PostForm.Get("name")), Next: r.PostForm.Get("next")}
	if !uiPath(f.Next) {
		f.Next = ""
	}
	req := map[string]string{"name": f.Name, "password": r.PostForm.Get("password"), "totp": strings.TrimSpace(r.PostForm.Get("totp"))}
	var resp struct {
		Token string `json:"token"`
	}
	if err := u.call(r, "", "POST", "/api/v1/sessions", req, &resp); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			u.fail(w, r, nil, err)
			return
		}
		f.Error = ae.Message
		f.NeedTOTP = req["totp"] != "" || strings.Contains(ae.Message, "one-time code")
		if ae.RetryAfter > 0 {
			f.Error += " (retry in " + ae.RetryAfter.Round(time.Second).String() + ")"
		}
		u.renderLogin(w, r, formRefused, f)
		return
	}
	clearCookie(w, loginCookie)
	setCookie(w, sessionCookie, resp.Token)
	next := f.Next
	if next == "" {
		next = Prefix
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session at the API (the token stops working on every
// replica) and drops the cookie.
func (u *UI) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	err := u.call(r, s.token, "DELETE", "/api/v1/sessions/current", nil, nil)
	clearCookie(w, sessionCookie)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
			return err
		}
	}
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return nil
}

// setCookie sets a session cookie (no expiry: the browser drops it when it
// closes; the server's token lifetime bounds it anyway) that scripts cannot
// read, that is sent only over TLS and never on cross-site requests.
func setCookie(w http.ResponseWriter, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// flash carries a one-line result across the redirect after a form.
func flash(w http.ResponseWriter, msg string) {
	setCookie(w, flashCookie, url.QueryEscape(msg))
}

func takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	clearCookie(w, flashCookie)
	msg, err := url.QueryUnescape(c.Value)
	if err != nil || len(msg) > 512 {
		return ""
	}
	return msg
}
