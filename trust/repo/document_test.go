package repo_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
)

// A release's SBOM and advisory are stored content-addressed, signed by
// digest, and published next to the payloads; a damaged stored document
// stops the publish, and a digest signed without its document publishes
// nothing for it.
func TestPublishDocuments(t *testing.T) {
	f := committed(t)
	sbom, advisory := []byte(`{"bomFormat":"CycloneDX"}`), []byte(`{"document":{}}`)
	sbomSum, err := f.r.StoreDocument(sbom)
	must(t, err)
	advSum, err := f.r.StoreDocument(advisory)
	must(t, err)
	c := custom("rootfs", 1, "board-a")
	c.SBOMSHA256, c.AdvisorySHA256 = sbomSum, advSum
	f.release(t, "rootfs-1", c)
	orphan := custom("app", 1, "board-a")
	orphan.SBOMSHA256 = strings.Repeat("ab", 32) // signed, never stored
	f.release(t, "app-1", orphan)

	out := t.TempDir()
	must(t, f.r.Publish(out))
	for path, want := range map[string][]byte{
		repo.DocumentPath(sbomSum, repo.DocumentSBOM):    sbom,
		repo.DocumentPath(advSum, repo.DocumentAdvisory): advisory,
	} {
		got, err := os.ReadFile(filepath.Join(out, path))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q, %v", path, got, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, repo.DocumentPath(orphan.SBOMSHA256, repo.DocumentSBOM))); !os.IsNotExist(err) {
		t.Errorf("a document that was never stored is published: %v", err)
	}
	must(t, f.r.Publish(out)) // idempotent

	// Damage the stored advisory: the next publish refuses.
	stored := filepath.Join(f.dir, "payloads", advSum)
	must(t, os.Chmod(stored, 0o644))
	must(t, os.WriteFile(stored, []byte(`{"document":{"forged":1}}`), 0o644))
	wantErr(t, f.r.Publish(t.TempDir()), repo.ErrCorrupt)
}

func TestStoreDocumentRefuses(t *testing.T) {
	f := committed(t)
	for _, b := range [][]byte{nil, make([]byte, repo.MaxDocumentSize+1)} {
		if _, err := f.r.StoreDocument(b); err == nil {
			t.Errorf("document of %d bytes stored", len(b))
		}
	}
	c := custom("rootfs", 1, "board-a")
	c.AdvisorySHA256 = "not-hex"
	wantErr(t, f.r.AddTarget("x", failReader{t}, c, nil), trust.ErrInvalid)
}
