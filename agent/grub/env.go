package grub

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Env is a GRUB environment block held in memory. Set and Delete change the
// block; Save writes it. An Env is not safe for concurrent use.
type Env struct {
	path string
	buf  []byte // the whole block, always valid for Decode and freeStart
	vars []Var  // Decode(buf)
}

// Read loads the block at path, keeping its size.
func Read(path string) (*Env, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read grub env: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read grub env %s: %w", path, err)
	}
	e, err := parse(path, b)
	if err != nil {
		return nil, fmt.Errorf("read grub env %s: %w", path, err)
	}
	return e, nil
}

// Create returns an empty block for path, as grub-editenv create makes it;
// nothing is written until Save.
func Create(path string) *Env { return newEnv(path) }

func newEnv(path string) *Env {
	buf := []byte(Signature + warning + strings.Repeat("#", BlockSize-len(Signature)-len(warning)))
	return &Env{path: path, buf: buf}
}

// parse accepts b only if both GRUB's reader (Decode) and its editor
// (freeStart) understand it, so later edits cannot fail on its structure.
func parse(path string, b []byte) (*Env, error) {
	vars, err := Decode(b)
	if err != nil {
		return nil, err
	}
	if _, err := freeStart(b); err != nil {
		return nil, err
	}
	return &Env{path: path, buf: b, vars: vars}, nil
}

// Get returns the value of name and whether it is set.
func (e *Env) Get(name string) (string, bool) {
	for _, v := range e.vars {
		if v.Name == name {
			return v.Value, true
		}
	}
	return "", false
}

// All returns the variables in block order.
func (e *Env) All() []Var { return slices.Clone(e.vars) }

// Bytes returns a copy of the block as Save would write it.
func (e *Env) Bytes() []byte { return bytes.Clone(e.buf) }

// Set sets name to value like grub-editenv set: an existing line is changed
// in place, a new one is appended. It fails, changing nothing, if the name or
// value cannot be stored or the block would overflow.
func (e *Env) Set(name, value string) error {
	if err := checkVar(name, value); err != nil {
		return err
	}
	content := e.content()
	var next []byte
	if start, end, ok := findValue(content, name); ok {
		next = slices.Concat(content[:start], []byte(escape(value)), content[end:])
	} else {
		next = slices.Concat(content, []byte(name+"="+escape(value)+"\n"))
	}
	return e.replace(next)
}

// Delete removes name like grub-editenv unset; an unset name is no error.
func (e *Env) Delete(name string) error {
	if err := checkVar(name, ""); err != nil {
		return err
	}
	content := e.content()
	start, end, ok := findValue(content, name)
	if !ok {
		return nil
	}
	lineStart := start - len(name) - 1
	return e.replace(slices.Concat(content[:lineStart], content[end+1:]))
}

// content is the block without its '#' padding.
func (e *Env) content() []byte {
	n, _ := freeStart(e.buf) // cannot fail: buf is checked on every change
	return e.buf[:n]
}

// findValue finds the first line "name=..." like grub_envblk_set and returns
// the bounds of its escaped value (end is the index of the line's newline).
func findValue(content []byte, name string) (start, end int, ok bool) {
	prefix := []byte(name + "=")
	for p := len(Signature); p < len(content); p = nextLine(content, p) {
		if !bytes.HasPrefix(content[p:], prefix) {
			continue
		}
		start = p + len(prefix)
		end = nextLine(content, start) - 1
		return start, end, true
	}
	return 0, 0, false
}

// replace pads new content to the block size and installs it after checking
// that GRUB would read it back as intended.
func (e *Env) replace(content []byte) error {
	if len(content) > len(e.buf) {
		return fmt.Errorf("%w: %d bytes needed, block holds %d", ErrTooLarge, len(content), len(e.buf))
	}
	buf := slices.Concat(content, bytes.Repeat([]byte("#"), len(e.buf)-len(content)))
	next, err := parse(e.path, buf)
	if err != nil {
		return fmt.Errorf("grub env edit produced an unreadable block: %w", err)
	}
	e.buf, e.vars = next.buf, next.vars
	return nil
}
