package compliance

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// SecurityTxtLifetime is how far ahead a served security.txt expires.
// RFC 9116 recommends less than a year; the file is rendered afresh from
// the profile on every request, so a short horizon costs nothing and a
// copy kept by a crawler turns stale soon after the profile changes.
const SecurityTxtLifetime = 180 * 24 * time.Hour

// SecurityTxt renders the product's vulnerability disclosure contact as an
// RFC 9116 security.txt (EN 303 645 5.2-1, UK PSTI, JC-STAR S1.1-05), for
// the server to publish at /.well-known/security.txt: Contact (mailto: for
// an e-mail address), Expires (now plus SecurityTxtLifetime, at a whole
// day so that every replica serves the same file), Policy if the profile
// names one, and Preferred-Languages.
func (p *Profile) SecurityTxt(now time.Time) []byte {
	d := p.Disclosure
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Vulnerability disclosure for %s by %s.\n", oneLine(p.Product.Model), oneLine(p.Product.Manufacturer))
	fmt.Fprintf(&b, "# Reports are acknowledged within %d days, with status updates every %d days.\n",
		d.AcknowledgeDays, d.StatusUpdateDays)
	contact := d.Contact
	if !strings.HasPrefix(contact, "https://") {
		contact = "mailto:" + contact
	}
	fmt.Fprintf(&b, "Contact: %s\n", contact)
	fmt.Fprintf(&b, "Expires: %s\n", now.UTC().Truncate(24*time.Hour).Add(SecurityTxtLifetime).Format(time.RFC3339))
	policy := d.PolicyURL
	if policy == "" && strings.HasPrefix(d.Contact, "https://") {
		policy = d.Contact
	}
	if policy != "" {
		fmt.Fprintf(&b, "Policy: %s\n", policy)
	}
	if len(d.PreferredLanguages) > 0 {
		fmt.Fprintf(&b, "Preferred-Languages: %s\n", strings.Join(d.PreferredLanguages, ", "))
	}
	return b.Bytes()
}

// oneLine keeps a profile value from breaking out of its comment line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
