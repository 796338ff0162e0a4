package tpm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/tpm"
	"github.com/koshin-ota/koshin/agent/tpm/tpmtest"
)

func newCounter(t *testing.T, tp transport.TPM, o tpm.Options) *tpm.Counter {
	t.Helper()
	c, err := tpm.New(tp, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustGet(t *testing.T, c agent.Counter, component string) uint64 {
	t.Helper()
	n, err := c.Get(component)
	if err != nil {
		t.Fatalf("get %s: %v", component, err)
	}
	return n
}

func mustAdvance(t *testing.T, c agent.Counter, component string, n uint64) {
	t.Helper()
	if err := c.Advance(component, n); err != nil {
		t.Fatalf("advance %s to %d: %v", component, n, err)
	}
}

// The counter goes up only, per component, and what it says survives a new
// connection and a TPM that loses power.
func TestCounter(t *testing.T) {
	tpmtest.Need(t)
	sw := tpmtest.Start(t)
	conn := &flaky{TPM: sw.Open()}
	c := newCounter(t, conn, tpm.Options{MaxIncrements: 16})
	if n := mustGet(t, c, "rootfs"); n != 0 {
		t.Fatalf("fresh counter %d, want 0", n)
	}
	for _, step := range []struct{ to, want uint64 }{{3, 3}, {2, 3}, {3, 3}, {5, 5}, {0, 5}} {
		mustAdvance(t, c, "rootfs", step.to)
		if got := mustGet(t, c, "rootfs"); got != step.want {
			t.Fatalf("after Advance(%d): %d, want %d", step.to, got, step.want)
		}
	}
	mustAdvance(t, c, "app", 2)
	if err := c.Advance("rootfs", 22); !errors.Is(err, tpm.ErrJump) {
		t.Fatalf("jump of 17 steps with MaxIncrements 16: %v, want ErrJump", err)
	}
	mustAdvance(t, c, "rootfs", 21)
	// A component's first value is set directly, however high: only later
	// steps are increments.
	mustAdvance(t, c, "big", 1<<40)
	mustAdvance(t, c, "big", 1<<40+3)
	// Every command went through the retry loop: every other one was
	// answered TPM_RC_RETRY by the wrapper.
	if c.Retries() == 0 || c.Retries() != uint64(conn.injected) {
		t.Fatalf("retries %d, %s", c.Retries(), conn)
	}
	t.Logf("%s; the Counter repeated %d", conn, c.Retries())

	check := func(c *tpm.Counter) {
		t.Helper()
		for comp, want := range map[string]uint64{"rootfs": 21, "app": 2, "big": 1<<40 + 3, "bootloader": 0} {
			if got := mustGet(t, c, comp); got != want {
				t.Fatalf("%s: %d, want %d", comp, got, want)
			}
		}
	}
	check(newCounter(t, sw.Open(), tpm.Options{}))
	sw.Restart() // SIGKILL: the TPM loses power without an orderly shutdown
	check(newCounter(t, sw.Open(), tpm.Options{}))
}

// Restoring the state directory does not bring the TPM counter back; the
// file counter next to it is fooled (the unit-level twin of
// TestRestoredStateDirectory).
func TestCounterIgnoresRestoredFiles(t *testing.T) {
	tpmtest.Need(t)
	sw := tpmtest.Start(t)
	tc := newCounter(t, sw.Open(), tpm.Options{})
	dir := t.TempDir()
	fc := &agent.FileCounter{FS: agent.DirFS(dir), Key: []byte("device-local key")}
	for _, c := range []agent.Counter{tc, fc} {
		mustAdvance(t, c, "rootfs", 1)
	}
	snap := t.TempDir()
	copyDir(t, dir, snap)
	for _, c := range []agent.Counter{tc, fc} {
		mustAdvance(t, c, "rootfs", 2)
	}
	restored := t.TempDir()
	copyDir(t, snap, restored)
	fc = &agent.FileCounter{FS: agent.DirFS(restored), Key: []byte("device-local key")}
	if got := mustGet(t, fc, "rootfs"); got != 1 {
		t.Fatalf("restored file counter %d, want the stale 1", got)
	}
	if got := mustGet(t, tc, "rootfs"); got != 2 {
		t.Fatalf("TPM counter %d, want 2", got)
	}
}

// cut is a transport that loses power after limit commands: every later
// command fails without reaching the TPM. With afterSend, command limit+1
// reaches the TPM but its answer is lost (power fails as the TPM replies).
type cut struct {
	transport.TPM
	limit, n  int
	afterSend bool
}

var errCut = errors.New("power cut")

func (c *cut) Send(cmd []byte) ([]byte, error) {
	c.n++
	switch {
	case c.n <= c.limit:
		return c.TPM.Send(cmd)
	case c.n == c.limit+1 && c.afterSend:
		c.TPM.Send(cmd)
	}
	return nil, errCut
}

// A power cut before or after any command of provisioning (first Advance,
// to 2) or of a later Advance (to 7: five increments) leaves a slot that the
// next start finishes: the counter never reads above what was asked, never
// below a value an Advance returned from, and repeating the Advances lands
// exactly on the target, as the engine's resumed commit does.
func TestPowerCutAnywhere(t *testing.T) {
	tpmtest.Need(t)
	sw := tpmtest.Start(t)
	conn := sw.Open()
	advance := func(c *tpm.Counter) (reached uint64, err error) {
		for _, n := range []uint64{2, 7} {
			if err := c.Advance("rootfs", n); err != nil {
				return reached, err
			}
			reached = n
		}
		return reached, nil
	}
	// A dry run counts the commands.
	dry := &cut{TPM: conn, limit: 1 << 30}
	if _, err := advance(newCounter(t, dry, tpm.Options{Base: base(0)})); err != nil {
		t.Fatal(err)
	}
	total := dry.n
	t.Logf("provisioning at 2, then 5 increments: %d commands; cutting before and after each", total)
	run := 0
	for limit := 0; limit < total; limit++ {
		for _, afterSend := range []bool{false, true} {
			run++
			o := tpm.Options{Base: base(run)}
			reached, err := advance(newCounter(t, &cut{TPM: conn, limit: limit, afterSend: afterSend}, o))
			if !errors.Is(err, errCut) {
				t.Fatalf("cut after %d commands: %v, want the cut", limit, err)
			}
			// Power back: a new agent process.
			c := newCounter(t, conn, o)
			if n := mustGet(t, c, "rootfs"); n > 7 || n < reached {
				t.Fatalf("cut after %d commands (after send %v): counter %d, want within [%d, 7]", limit, afterSend, n, reached)
			}
			if _, err := advance(c); err != nil {
				t.Fatalf("cut after %d commands (after send %v): resuming: %v", limit, afterSend, err)
			}
			if n := mustGet(t, c, "rootfs"); n != 7 {
				t.Fatalf("cut after %d commands (after send %v): counter %d after resuming, want 7", limit, afterSend, n)
			}
		}
	}
	t.Logf("%d power cuts, all resumed to 7", run)
}

// base gives each scenario its own NV range on one TPM.
func base(i int) tpm2.TPMHandle { return tpm.DefaultBase + tpm2.TPMHandle(0x100*i) }

// Anything in koshin's range that koshin did not leave there exactly so is
// a corrupt counter, never 0: a counter without its record, a record
// without its counter, an ordinary index where the counter belongs.
func TestTamperedIndices(t *testing.T) {
	tpmtest.Need(t)
	sw := tpmtest.Start(t)
	conn := sw.Open()
	undefine := func(h tpm2.TPMHandle) {
		t.Helper()
		_, err := tpm2.NVUndefineSpace{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
			NVIndex: tpm2.NamedHandle{Handle: h, Name: nvName(t, conn, h)}}.Execute(conn)
		if err != nil {
			t.Fatalf("undefine %#x: %v", uint32(h), err)
		}
	}
	for i, tamper := range []struct {
		name string
		do   func(record, counter tpm2.TPMHandle)
	}{
		{"counter deleted", func(_, counter tpm2.TPMHandle) { undefine(counter) }},
		{"record deleted", func(record, _ tpm2.TPMHandle) { undefine(record) }},
		{"counter replaced by an ordinary index", func(_, counter tpm2.TPMHandle) {
			undefine(counter)
			_, err := tpm2.NVDefineSpace{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
				PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: counter, NameAlg: tpm2.TPMAlgSHA256, DataSize: 8,
					Attributes: tpm2.TPMANV{NT: tpm2.TPMNTOrdinary, AuthWrite: true, AuthRead: true, NoDA: true}})}.Execute(conn)
			if err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			o := tpm.Options{Base: base(i)}
			mustAdvance(t, newCounter(t, conn, o), "rootfs", 3)
			tamper.do(base(i), base(i)+1)
			c := newCounter(t, conn, o)
			if _, err := c.Get("rootfs"); !errors.Is(err, agent.ErrCorruptCounter) {
				t.Fatalf("get: %v, want ErrCorruptCounter", err)
			}
			if err := c.Advance("rootfs", 4); !errors.Is(err, agent.ErrCorruptCounter) {
				t.Fatalf("advance: %v, want ErrCorruptCounter", err)
			}
		})
	}
}

// With an owner password set at provisioning (and kept off the device),
// nobody on the device can delete the indices, and a counter deleted and
// defined again does not start over: the TPM starts it above every counter
// it ever deleted.
func TestOwnerPasswordProtectsIndices(t *testing.T) {
	tpmtest.Need(t)
	sw := tpmtest.Start(t)
	conn := sw.Open()
	owner := []byte("factory owner secret")
	if _, err := (tpm2.HierarchyChangeAuth{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		NewAuth: tpm2.TPM2BAuth{Buffer: owner}}).Execute(conn); err != nil {
		t.Fatal(err)
	}
	if err := newCounter(t, conn, tpm.Options{}).Advance("rootfs", 1); err == nil {
		t.Fatal("defined indices without the owner password")
	}
	mustAdvance(t, newCounter(t, conn, tpm.Options{OwnerAuth: owner}), "rootfs", 7)
	// The agent needs no owner secret after provisioning.
	c := newCounter(t, conn, tpm.Options{})
	mustAdvance(t, c, "rootfs", 9)
	h := tpm.DefaultBase + 1
	_, err := tpm2.NVUndefineSpace{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		NVIndex: tpm2.NamedHandle{Handle: h, Name: nvName(t, conn, h)}}.Execute(conn)
	if !errors.Is(err, tpm2.TPMRCBadAuth) && !errors.Is(err, tpm2.TPMRCAuthFail) {
		t.Fatalf("undefine without the owner password: %v, want an authorisation failure", err)
	}
	// With the owner password, deleting and redefining the counter does
	// not reset it: its first increment starts above the deleted value,
	// so it reads higher than before, never lower.
	_, err = tpm2.NVUndefineSpace{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(owner)},
		NVIndex: tpm2.NamedHandle{Handle: h, Name: nvName(t, conn, h)}}.Execute(conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("rootfs"); !errors.Is(err, agent.ErrCorruptCounter) {
		t.Fatalf("after deleting the counter: %v, want ErrCorruptCounter", err)
	}
	if _, err := (tpm2.NVDefineSpace{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(owner)},
		PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: h, NameAlg: tpm2.TPMAlgSHA256, DataSize: 8,
			Attributes: tpm2.TPMANV{NT: tpm2.TPMNTCounter, AuthWrite: true, AuthRead: true, NoDA: true}})}).Execute(conn); err != nil {
		t.Fatal(err)
	}
	if _, err := (tpm2.NVIncrement{AuthHandle: tpm2.AuthHandle{Handle: h, Name: nvName(t, conn, h), Auth: tpm2.PasswordAuth(nil)},
		NVIndex: tpm2.NamedHandle{Handle: h, Name: nvName(t, conn, h)}}).Execute(conn); err != nil {
		t.Fatal(err)
	}
	if n := mustGet(t, newCounter(t, conn, tpm.Options{}), "rootfs"); n < 9 {
		t.Fatalf("redefined counter reads %d, below the 9 it had reached", n)
	}
}

func nvName(t *testing.T, tp transport.TPM, h tpm2.TPMHandle) tpm2.TPM2BName {
	t.Helper()
	rsp, err := tpm2.NVReadPublic{NVIndex: h}.Execute(tp)
	if err != nil {
		t.Fatalf("read public %#x: %v", uint32(h), err)
	}
	return rsp.NVName
}

// Options outside the NV index handle range are refused up front.
func TestOptionsRange(t *testing.T) {
	for _, o := range []tpm.Options{
		{Base: 0x81000000},
		{Base: 0x01FFFFF0, Slots: 16},
		{Slots: -1},
	} {
		if _, err := tpm.New(nil, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if _, err := tpm.New(nil, tpm.Options{}); err != nil {
		t.Fatal(err)
	}
}

// busy answers every command with one response code and counts commands.
type busy struct {
	rc uint32
	n  int
}

func (b *busy) Send([]byte) ([]byte, error) {
	b.n++
	return []byte{0x80, 0x01, 0, 0, 0, 10, byte(b.rc >> 24), byte(b.rc >> 16), byte(b.rc >> 8), byte(b.rc)}, nil
}

// The retry loop repeats what the TPM asks to repeat, a bounded number of
// times, and nothing else.
func TestRetryLoop(t *testing.T) {
	for _, tc := range []struct {
		rc    tpm2.TPMRC
		sends int
	}{
		{tpm2.TPMRCRetry, 64}, {tpm2.TPMRCYielded, 64}, {tpm2.TPMRCTesting, 64},
		{tpm2.TPMRCNVRate, 64}, {tpm2.TPMRCNVUnavailable, 64},
		{tpm2.TPMRCFailure, 1}, {tpm2.TPMRCLockout, 1},
	} {
		b := &busy{rc: uint32(tc.rc)}
		c := newCounter(t, b, tpm.Options{Sleep: func(time.Duration) {}})
		_, err := c.Get("rootfs")
		if !errors.Is(err, tc.rc) || b.n != tc.sends {
			t.Errorf("TPM answering %v: %v after %d sends, want that error after %d", tc.rc, err, b.n, tc.sends)
		}
	}
}
