package agent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/deviceapi"
)

func validJournal(state agent.State) *agent.Journal {
	tx := &agent.Transaction{ID: "0123456789abcdef", State: state, Slot: "B", FromSlot: "A",
		Target: agent.Target{Name: "rootfs-2.img", URL: "https://image.test/targets/x.rootfs-2.img", Length: 4096,
			Hashes: map[string]string{"sha256": strings.Repeat("ab", 32)}, Custom: *custom(2)},
		Started: time.Unix(0, 0).UTC()}
	if state == agent.StateDownloading {
		tx.Offset, tx.Checkpoint = 1024, []byte("KPR1...")
	}
	return &agent.Journal{Version: agent.JournalVersion, Tx: tx,
		Outbox: []deviceapi.Event{{ID: "e1-downloading", Type: deviceapi.EventDownloading, Time: time.Unix(0, 0).UTC()}}}
}

func TestJournalRoundTrip(t *testing.T) {
	for _, st := range []agent.State{agent.StateDownloading, agent.StateInstalling, agent.StateHealthCheck, agent.StateCommitted} {
		b, err := validJournal(st).Marshal()
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		j, err := agent.LoadJournal(b)
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		if j.Tx.State != st || j.Tx.Target.SHA256() != strings.Repeat("ab", 32) {
			t.Fatalf("%s: round trip gave %+v", st, j.Tx)
		}
	}
}

func TestLoadJournalRejects(t *testing.T) {
	good, _ := validJournal(agent.StateInstalling).Marshal()
	mutate := func(f func(*agent.Journal)) []byte {
		j := validJournal(agent.StateInstalling)
		f(j)
		b, _ := json.Marshal(j)
		return b
	}
	cases := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)/2],
		"trailing":       append(append([]byte{}, good...), []byte(`{}`)...),
		"unknown field":  bytes.Replace(good, []byte(`"version":1`), []byte(`"version":1,"evil":true`), 1),
		"version":        mutate(func(j *agent.Journal) { j.Version = 2 }),
		"state":          mutate(func(j *agent.Journal) { j.Tx.State = "switching" }),
		"idle persisted": mutate(func(j *agent.Journal) { j.Tx.State = agent.StateIdle }),
		"same slots":     mutate(func(j *agent.Journal) { j.Tx.Slot = "A" }),
		"one slot":       mutate(func(j *agent.Journal) { j.Tx.FromSlot = "" }),
		"no sha256":      mutate(func(j *agent.Journal) { j.Tx.Target.Hashes = map[string]string{"sha512": strings.Repeat("cd", 64)} }),
		"upper hex":      mutate(func(j *agent.Journal) { j.Tx.Target.Hashes["sha256"] = strings.Repeat("AB", 32) }),
		"offset":         mutate(func(j *agent.Journal) { j.Tx.Offset = 5000; j.Tx.Checkpoint = []byte{1} }),
		"no checkpoint":  mutate(func(j *agent.Journal) { j.Tx.Offset = 10 }),
		"length":         mutate(func(j *agent.Journal) { j.Tx.Target.Length = 0 }),
		"custom":         mutate(func(j *agent.Journal) { j.Tx.Target.Custom.ReleaseCounter = 0 }),
		"bad event":      mutate(func(j *agent.Journal) { j.Outbox[0].Type = "exploded" }),
		"huge":           bytes.Repeat([]byte(" "), agent.MaxJournalSize+1),
	}
	for name, b := range cases {
		if _, err := agent.LoadJournal(b); !errors.Is(err, agent.ErrCorruptJournal) {
			t.Errorf("%s: err = %v, want ErrCorruptJournal", name, err)
		}
	}
}

// FuzzLoadJournal: whatever bytes the journal file holds, loading never
// panics, and either fails with ErrCorruptJournal or yields a journal that
// re-validates and round-trips; and starting an engine on a device whose
// journal holds them never arms slot B, which holds unverified bytes.
func FuzzLoadJournal(f *testing.F) {
	for _, st := range []agent.State{agent.StateDownloading, agent.StateVerifying, agent.StateInstalling,
		agent.StateAwaitingReboot, agent.StateTrialBoot, agent.StateHealthCheck, agent.StateRolledBack} {
		b, _ := validJournal(st).Marshal()
		f.Add(b)
	}
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"tx":null,"blocked":"zz"}`))
	f.Add([]byte("\x00\xff{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := agent.LoadJournal(data)
		if err != nil {
			if !errors.Is(err, agent.ErrCorruptJournal) {
				t.Fatalf("error %v does not wrap ErrCorruptJournal", err)
			}
		} else {
			b, err := j.Marshal()
			if err != nil {
				t.Fatalf("accepted journal does not re-validate: %v", err)
			}
			if _, err := agent.LoadJournal(b); err != nil {
				t.Fatalf("accepted journal does not round-trip: %v", err)
			}
		}
		startOnJournal(t, data)
	})
}

// startOnJournal starts an engine on an idle device (A committed, B
// garbage) whose journal file holds data, and checks that the bootloader
// never points at B.
func startOnJournal(t *testing.T, data []byte) {
	dir := t.TempDir()
	d, err := agenttest.NewDevice(dir, agenttest.DeviceConfig{SlotSize: 8192,
		SlotA: []byte("committed image"), SlotB: bytes.Repeat([]byte{0x5a}, 8192), BootLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.State.Dir, "journal.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PowerOn(); err != nil {
		t.Fatal(err)
	}
	e, err := agent.New(agent.Config{DeviceID: "dev-1", HardwareID: hardware, Signer: testKey,
		Server: &agenttest.Server{}, Verifier: noVerifier{}, Fetcher: noFetcher{},
		Bootloader: d.Boot, Slots: d.Slots,
		Installers: map[string]agent.Installer{component: &install.Raw{Slots: d.Slots}},
		Health:     healthFunc(nil), Counter: d.Counter(), State: d.State,
		Reboot: func(context.Context) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	err = e.Start(context.Background())
	if err != nil && !errors.Is(err, agent.ErrReboot) {
		t.Logf("start: %v", err) // a refusal is fine; a switch is not
	}
	env, err := d.Boot.Read()
	if err != nil {
		t.Fatal(err)
	}
	if env.Slot != "A" || env.UpgradeAvailable {
		t.Fatalf("journal %q switched the bootloader: %+v", data, env)
	}
}

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))

type noVerifier struct{}

func (noVerifier) Check(context.Context, []byte, string, map[string]uint64) ([]agent.Target, error) {
	return nil, errors.New("no verifier in this test")
}

func (noVerifier) Payload(agent.Target, io.Reader, int64, []byte) (agent.PayloadReader, error) {
	return nil, errors.New("no verifier in this test")
}

type noFetcher struct{}

func (noFetcher) Open(context.Context, string, int64) (io.ReadCloser, error) {
	return nil, errors.New("no network in this test")
}

// A corrupt journal is kept aside, reported, and replaced by an empty one.
func TestCorruptJournalKeptAndReported(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	s := w.newSim(t, 8, 3)
	defer s.cleanup()
	garbage := []byte(`{"version":1,"tx":{"id":"x"`)
	if err := os.WriteFile(filepath.Join(s.d.State.Dir, "journal.json"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	e := s.boot(ctx)
	defer e.Close()
	if kept, err := s.d.State.Peek("journal.corrupt"); err != nil || !bytes.Equal(kept, garbage) {
		t.Fatalf("corrupt journal not kept: %q, %v", kept, err)
	}
	if ev := events(s.srv)[deviceapi.EventFailed]; ev.Reason != "journal-corrupt" {
		t.Fatalf("events %v, want a journal-corrupt report", s.srv.Received())
	}
}
