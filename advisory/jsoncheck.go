package advisory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxDepth bounds nesting of arrays and objects. Real advisories and SBOMs
// nest a few levels (CSAF product branches, CycloneDX sub-components);
// deeper input only costs stack and time.
const maxDepth = 64

// checkJSON walks a document's tokens once before it is decoded: one JSON
// value, nothing after it, nesting at most maxDepth, and no object with a
// key twice. encoding/json keeps the last of duplicate keys silently, and
// two readers that disagree on which one counts could be shown different
// advisories from the same signed bytes.
func checkJSON(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	type frame struct {
		object    bool
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if delim, ok := tok.(json.Delim); ok && delim == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return trailing(d)
				}
				continue
			}
			key := tok.(string) // the decoder guarantees a string key here
			if top.keys[key] {
				return fmt.Errorf("%w: key %q appears twice in one object", ErrSyntax, clip(key))
			}
			top.keys[key] = true
			top.expectKey = false
			continue
		}
		if top != nil && top.object {
			top.expectKey = true
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxDepth {
				return fmt.Errorf("%w: nested deeper than %d levels", ErrSyntax, maxDepth)
			}
			f := &frame{object: tok == json.Delim('{')}
			if f.object {
				f.keys, f.expectKey = map[string]bool{}, true
			}
			stack = append(stack, f)
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			return trailing(d)
		}
	}
	return fmt.Errorf("%w: empty document", ErrSyntax)
}

// trailing refuses anything but white space after the top-level value.
func trailing(d *json.Decoder) error {
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the document", ErrSyntax)
	}
	return nil
}

// decodeStrict decodes a checked document into v, refusing unknown
// properties when strict.
func decodeStrict(b []byte, v any, strict bool) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if strict {
		d.DisallowUnknownFields()
	}
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// clip shortens attacker-supplied text quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
