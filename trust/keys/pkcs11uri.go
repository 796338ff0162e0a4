package keys

import (
	"bytes"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PKCS11Config locates an ECDSA P-256 key pair on a PKCS#11 token (CCDS
// UPC11, UPE12). It is usually parsed from an RFC 7512 URI such as
//
//	pkcs11:token=koshin-root;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:KOSHIN_PKCS11_PIN
//
// koshin accepts this subset of RFC 7512:
//
//   - path: token (label, required), object (label, required), id
//     (CKA_ID, optional, percent-encoded bytes), type (only "private").
//   - query: module-path (absolute, required: koshin never searches for a
//     module by name), and at most one of pin-source and pin-value.
//     pin-source is env:NAME (an environment variable) or file:/path (the
//     first line of a file). pin-value puts the PIN in the URI, where shell
//     history and process listings can see it: avoid it outside tests.
//     Without either, Open asks through its PassphraseFunc.
//
// Other attributes are rejected rather than ignored, as RFC 7512 asks of a
// consumer that cannot honour them.
type PKCS11Config struct {
	ModulePath  string
	TokenLabel  string
	ObjectLabel string
	ObjectID    []byte // optional; generated keys get a random one
	PINSource   string // "env:NAME" or "file:/path"; empty if none
	PIN         string // pin-value; discouraged
}

// Limits on URI parts. Token labels are 32 bytes in CK_TOKEN_INFO.
const (
	maxPKCS11URILen   = 4096
	maxTokenLabelLen  = 32
	maxObjectLabelLen = 255
	maxObjectIDLen    = 128
	maxPINLen         = 256
	pkcs11Scheme      = "pkcs11:"
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// ParsePKCS11URI parses and validates a PKCS#11 URI.
func ParsePKCS11URI(uri string) (PKCS11Config, error) {
	cfg, err := parsePKCS11URI(uri)
	if err != nil {
		return PKCS11Config{}, fmt.Errorf("%w: pkcs11 uri: %v", ErrInvalidRef, err)
	}
	if err := cfg.Validate(); err != nil {
		return PKCS11Config{}, err
	}
	return cfg, nil
}

func parsePKCS11URI(uri string) (PKCS11Config, error) {
	var cfg PKCS11Config
	if len(uri) > maxPKCS11URILen {
		return cfg, fmt.Errorf("longer than %d bytes", maxPKCS11URILen)
	}
	rest, ok := strings.CutPrefix(uri, pkcs11Scheme)
	if !ok {
		return cfg, fmt.Errorf("missing %q scheme", pkcs11Scheme)
	}
	if strings.Contains(rest, "#") {
		return cfg, fmt.Errorf("fragments are not allowed")
	}
	path, query, _ := strings.Cut(rest, "?")
	if err := eachAttr(path, ";", cfg.setPathAttr); err != nil {
		return cfg, err
	}
	err := eachAttr(query, "&", cfg.setQueryAttr)
	return cfg, err
}

// eachAttr splits name=value pairs, percent-decodes values and rejects
// empty and repeated attributes: an empty id or pin-value would otherwise
// read as "unset" and select a different key or PIN than written.
func eachAttr(s, sep string, set func(name, value string) error) error {
	if s == "" {
		return nil
	}
	seen := map[string]bool{}
	for _, attr := range strings.Split(s, sep) {
		name, raw, ok := strings.Cut(attr, "=")
		if !ok || name == "" || raw == "" {
			return fmt.Errorf("malformed or empty attribute %q", attr)
		}
		if seen[name] {
			return fmt.Errorf("attribute %q repeated", name)
		}
		seen[name] = true
		value, err := url.PathUnescape(raw)
		if err != nil {
			return fmt.Errorf("attribute %q: %v", name, err)
		}
		if err := set(name, value); err != nil {
			return err
		}
	}
	return nil
}

func (c *PKCS11Config) setPathAttr(name, value string) error {
	switch name {
	case "token":
		c.TokenLabel = value
	case "object":
		c.ObjectLabel = value
	case "id":
		c.ObjectID = []byte(value)
	case "type":
		if value != "private" {
			return fmt.Errorf("type=%q: only type=private names a signing key", value)
		}
	default:
		return fmt.Errorf("unsupported path attribute %q", name)
	}
	return nil
}

func (c *PKCS11Config) setQueryAttr(name, value string) error {
	switch name {
	case "module-path":
		c.ModulePath = value
	case "pin-source":
		c.PINSource = value
	case "pin-value":
		c.PIN = value
	default:
		return fmt.Errorf("unsupported query attribute %q", name)
	}
	return nil
}

// Validate checks a configuration, parsed or built in code.
func (c PKCS11Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("%w: pkcs11: %v", ErrInvalidRef, err)
	}
	return nil
}

func (c PKCS11Config) validate() error {
	if err := checkLabel("token", c.TokenLabel, maxTokenLabelLen); err != nil {
		return err
	}
	if err := checkLabel("object", c.ObjectLabel, maxObjectLabelLen); err != nil {
		return err
	}
	if len(c.ObjectID) > maxObjectIDLen {
		return fmt.Errorf("id of %d bytes exceeds %d", len(c.ObjectID), maxObjectIDLen)
	}
	if err := checkModulePath(c.ModulePath); err != nil {
		return err
	}
	return c.validatePIN()
}

func checkLabel(what, v string, max int) error {
	if v == "" {
		return fmt.Errorf("%s label is required", what)
	}
	if len(v) > max {
		return fmt.Errorf("%s label of %d bytes exceeds %d", what, len(v), max)
	}
	return checkPrintable(what+" label", v)
}

func checkPrintable(what, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not UTF-8", what)
	}
	if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
		return fmt.Errorf("%s contains a control character", what)
	}
	return nil
}

func checkModulePath(p string) error {
	if p == "" {
		return fmt.Errorf("module-path is required")
	}
	if !filepath.IsAbs(p) || len(p) > 1024 {
		return fmt.Errorf("module-path %q must be an absolute path", p)
	}
	return checkPrintable("module-path", p)
}

func (c PKCS11Config) validatePIN() error {
	if c.PIN != "" && c.PINSource != "" {
		return fmt.Errorf("pin-source and pin-value are mutually exclusive")
	}
	if len(c.PIN) > maxPINLen || strings.IndexByte(c.PIN, 0) >= 0 {
		return fmt.Errorf("pin-value longer than %d bytes or holding NUL", maxPINLen)
	}
	if c.PINSource == "" {
		return nil
	}
	if name, ok := strings.CutPrefix(c.PINSource, "env:"); ok {
		if !envNameRE.MatchString(name) {
			return fmt.Errorf("pin-source env:%q is not a variable name", name)
		}
		return nil
	}
	if p, ok := strings.CutPrefix(c.PINSource, "file:"); ok && filepath.IsAbs(p) {
		return checkPrintable("pin-source", p)
	}
	return fmt.Errorf("pin-source %q: want env:NAME or file:/absolute/path", c.PINSource)
}

// URI encodes the configuration as a PKCS#11 URI that ParsePKCS11URI
// accepts, including any pin-value. String redacts it.
func (c PKCS11Config) URI() string { return c.uri(c.PIN) }

// String is the URI with any pin-value redacted, safe for logs.
func (c PKCS11Config) String() string {
	if c.PIN == "" {
		return c.uri("")
	}
	return c.uri("REDACTED")
}

func (c PKCS11Config) uri(pin string) string {
	var b strings.Builder
	b.WriteString(pkcs11Scheme)
	fmt.Fprintf(&b, "token=%s;object=%s", escape(c.TokenLabel, ""), escape(c.ObjectLabel, ""))
	if len(c.ObjectID) > 0 {
		b.WriteString(";id=" + escapeAll(c.ObjectID))
	}
	b.WriteString("?module-path=" + escape(c.ModulePath, "/:"))
	if c.PINSource != "" {
		b.WriteString("&pin-source=" + escape(c.PINSource, "/:"))
	}
	if pin != "" {
		b.WriteString("&pin-value=" + escape(pin, ""))
	}
	return b.String()
}

// escape percent-encodes everything but RFC 3986 unreserved characters and
// the extra characters given.
func escape(s, extra string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if isUnreserved(ch) || (ch < utf8.RuneSelf && strings.IndexByte(extra, ch) >= 0) {
			b.WriteByte(ch)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", ch)
	}
	return b.String()
}

// escapeAll encodes every byte, as RFC 7512 recommends for id.
func escapeAll(id []byte) string {
	var b bytes.Buffer
	for _, ch := range id {
		fmt.Fprintf(&b, "%%%02X", ch)
	}
	return b.String()
}

func isUnreserved(ch byte) bool {
	return 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' ||
		ch == '-' || ch == '.' || ch == '_' || ch == '~'
}

// GoString keeps %#v from printing the PIN field.
func (c PKCS11Config) GoString() string { return "keys.PKCS11Config(" + c.String() + ")" }
