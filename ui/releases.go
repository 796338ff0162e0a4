package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/koshin-ota/koshin"
)

const releasesPerPage = 100

type releasesData struct {
	Releases []releaseRow
	Next     string
	After    string
}

type releaseRow struct {
	R *koshin.Release
	// SupportEnded and SupportSoon flag the support period (EN 303 645
	// 5.3-13, OTA 39): users must be told when updates stop.
	SupportEnded, SupportSoon bool
}

// releases lists the imported targets of the image repository with the
// signed fields an operator decides on: hardware, release counter,
// channel, advisories, support end and SBOM digest; revoked ones are
// marked (CCDS UPC05).
func (u *UI) releases(w http.ResponseWriter, r *http.Request, s *session) error {
	after := r.URL.Query().Get("after")
	if after != "" {
		if err := koshin.ValidateReleaseName(after); err != nil {
			return err
		}
	}
	rs, err := u.Store.FindReleases(r.Context(), koshin.ReleaseFilter{IncludeRevoked: true, After: after, Limit: releasesPerPage})
	if err != nil {
		return err
	}
	d := &releasesData{After: after}
	now := u.Now()
	for _, rel := range rs {
		row := releaseRow{R: rel}
		if end, err := time.Parse(time.DateOnly, rel.SupportEnd); err == nil {
			row.SupportEnded = !now.Before(end.AddDate(0, 0, 1))
			row.SupportSoon = !row.SupportEnded && now.AddDate(0, 6, 0).After(end)
		}
		d.Releases = append(d.Releases, row)
	}
	if len(rs) == releasesPerPage {
		d.Next = rs[len(rs)-1].Name
	}
	u.render(w, r, http.StatusOK, "releases", &view{Title: "Releases", Nav: "releases", S: s, Data: d})
	return nil
}

// importReleases imports new targets from the image repository, verified
// the way a device verifies them.
func (u *UI) importReleases(w http.ResponseWriter, r *http.Request, s *session) error {
	var res struct {
		Imported  []string `json:"imported"`
		Unchanged int      `json:"unchanged"`
		Revoked   []string `json:"revoked"`
	}
	err := u.call(r, s.token, "POST", "/api/v1/releases/import", nil, &res)
	if ae, ok := err.(*apiError); ok && ae.Status != http.StatusForbidden && ae.Status != http.StatusUnauthorized {
		flash(w, "!"+ae.Message)
	} else if err != nil {
		return err
	} else {
		flash(w, fmt.Sprintf("Imported %d new releases; %d unchanged; %d revoked.", len(res.Imported), res.Unchanged, len(res.Revoked)))
	}
	http.Redirect(w, r, "/ui/releases", http.StatusSeeOther)
	return nil
}

// revokeRelease stops a release server-side at once; its rollouts halt.
func (u *UI) revokeRelease(w http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PostForm.Get("name")
	if err := koshin.ValidateReleaseName(name); err != nil {
		return err
	}
	if r.PostForm.Get("confirm") != "yes" {
		flash(w, "!Tick the confirmation box to revoke "+name+".")
		http.Redirect(w, r, "/ui/releases", http.StatusSeeOther)
		return nil
	}
	return u.act(w, r, s, "/ui/releases", "POST", "/api/v1/releases/"+url.PathEscape(name)+"/revoke", nil,
		"Release "+name+" revoked: its rollouts are halted.")
}
