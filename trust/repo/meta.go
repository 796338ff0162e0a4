package repo

import (
	"fmt"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

type (
	targetsMeta   = metadata.Metadata[metadata.TargetsType]
	snapshotMeta  = metadata.Metadata[metadata.SnapshotType]
	timestampMeta = metadata.Metadata[metadata.TimestampType]
)

// parseMeta decodes metadata of type T, refusing oversized input and
// classifying every failure as trust.ErrInvalid.
//
// go-tuf dereferences JSON objects given as null while decoding (a target
// entry "name": null panics), and exported files arrive from other
// machines, so a panic while decoding becomes an ErrInvalid.
func parseMeta[T metadata.Roles](b []byte) (m *metadata.Metadata[T], err error) {
	if len(b) > maxMetaSize {
		return nil, fmt.Errorf("%w: metadata larger than %d bytes", trust.ErrInvalid, maxMetaSize)
	}
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("%w: malformed metadata: %v", trust.ErrInvalid, p)
		}
	}()
	m, err = new(metadata.Metadata[T]).FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", trust.ErrInvalid, err)
	}
	return m, nil
}

// encodeMeta is the one serialisation of metadata koshin writes: indented
// so that release managers can read what they sign. Snapshot and timestamp
// hash these exact bytes, and publishing copies them unchanged.
func encodeMeta[T metadata.Roles](m *metadata.Metadata[T]) ([]byte, error) {
	b, err := m.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return append(b, '\n'), nil
}

func cloneMeta[T metadata.Roles](m *metadata.Metadata[T]) (*metadata.Metadata[T], error) {
	b, err := m.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("clone metadata: %w", err)
	}
	return parseMeta[T](b)
}

// expiry rounds to whole seconds in UTC, the form TUF's date format takes.
func expiry(now time.Time, d time.Duration) time.Time {
	return now.Add(d).UTC().Truncate(time.Second)
}
