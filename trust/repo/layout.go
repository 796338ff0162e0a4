package repo

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Workspace layout (documented in docs/trust.md):
//
//	DIR/repo.json              channel, expiry policy, where keys live
//	DIR/.lock                  held (flock) while a Repo is open
//	DIR/staged/root.json       root being prepared, with its partial signatures
//	DIR/staged/targets.json    targets being prepared, with its partial signatures
//	DIR/signed/current.json    the commit point: versions of the signed state
//	DIR/signed/N.root.json     every root version ever committed
//	DIR/signed/N.targets.json  targets, snapshot and timestamp versions
//	DIR/signed/N.snapshot.json
//	DIR/signed/N.timestamp.json
//	DIR/payloads/SHA256        content-addressed payloads
const (
	configFile  = "repo.json"
	lockFile    = ".lock"
	stagedDir   = "staged"
	signedDir   = "signed"
	payloadsDir = "payloads"
	currentFile = "current.json"
)

const (
	roleRoot      = metadata.ROOT
	roleTargets   = metadata.TARGETS
	roleSnapshot  = metadata.SNAPSHOT
	roleTimestamp = metadata.TIMESTAMP
)

// topLevelRoles in the order status output lists them.
var topLevelRoles = []string{roleRoot, roleTargets, roleSnapshot, roleTimestamp}

// Directory and file modes: the workspace is private to the release manager
// (it names where keys live); published files are world-readable.
const (
	dirMode      = 0o700
	fileMode     = 0o600
	pubDirMode   = 0o755
	pubFileMode  = 0o644
	maxMetaSize  = 32 << 20
	maxTargets   = 100_000
	maxNameLen   = 128
	maxRoleKeys  = 32
	maxThreshold = maxRoleKeys
)

func validateRole(role string) error {
	switch role {
	case roleRoot, roleTargets, roleSnapshot, roleTimestamp:
		return nil
	}
	return fmt.Errorf("%w: role %q is not root, targets, snapshot or timestamp", trust.ErrInvalid, role)
}

// offlineRole reports whether a role is signed by people (staged, with
// thresholds and the offline flow) rather than by the online keys at commit.
func offlineRole(role string) bool { return role == roleRoot || role == roleTargets }

func validateOfflineRole(role string) error {
	if !offlineRole(role) {
		return fmt.Errorf("%w: role %q is signed online at commit; only root and targets are staged and signed by hand", trust.ErrInvalid, role)
	}
	return nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// ValidateTargetName accepts names that are one safe path component: they
// become file names in the payload store and the published targets/
// directory, so no separators, no "..", no leading dot or dash.
func ValidateTargetName(name string) error {
	if len(name) == 0 || len(name) > maxNameLen || !namePattern.MatchString(name) {
		return fmt.Errorf("%w: target name %q must be 1-%d characters of A-Z a-z 0-9 . _ + - starting with a letter or digit", trust.ErrInvalid, name, maxNameLen)
	}
	return nil
}

func versionedName(version int64, role string) string {
	return strconv.FormatInt(version, 10) + "." + role + ".json"
}

func (r *Repo) path(elem ...string) string {
	return filepath.Join(append([]string{r.dir}, elem...)...)
}

// readLimited reads a workspace file, refusing anything larger than limit.
func readLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", trust.ErrInvalid, name, limit)
	}
	return b, nil
}
