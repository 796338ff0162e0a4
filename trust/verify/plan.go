package verify

import (
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Plan is what a verified director instruction allows this device to
// install now. An empty plan means "nothing to do".
type Plan struct {
	Targets []Install
}

// Install is one verified target: everything needed to download, check
// and install it. Length and Hashes are the image repository's signed
// values (the director agreed with them).
type Install struct {
	Name   string
	Length int64
	Hashes map[string][]byte
	// Custom is the image repository's signed custom object; its zero value
	// for generic TUF targets (ImageClient).
	Custom trust.TargetCustom
	// WrappedKey is the content key wrapped to this device (encrypted
	// releases only; see package encryption).
	WrappedKey []byte
	// URL is where the payload is served (consistent-snapshot name).
	URL string
}

// Lookup finds a target of the plan by name.
func (p *Plan) Lookup(name string) (Install, bool) {
	if p == nil {
		return Install{}, false
	}
	for _, in := range p.Targets {
		if in.Name == name {
			return in.clone(), true
		}
	}
	return Install{}, false
}

func (p *Plan) clone() *Plan {
	c := &Plan{Targets: make([]Install, len(p.Targets))}
	for i, in := range p.Targets {
		c.Targets[i] = in.clone()
	}
	return c
}

func (in Install) clone() Install {
	in.Hashes = maps.Clone(in.Hashes)
	for alg, h := range in.Hashes {
		in.Hashes[alg] = slices.Clone(h)
	}
	in.WrappedKey = slices.Clone(in.WrappedKey)
	in.Custom.HardwareIDs = slices.Clone(in.Custom.HardwareIDs)
	in.Custom.Advisories = slices.Clone(in.Custom.Advisories)
	return in
}

// newInstall describes a trusted target file for download from targetsURL.
func newInstall(name string, t *metadata.TargetFiles, targetsURL string, consistent bool) (Install, error) {
	if err := validateTargetName(name); err != nil {
		return Install{}, err
	}
	if t.Length < 0 {
		return Install{}, fmt.Errorf("%w: target %q has length %d", trust.ErrInvalid, name, t.Length)
	}
	in := Install{Name: name, Length: t.Length, Hashes: map[string][]byte{}}
	for alg, h := range t.Hashes {
		in.Hashes[alg] = slices.Clone(h)
	}
	in.URL = targetURL(targetsURL, name, in.Hashes, consistent)
	return in, nil
}

// maxTargetName bounds a target path.
const maxTargetName = 1024

// validateTargetName accepts relative slash-separated paths without empty,
// "." or ".." segments: names become URL paths here and file names in
// the tools that store payloads.
func validateTargetName(name string) error {
	if name == "" || len(name) > maxTargetName || !utf8.ValidString(name) {
		return fmt.Errorf("%w: target name %.64q", trust.ErrInvalid, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: target name %.64q has a control character or backslash", trust.ErrInvalid, name)
		}
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: target name %.64q is not a clean relative path", trust.ErrInvalid, name)
		}
	}
	return nil
}

// targetURL returns base/dir/HASH.file under consistent snapshots (TUF
// 5.7.3), else base/dir/file, each path segment escaped.
func targetURL(base, name string, hashes map[string][]byte, consistent bool) string {
	dir, file := path.Split(name)
	if consistent {
		file = hex.EncodeToString(hashes[prefixAlg(hashes)]) + "." + file
	}
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(base, "/"))
	for seg := range strings.SplitSeq(strings.TrimSuffix(dir, "/"), "/") {
		if seg != "" {
			b.WriteString("/" + url.PathEscape(seg))
		}
	}
	b.WriteString("/" + url.PathEscape(file))
	return b.String()
}

// prefixAlg picks the hash that prefixes consistent target names: sha256
// when signed, else sha512, else the first by name (any signed hash is a
// valid prefix).
func prefixAlg(hashes map[string][]byte) string {
	for _, alg := range []string{"sha256", "sha512"} {
		if _, ok := hashes[alg]; ok {
			return alg
		}
	}
	algs := slices.Sorted(maps.Keys(hashes))
	if len(algs) == 0 {
		return ""
	}
	return algs[0]
}
