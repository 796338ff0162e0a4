package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// maxVersion bounds versions read from current.json; it also bounds how many
// root files Open reads.
const (
	maxVersion     = 1 << 53
	maxRootVersion = 100_000
)

// current is signed/current.json, the single commit point of the signed
// state: every versioned file it names was written and fsynced before it
// was replaced, so a crash at any instant leaves either the old state or
// the new one. Files with higher versions that it does not name are
// leftovers of an interrupted commit and are overwritten by the next one.
type current struct {
	Root      int64 `json:"root"`
	Targets   int64 `json:"targets"`
	Snapshot  int64 `json:"snapshot"`
	Timestamp int64 `json:"timestamp"`
}

func parseCurrent(b []byte) (current, error) {
	var c current
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return c, fmt.Errorf("%w: %s is malformed", ErrCorrupt, currentFile)
	}
	if c.Root < 1 || c.Root > maxRootVersion {
		return c, fmt.Errorf("%w: %s: root version %d", ErrCorrupt, currentFile, c.Root)
	}
	for _, v := range []int64{c.Targets, c.Snapshot, c.Timestamp} {
		if v < 1 || v > maxVersion {
			return c, fmt.Errorf("%w: %s: version %d out of range", ErrCorrupt, currentFile, v)
		}
	}
	return c, nil
}

// signedState is the committed, verified state and the exact bytes of each
// file (snapshot and timestamp hash bytes, so they are never re-encoded).
type signedState struct {
	roots     []*rootMeta
	rootRaw   [][]byte
	targets   *targetsMeta
	targetRaw []byte
	snapshot  *snapshotMeta
	snapRaw   []byte
	timestamp *timestampMeta
	tsRaw     []byte
}

func (s *signedState) root() *rootMeta { return s.roots[len(s.roots)-1] }

func (s *signedState) current() current {
	return current{
		Root:      s.root().Signed.Version,
		Targets:   s.targets.Signed.Version,
		Snapshot:  s.snapshot.Signed.Version,
		Timestamp: s.timestamp.Signed.Version,
	}
}

// loadSigned reads and verifies the signed state; (nil, nil) means the
// repository was never committed.
func loadSigned(dir string, channel trust.Channel) (*signedState, error) {
	b, err := readLimited(filepath.Join(dir, currentFile), 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cur, err := parseCurrent(b)
	if err != nil {
		return nil, err
	}
	s, err := readState(dir, cur)
	if err != nil {
		return nil, err
	}
	if err := s.verify(channel); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return s, nil
}

func readState(dir string, cur current) (*signedState, error) {
	s := &signedState{}
	for v := int64(1); v <= cur.Root; v++ {
		m, raw, err := readVersioned[metadata.RootType](dir, v, roleRoot)
		if err != nil {
			return nil, err
		}
		s.roots = append(s.roots, m)
		s.rootRaw = append(s.rootRaw, raw)
	}
	var err error
	if s.targets, s.targetRaw, err = readVersioned[metadata.TargetsType](dir, cur.Targets, roleTargets); err != nil {
		return nil, err
	}
	if s.snapshot, s.snapRaw, err = readVersioned[metadata.SnapshotType](dir, cur.Snapshot, roleSnapshot); err != nil {
		return nil, err
	}
	if s.timestamp, s.tsRaw, err = readVersioned[metadata.TimestampType](dir, cur.Timestamp, roleTimestamp); err != nil {
		return nil, err
	}
	return s, nil
}

func readVersioned[T metadata.Roles](dir string, v int64, role string) (*metadata.Metadata[T], []byte, error) {
	name := filepath.Join(dir, versionedName(v, role))
	raw, err := readLimited(name, maxMetaSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	m, err := parseMeta[T](raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, raw, nil
}

// verify checks the whole chain a device would check: every root by its
// predecessor and itself, targets/snapshot/timestamp by the latest root,
// snapshot naming these exact targets bytes and timestamp this exact
// snapshot. Expiry is not checked: an expired repository must still open so
// that it can be re-signed.
func (s *signedState) verify(channel trust.Channel) error {
	var prev *rootMeta
	for i, r := range s.roots {
		if r.Signed.Version != int64(i+1) {
			return fmt.Errorf("%w: root file %d holds version %d", trust.ErrInvalid, i+1, r.Signed.Version)
		}
		if err := checkRootShape(&r.Signed, imageRoles, channel); err != nil {
			return err
		}
		if err := verifyRootStep(prev, r); err != nil {
			return err
		}
		prev = r
	}
	if err := verifyTargets(s.root(), s.targets, channel); err != nil {
		return err
	}
	if err := verifySnapshot(s.root(), s.snapshot, s.targets, s.targetRaw); err != nil {
		return err
	}
	return verifyTimestamp(s.root(), s.timestamp, s.snapshot, s.snapRaw)
}

func verifyTargets(root *rootMeta, t *targetsMeta, channel trust.Channel) error {
	if err := root.VerifyDelegate(roleTargets, t); err != nil {
		return fmt.Errorf("%w: targets %d: %v", trust.ErrThreshold, t.Signed.Version, err)
	}
	return checkTargetsContent(&t.Signed, channel)
}

func verifySnapshot(root *rootMeta, snap *snapshotMeta, t *targetsMeta, targetsRaw []byte) error {
	if err := root.VerifyDelegate(roleSnapshot, snap); err != nil {
		return fmt.Errorf("%w: snapshot %d: %v", trust.ErrThreshold, snap.Signed.Version, err)
	}
	return checkMetaFile(snap.Signed.Meta, "targets.json", t.Signed.Version, targetsRaw)
}

func verifyTimestamp(root *rootMeta, ts *timestampMeta, snap *snapshotMeta, snapRaw []byte) error {
	if err := root.VerifyDelegate(roleTimestamp, ts); err != nil {
		return fmt.Errorf("%w: timestamp %d: %v", trust.ErrThreshold, ts.Signed.Version, err)
	}
	return checkMetaFile(ts.Signed.Meta, "snapshot.json", snap.Signed.Version, snapRaw)
}

// checkMetaFile requires exactly one entry naming version and the hash and
// length of raw: koshin always writes both, so their absence is damage.
func checkMetaFile(meta map[string]*metadata.MetaFiles, name string, version int64, raw []byte) error {
	mf := meta[name]
	if len(meta) != 1 || mf == nil {
		return fmt.Errorf("%w: expected exactly one entry, %s", trust.ErrMismatch, name)
	}
	if mf.Version != version {
		return fmt.Errorf("%w: %s version %d, have %d", trust.ErrMismatch, name, mf.Version, version)
	}
	if len(mf.Hashes) == 0 || mf.Length == 0 {
		return fmt.Errorf("%w: %s entry lacks length or hashes", trust.ErrMismatch, name)
	}
	if err := mf.VerifyLengthHashes(raw); err != nil {
		return fmt.Errorf("%w: %s: %v", trust.ErrMismatch, name, err)
	}
	return nil
}

// write writes the versioned files of s that are newer than from (the
// state on disk) and then the commit point. Committed files are never
// rewritten.
func (s *signedState) write(dir string, from current) error {
	for i, raw := range s.rootRaw {
		if int64(i+1) > from.Root {
			if err := writeFile(filepath.Join(dir, versionedName(int64(i+1), roleRoot)), raw); err != nil {
				return err
			}
		}
	}
	files := []struct {
		v, old int64
		role   string
		raw    []byte
	}{
		{s.targets.Signed.Version, from.Targets, roleTargets, s.targetRaw},
		{s.snapshot.Signed.Version, from.Snapshot, roleSnapshot, s.snapRaw},
		{s.timestamp.Signed.Version, from.Timestamp, roleTimestamp, s.tsRaw},
	}
	for _, f := range files {
		if f.v <= f.old {
			continue
		}
		if err := crashPoint("commit:" + f.role); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, versionedName(f.v, f.role)), f.raw); err != nil {
			return err
		}
	}
	if err := crashPoint("commit:" + currentFile); err != nil {
		return err
	}
	b, _ := json.Marshal(s.current())
	return writeFile(filepath.Join(dir, currentFile), append(b, '\n'))
}

func writeFile(name string, data []byte) error {
	return atomicfile.WriteFile(name, data, fileMode)
}

// crashPoint lets tests fail a multi-file operation midway, as a crash
// would; it is nil outside tests.
var crashHook func(point string) error

func crashPoint(point string) error {
	if crashHook != nil {
		return crashHook(point)
	}
	return nil
}
