package httpapi

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"os"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/trust/encryption"
)

// KeyDir is a directory of content keys as `koshin release add --encrypt`
// writes them: NAME.key holding 64 hex digits, readable only by the server
// (docs/encryption.md: protect it like an online signing key).
type KeyDir string

// ContentKey implements ContentKeys.
func (d KeyDir) ContentKey(_ context.Context, rel *koshin.Release) ([]byte, error) {
	if err := koshin.ValidateReleaseName(rel.Name); err != nil {
		return nil, err
	}
	f, err := os.OpenInRoot(string(d), rel.Name+".key")
	if err != nil {
		return nil, koshin.Errorf(koshin.ENOTFOUND, "No content key for release %s.", rel.Name)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return nil, koshin.Internal(err)
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) != encryption.KeySize {
		return nil, koshin.Errorf(koshin.EINVALID, "The content key of release %s is not %d hex digits.", rel.Name, 2*encryption.KeySize)
	}
	return key, nil
}
