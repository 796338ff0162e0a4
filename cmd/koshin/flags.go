package main

import (
	"crypto"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
)

// splitAssign parses ROLE=VALUE flags into a map, refusing repeats.
func splitAssign(flag string, items []string) (map[string]string, error) {
	out := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" || v == "" {
			return nil, usagef("--%s %q: want ROLE=VALUE", flag, it)
		}
		if _, dup := out[k]; dup {
			return nil, usagef("--%s given twice for %s", flag, k)
		}
		out[k] = v
	}
	return out, nil
}

func parseThresholds(items []string) (map[string]int, error) {
	kv, err := splitAssign("threshold", items)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for role, v := range kv {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, usagef("--threshold %s=%s: not a number", role, v)
		}
		out[role] = n
	}
	return out, nil
}

func parseExpiry(items []string) (repo.Expiry, error) {
	var e repo.Expiry
	kv, err := splitAssign("expiry", items)
	if err != nil {
		return e, err
	}
	for role, v := range kv {
		d, err := repo.ParseDuration(v)
		if err != nil {
			return e, usageError{err}
		}
		switch role {
		case "root":
			e.Root = d
		case "targets":
			e.Targets = d
		case "snapshot":
			e.Snapshot = d
		case "timestamp":
			e.Timestamp = d
		default:
			return e, usagef("--expiry: unknown role %q", role)
		}
	}
	return e, nil
}

// publicKeyArg resolves a public key given as a PEM file (an offline key:
// no ref is recorded) or as a key ref (key file or pkcs11: URI, recorded so
// this workspace can sign with it).
func publicKeyArg(arg string) (crypto.PublicKey, string, error) {
	if pub, err := keys.ReadPublicKeyPEM(arg); err == nil {
		return pub, "", nil
	}
	pub, err := keys.Public(arg)
	if err != nil {
		return nil, "", fmt.Errorf("%s is neither a public key PEM file nor a usable key ref: %w", arg, err)
	}
	ref, err := absRef(arg)
	return pub, ref, err
}

// absRef makes a key-file ref absolute before the workspace records it, so
// that a later command run from another directory (cron) finds the file.
// URIs (pkcs11:, file://) are kept as they are.
func absRef(ref string) (string, error) {
	if m := schemeRE.FindStringSubmatch(ref); m != nil {
		path, ok := strings.CutPrefix(ref, "file:")
		if m[1] != "file" || !ok || strings.HasPrefix(path, "//") {
			return ref, nil
		}
		ref = path
	}
	return filepath.Abs(ref)
}

// schemeRE matches a URI scheme the way trust/keys recognises one.
var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):`)
