package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/trust/verify"
)

// integrity configures the engine's detection of unauthorised changes
// (EN 303 645 5.7-2) from the configuration file.
func (a *Agent) integrity(f verify.Fetcher, key []byte) agent.IntegrityConfig {
	c := a.cfg.Integrity
	rate := c.SlotCheckRate
	if rate < 0 {
		rate = 0 // no limit
	}
	vcfg := a.verifyConfig(f)
	return agent.IntegrityConfig{
		SlotCheck:      c.SlotCheck != nil && *c.SlotCheck,
		SlotCheckEvery: time.Duration(c.SlotCheckEvery),
		SlotCheckRate:  rate,
		SlotCheckMax:   c.SlotCheckMax,
		// The trust core's own check: both roots must open, verify their
		// signatures and match the device's channel.
		Trusted: func() error {
			_, err := verify.New(vcfg)
			return err
		},
		// The counter's key: kept off the state directory where the
		// integrator can, and kept by a factory reset.
		Key: key,
	}
}

// bootCheck runs the configured secure/measured-boot hook once per start:
// the verdict is about the boot that started this process.
type bootCheck struct {
	once    sync.Once
	verdict string
}

// bootIntegrity is agent.Config.BootIntegrity.
func (a *Agent) bootIntegrity() string {
	a.boot.once.Do(func() { a.boot.verdict = a.runBootCheck() })
	return a.boot.verdict
}

func (a *Agent) runBootCheck() string {
	argv := a.cfg.Integrity.BootCheck
	if len(argv) == 0 {
		return "unverified"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(a.cfg.Integrity.BootCheckTimeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return "verified"
	case errors.As(err, &exit) && exit.ExitCode() == 1 && ctx.Err() == nil:
		a.log.Error("boot integrity check failed", "output", string(out[:min(len(out), 512)]))
		return "failed"
	}
	// A hook that cannot run or gives no verdict proves nothing either way.
	a.log.Warn("boot integrity check gave no verdict", "err", err, "output", string(out[:min(len(out), 512)]))
	return "unverified"
}

// refusingVerifier stands in for the trust core when the trusted metadata
// does not verify: nothing can be verified, so nothing installs.
type refusingVerifier struct{ err error }

func (r refusingVerifier) Check(context.Context, []byte, string, map[string]uint64) ([]agent.Target, error) {
	return nil, fmt.Errorf("trusted metadata unusable: %w", r.err)
}

func (r refusingVerifier) Payload(agent.Target, io.Reader, int64, []byte) (agent.PayloadReader, error) {
	return nil, fmt.Errorf("trusted metadata unusable: %w", r.err)
}
