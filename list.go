package koshin

// Page limits of every list method. Lists are paged by keyset (a cursor that
// is the last key the caller saw) rather than by offset: with a fleet that
// enrolls and reports while an operator pages, offsets skip or repeat rows,
// and deep offsets cost a scan of everything before them.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Limit returns the effective page size for a requested one: 0 means
// DefaultLimit; negative or above MaxLimit is EINVALID.
func Limit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultLimit, nil
	case n < 0 || n > MaxLimit:
		return 0, Errorf(EINVALID, "Limit must be between 1 and %d.", MaxLimit)
	}
	return n, nil
}

// SeqPage pages through an append-only sequence (events, device reports,
// audit entries) by its sequence number. Ascending lists return entries with
// Seq > Cursor; descending lists (Desc) return entries with Seq < Cursor, or
// the newest entries when Cursor is 0.
type SeqPage struct {
	Cursor int64
	Desc   bool
	Limit  int
}

// Validate checks the cursor and limit.
func (p *SeqPage) Validate() error {
	if p.Cursor < 0 {
		return Errorf(EINVALID, "Cursor must not be negative.")
	}
	_, err := Limit(p.Limit)
	return err
}
