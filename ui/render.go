package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/httpapi"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// formRefused is the status of a form shown again with the reason it was
// refused. The page is the answer (the message sits next to the fields
// with role=alert), so it is a 200: browsers log every 4xx navigation as a
// console error, which would drown real ones.
const formRefused = http.StatusOK

// view is what every page template gets.
type view struct {
	Title string
	// Nav names the active section of the navigation.
	Nav  string
	S    *session
	Data any
	// Flash is the result of the previous form; FlashError marks a failure.
	Flash      string
	FlashError bool
	Now        time.Time
	Version    string
	ui         *UI
}

// Can reports whether the signed-in operator's role may call the API
// route; templates use it to leave out what would be refused.
func (v *view) Can(method, pattern string) bool {
	return v.S != nil && v.ui != nil && v.ui.can(v.S.Role, method, pattern)
}

// CanAudit and CanCompliance decide the navigation.
func (v *view) CanAudit() bool { return v.Can("GET", "/api/v1/audit") }

// Static is the versioned URL of an embedded static file.
func (v *view) Static(name string) string {
	if v.ui == nil {
		return "/ui/static/" + name
	}
	return "/ui/static/" + name + "?v=" + v.ui.static[name].hash
}

type pageTemplate struct{ t *template.Template }

// pages are the page templates; each is parsed together with the layout.
var pages = []string{"login", "error", "overview", "devices", "device", "releases", "rollouts", "rollout",
	"rollout_new", "approvals", "audit", "compliance"}

func (u *UI) parsePages() (map[string]*pageTemplate, error) {
	out := map[string]*pageTemplate{}
	for _, name := range pages {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", name, err)
		}
		out[name] = &pageTemplate{t: t}
	}
	return out, nil
}

// render executes a page into a buffer first, so that a template error
// becomes a clean 500 rather than half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	v.ui, v.Now, v.Version = u, u.Now(), u.Version
	if msg := takeFlash(w, r); msg != "" {
		v.Flash, v.FlashError = strings.CutPrefix(msg, "!")
	}
	var buf bytes.Buffer
	if err := u.pages[name].t.Execute(&buf, v); err != nil {
		u.Log.Error("ui: render failed", "page", name, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	writeHTML(w, status, buf.Bytes())
}

// fragment renders one named block of a page (for live updates).
func (u *UI) fragment(name, block string, v *view) ([]byte, error) {
	v.ui, v.Now, v.Version = u, u.Now(), u.Version
	var buf bytes.Buffer
	err := u.pages[name].t.ExecuteTemplate(&buf, block, v)
	return buf.Bytes(), err
}

func writeHTML(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// fail shows err as a page: the API's own message for its refusals, a
// generic one for anything unexpected (logged).
func (u *UI) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		if ae.Status == http.StatusUnauthorized {
			clearCookie(w, sessionCookie)
			u.toLogin(w, r)
			return
		}
		if ae.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(ae.RetryAfter.Seconds())))
		}
		u.errorPage(w, r, s, ae.Status, ae.Message)
	case koshin.ErrorCode(err) != koshin.EINTERNAL:
		u.errorPage(w, r, s, httpapi.ErrorStatus(koshin.ErrorCode(err)), koshin.ErrorMessage(err))
	default:
		u.Log.Error("ui: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		u.errorPage(w, r, s, http.StatusInternalServerError, "Internal error.")
	}
}

func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	u.render(w, r, status, "error", &view{Title: http.StatusText(status), S: s,
		Data: map[string]any{"Status": status, "Message": msg}})
}

// staticFile is an embedded file with its content hash (the cache key in
// its URL).
type staticFile struct {
	data  []byte
	hash  string
	ctype string
}

func loadStatic() (map[string]staticFile, error) {
	out := map[string]staticFile{}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[path.Base(p)] = staticFile{data: data, hash: hex.EncodeToString(sum[:6]), ctype: mime.TypeByExtension(path.Ext(p))}
		return nil
	})
	return out, err
}

// serveStatic serves an embedded file; URLs carry the content hash, so
// browsers may keep them.
func (u *UI) serveStatic(w http.ResponseWriter, r *http.Request) {
	f, ok := u.static[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("ETag", `"`+f.hash+`"`)
	if r.Header.Get("If-None-Match") == `"`+f.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(f.data)
}
