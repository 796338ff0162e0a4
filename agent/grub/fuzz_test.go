package grub

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzDecode: any bytes either fail cleanly or decode to variables that
// survive re-encoding and edits, with the block size unchanged.
func FuzzDecode(f *testing.F) {
	good, _ := Encode([]Var{{"koshin_order", "B A"}, {"note", "a\\b\nc"}})
	f.Add(good)
	f.Add([]byte(Signature + "# c\\\na=1\nb=\\x\n###"))
	f.Add([]byte(Signature + "a=1\na=2\n"))
	f.Add([]byte(Signature + "junk\n#"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vars, err := Decode(b)
		if err != nil {
			return
		}
		checkEncode(t, vars)
		e, err := parse("", b)
		if err != nil {
			return
		}
		checkSet(t, e, vars)
		if len(vars) > 0 {
			checkDelete(t, e, vars)
		}
	})
}

func checkEncode(t *testing.T, vars []Var) {
	enc, err := Encode(vars)
	if errors.Is(err, ErrInvalidName) || errors.Is(err, ErrTooLarge) {
		return // names GRUB reads but koshin will not write, or a bigger block
	}
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if again, err := Decode(enc); err != nil || !slices.Equal(again, vars) {
		t.Fatalf("re-encoded: %q, %v; want %q", again, err, vars)
	}
}

func checkSet(t *testing.T, e *Env, vars []Var) {
	const name, value = "koshin_fuzz", "x\\y\n#z"
	size := len(e.buf)
	err := e.Set(name, value)
	if errors.Is(err, ErrTooLarge) {
		return
	}
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	got, err := Decode(e.buf)
	if err != nil || len(e.buf) != size {
		t.Fatalf("after Set: %v, size %d -> %d", err, size, len(e.buf))
	}
	want := slices.DeleteFunc(slices.Clone(vars), func(v Var) bool { return v.Name == name })
	got = slices.DeleteFunc(got, func(v Var) bool { return v.Name == name })
	if v, _ := e.Get(name); v != value || !slices.Equal(got, want) {
		t.Fatalf("after Set: %q, others %q; want others %q", v, got, want)
	}
}

func checkDelete(t *testing.T, e *Env, vars []Var) {
	first := e.vars[0].Name
	if strings.ContainsAny(first, "\\") || checkVar(first, "") != nil {
		return
	}
	if err := e.Delete(first); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := e.Get(first); ok || len(e.vars) != len(e.All()) {
		t.Fatalf("%q still set", first)
	}
}
