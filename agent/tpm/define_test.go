package tpm_test

import (
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/koshin-ota/koshin/agent/tpm"
	"github.com/koshin-ota/koshin/agent/tpm/tpmtest"
)

// Define takes a slot at the given value once, through the retry loop, and
// leaves a slot that exists alone; a slot defined at 0 then climbs by
// increments like any other.
func TestDefine(t *testing.T) {
	tpmtest.Need(t)
	sw := tpmtest.Start(t)
	conn := &flaky{TPM: sw.Open()}
	c := newCounter(t, conn, tpm.Options{MaxIncrements: 8})
	for _, step := range []struct {
		component   string
		start, want uint64
		defined     bool
	}{
		{"rootfs", 0, 0, true},
		{"app", 7, 7, true},
		{"rootfs", 5, 0, false}, // has a slot: keeps its value
		{"app", 9, 7, false},
	} {
		defined, err := c.Define(step.component, step.start)
		if err != nil || defined != step.defined {
			t.Fatalf("Define(%s, %d): %v, %v; want defined %v", step.component, step.start, defined, err, step.defined)
		}
		if got := mustGet(t, c, step.component); got != step.want {
			t.Fatalf("after Define(%s, %d): %d, want %d", step.component, step.start, got, step.want)
		}
	}
	mustAdvance(t, c, "rootfs", 8)
	if err := c.Advance("app", 16); !errors.Is(err, tpm.ErrJump) {
		t.Fatalf("9 steps with MaxIncrements 8: %v, want ErrJump", err)
	}
	if c.Retries() == 0 || c.Retries() != uint64(conn.injected) {
		t.Fatalf("retries %d, %s", c.Retries(), conn)
	}
	// A new connection (a new agent process) reads the same.
	c2 := newCounter(t, sw.Open(), tpm.Options{})
	if r, a := mustGet(t, c2, "rootfs"), mustGet(t, c2, "app"); r != 8 || a != 7 {
		t.Fatalf("after reconnecting: rootfs %d, app %d; want 8, 7", r, a)
	}
	if _, err := c2.Define("../x", 0); err == nil {
		t.Fatal("Define accepted a malformed component name")
	}
}

func TestCheckOwnerRange(t *testing.T) {
	for _, tc := range []struct {
		base  tpm2.TPMHandle
		slots int
		ok    bool
	}{
		{tpm.DefaultBase, 0, true},
		{tpm.OwnerNVFirst, 16, true},
		{tpm.OwnerNVLast - 31, 16, true},
		{tpm.OwnerNVLast - 30, 16, false}, // the last index spills over
		{0x01500016, 0, false},            // platform manufacturer range
		{0x01C00002, 0, false},            // TCG range (EK certificates)
		{0x81000000, 0, false},            // a persistent object, not an NV index
		{tpm.DefaultBase, -1, false},
	} {
		if err := tpm.CheckOwnerRange(tc.base, tc.slots); (err == nil) != tc.ok {
			t.Errorf("CheckOwnerRange(%#x, %d): %v, want ok %v", uint32(tc.base), tc.slots, err, tc.ok)
		}
	}
}
