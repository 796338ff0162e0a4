package bootenv

import (
	"fmt"
	"os"
	"strings"
)

// CmdlineParam is the kernel parameter the boot scripts set to the slot
// they booted.
const CmdlineParam = "koshin.slot"

// BootedFromCmdline returns a function reading the booted slot from a
// kernel command line file (normally /proc/cmdline).
func BootedFromCmdline(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("bootenv: %w", err)
		}
		return ParseCmdline(string(b))
	}
}

// ParseCmdline finds koshin.slot=X in a kernel command line; the last
// occurrence wins, as for the kernel's own parameters.
func ParseCmdline(cmdline string) (string, error) {
	slot := ""
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, CmdlineParam+"="); ok {
			slot = v
		}
	}
	if slot == "" || len(slot) > 16 {
		return "", fmt.Errorf("bootenv: no usable %s= on the kernel command line", CmdlineParam)
	}
	return slot, nil
}
