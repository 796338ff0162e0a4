package advisory

import (
	"errors"
	"fmt"
	"strings"
)

// Errors, for errors.Is. Messages add what exactly is wrong.
var (
	// ErrSyntax: the input is not one well-formed JSON document without
	// duplicate keys, or it nests too deep.
	ErrSyntax = errors.New("advisory: malformed JSON")
	// ErrTooLarge: the input exceeds the document's size limit.
	ErrTooLarge = errors.New("advisory: document too large")
	// ErrInvalid: well-formed JSON that breaks the format's rules.
	ErrInvalid = errors.New("advisory: invalid document")
	// ErrDigest: the document is not the one whose digest was signed.
	ErrDigest = errors.New("advisory: document does not match its signed digest")
)

// InvalidError lists every rule a document breaks, so that a release
// manager fixes them in one round. It matches ErrInvalid.
type InvalidError struct {
	Format   string // "CSAF" or "CycloneDX"
	Problems []string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("invalid %s document: %s", e.Format, strings.Join(e.Problems, "; "))
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// maxProblems bounds the error message of a hostile document.
const maxProblems = 20

// problems collects rule violations.
type problems []string

func (p *problems) add(path, format string, args ...any) {
	if len(*p) < maxProblems {
		*p = append(*p, path+": "+fmt.Sprintf(format, args...))
	}
}

func (p problems) err(format string) error {
	if len(p) == 0 {
		return nil
	}
	return &InvalidError{Format: format, Problems: p}
}
