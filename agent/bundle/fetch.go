package bundle

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/koshin-ota/koshin/trust"
)

// Paths inside a bundle.
const (
	SingleInstructionPath = "director/targets.json"
	imageDir              = "image/"
	directorDir           = "director/"
	targetsDir            = "targets/"
)

// ImagePath is the bundle path of an image repository metadata file
// ("timestamp.json", "3.snapshot.json").
func ImagePath(file string) string { return imageDir + file }

// DirectorPath is the bundle path of a director metadata file
// ("2.root.json").
func DirectorPath(file string) string { return directorDir + file }

// InstructionPath is the bundle path of deviceID's instruction in a fleet
// bundle.
func InstructionPath(deviceID string) string { return directorDir + "devices/" + deviceID + ".json" }

// TargetPath is the bundle path of a payload as the image repository
// serves it ("HASH.NAME" under consistent snapshots).
func TargetPath(file string) string { return targetsDir + file }

// name maps a bundle URL to an entry name.
func name(u string) (string, error) {
	rest, ok := strings.CutPrefix(u, URLPrefix)
	if !ok {
		return "", fmt.Errorf("%w: %.120s is not a bundle URL", trust.ErrNotFound, u)
	}
	n, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("%w: %.120s: %v", trust.ErrNotFound, u, err)
	}
	return n, nil
}

// Fetch implements verify.Fetcher for metadata.
func (b *Bundle) Fetch(ctx context.Context, u string, maxLen int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n, err := name(u)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(n, imageDir) && !strings.HasPrefix(n, directorDir) {
		return nil, fmt.Errorf("%w: %s is not metadata", trust.ErrNotFound, n)
	}
	return b.read(n, maxLen)
}

// Open implements verify.Fetcher and agent.Fetcher for payloads: the
// entry's bytes from offset on. The stream is untrusted; the engine's
// payload reader verifies it.
func (b *Bundle) Open(ctx context.Context, u string, offset int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n, err := name(u)
	if err != nil {
		return nil, err
	}
	e, ok := b.entries[n]
	if !ok || !strings.HasPrefix(n, targetsDir) {
		return nil, fmt.Errorf("%w: payload %s not in bundle", trust.ErrNotFound, n)
	}
	if offset < 0 || offset > e.size {
		return nil, fmt.Errorf("%w: offset %d outside payload %s of %d bytes", trust.ErrInvalid, offset, n, e.size)
	}
	return io.NopCloser(io.NewSectionReader(b.r, e.off+offset, e.size-offset)), nil
}
