package agenttest_test

import (
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
)

func TestSimulatedBootloader(t *testing.T) {
	var b *agenttest.Bootloader
	agenttest.RunBootloaderSuite(t, agenttest.BootloaderHarness{
		BootLimit: 3,
		New: func(t *testing.T) agent.Bootloader {
			b = &agenttest.Bootloader{Path: filepath.Join(t.TempDir(), "env.json"),
				Inj: agenttest.NewInjector(1), Names: [2]string{"A", "B"}}
			if err := b.Write(agenttest.Env{Slot: "A", BootLimit: 3}); err != nil {
				t.Fatal(err)
			}
			return b
		},
		PowerOn: func(t *testing.T) string {
			s, err := b.PowerOn()
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}
