package agent_test

import (
	"errors"
	"io/fs"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
)

var defaultSettings = deviceapi.Settings{UpdatesEnabled: true, Automatic: true, Notifications: true}

// journal reads the device's journal from disk (nil if there is none).
func (s *sim) journal() *agent.Journal {
	s.tb.Helper()
	b, err := s.d.State.Peek("journal.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.tb.Fatal(err)
	}
	j, err := agent.LoadJournal(b)
	if err != nil {
		s.tb.Fatalf("journal on disk: %v", err)
	}
	return j
}

func (s *sim) counter() uint64 {
	s.tb.Helper()
	n, err := s.d.Counter().Get(component)
	if err != nil {
		s.tb.Fatalf("counter: %v", err)
	}
	return n
}

// holds reports which image the slot holds: "old", "new" or "".
func (s *sim) holds(slot string) string {
	s.tb.Helper()
	if h, _ := s.d.Slots.SHA256(slot, len(s.w.newImage)); h == sha(s.w.newImage) {
		return "new"
	}
	if h, _ := s.d.Slots.SHA256(slot, len(s.w.oldImage)); h == sha(s.w.oldImage) {
		return "old"
	}
	for label, img := range s.w.others {
		if h, _ := s.d.Slots.SHA256(slot, len(img)); h == sha(img) {
			return label
		}
	}
	return ""
}

// checkBoot holds after every power-on, whatever was cut before it.
func (s *sim) checkBoot(booted string) {
	s.tb.Helper()
	img := s.holds(booted)
	if img == "" {
		s.tb.Fatalf("boot %d: booted slot %s holds neither signed image", s.boots, booted)
	}
	if c := s.counter(); c >= 2 && img == "old" {
		s.tb.Fatalf("boot %d: counter advanced to %d but slot %s (%s image) booted", s.boots, c, booted, img)
	}
	env, err := s.d.Boot.Read()
	if err != nil {
		s.tb.Fatal(err)
	}
	if j := s.journal(); j != nil && j.Tx != nil && j.Tx.State == agent.StateCommitted {
		if env.UpgradeAvailable || env.Slot != j.Tx.Slot || booted != j.Tx.Slot {
			s.tb.Fatalf("boot %d: journal committed slot %s, bootloader %+v booted %s", s.boots, j.Tx.Slot, env, booted)
		}
	}
}

// verdict checks the converged state and names it: "committed-new" or
// "running-old". Anything else fails the test.
func (s *sim) verdict() string {
	s.tb.Helper()
	j := s.journal()
	env, err := s.d.Boot.Read()
	if err != nil {
		s.tb.Fatal(err)
	}
	if j == nil || j.Tx == nil {
		s.tb.Fatalf("no transaction recorded")
	}
	booted, c := s.d.Boot.Booted, s.counter()
	commits, rollbacks := s.srv.Count(deviceapi.EventCommitted), s.srv.Count(deviceapi.EventRolledBack)+s.srv.Count(deviceapi.EventFailed)
	if env.UpgradeAvailable || env.Slot != booted {
		s.tb.Fatalf("bootloader not settled: %+v, booted %s", env, booted)
	}
	switch j.Tx.State {
	case agent.StateCommitted:
		if booted != "B" || s.holds("B") != "new" || c != 2 || commits != 1 || rollbacks != 0 ||
			j.Installed[component].SHA256 != j.Tx.Target.SHA256() {
			s.tb.Fatalf("mixed committed state: booted %s holding %s, counter %d, commits %d, rollbacks %d", booted, s.holds(booted), c, commits, rollbacks)
		}
		return "committed-new"
	case agent.StateRolledBack, agent.StateFailed:
		if booted != "A" || s.holds("A") != "old" || c != 1 || commits != 0 || rollbacks != 1 {
			s.tb.Fatalf("mixed %s state: booted %s holding %s, counter %d, commits %d, rollbacks %d", j.Tx.State, booted, s.holds(booted), c, commits, rollbacks)
		}
		return "running-old"
	}
	s.tb.Fatalf("journal state %s after convergence", j.Tx.State)
	return ""
}
