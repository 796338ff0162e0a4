package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
)

// installerFlags collects -installer NAME=TYPE[:ARG] flags.
type installerFlags map[string]InstallerConfig

func (f installerFlags) String() string { return "" }

func (f installerFlags) Set(v string) error {
	name, spec, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=raw, NAME=archive:ROOT or NAME=module:PATH")
	}
	typ, arg, _ := strings.Cut(spec, ":")
	in := InstallerConfig{Type: typ}
	switch typ {
	case "raw":
	case "archive":
		in.Root = arg
	case "module":
		in.Path = arg
	default:
		return fmt.Errorf("installer type %q: want raw, archive or module", typ)
	}
	f[name] = in
	return nil
}

// runFlags are the configuration fields flags may override.
type runFlags struct {
	server, stateDir, slotA, slotB, bootloader, fwEnv, grubenv, simEnv string
	healthDir, socket, hardwareID, logLevel, counter, tpmDevice        string
	installers                                                         installerFlags
}

func (r *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.server, "server", "", "update server `URL` (https)")
	fs.StringVar(&r.stateDir, "state-dir", "", "state `directory`")
	fs.StringVar(&r.slotA, "slot-a", "", "slot A block device or image `file`")
	fs.StringVar(&r.slotB, "slot-b", "", "slot B block device or image `file`")
	fs.StringVar(&r.bootloader, "bootloader", "", "uboot, grub or sim")
	fs.StringVar(&r.fwEnv, "fw-env-config", "", "U-Boot fw_env.config `file`")
	fs.StringVar(&r.grubenv, "grubenv", "", "GRUB environment block `file`")
	fs.StringVar(&r.simEnv, "sim-env", "", "simulated bootloader environment `file` (tests)")
	fs.StringVar(&r.healthDir, "health-dir", "", "`directory` of health-check executables")
	fs.StringVar(&r.socket, "socket", "", "control socket `path`")
	fs.StringVar(&r.hardwareID, "hardware-id", "", "hardware `ID` of this board")
	fs.StringVar(&r.logLevel, "log-level", "", "debug, info, warn or error")
	fs.StringVar(&r.counter, "counter", "", "anti-rollback counter: file or tpm")
	fs.StringVar(&r.tpmDevice, "tpm-device", "", "TPM `device` of the tpm counter (default /dev/tpmrm0)")
	r.installers = installerFlags{}
	fs.Var(r.installers, "installer", "component installer `NAME=raw|NAME=archive:ROOT|NAME=module:PATH` (repeatable)")
}

// apply overrides cfg with the flags that were set.
func (r *runFlags) apply(cfg *Config) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	oldState := cfg.StateDir
	set(&cfg.Server, r.server)
	set(&cfg.StateDir, r.stateDir)
	set(&cfg.Slots.A, r.slotA)
	set(&cfg.Slots.B, r.slotB)
	set(&cfg.Bootloader.Type, r.bootloader)
	set(&cfg.Bootloader.FwEnvConfig, r.fwEnv)
	set(&cfg.Bootloader.Grubenv, r.grubenv)
	set(&cfg.Bootloader.Env, r.simEnv)
	set(&cfg.Health.Dir, r.healthDir)
	set(&cfg.Control.Socket, r.socket)
	set(&cfg.HardwareID, r.hardwareID)
	set(&cfg.LogLevel, r.logLevel)
	set(&cfg.Counter.Type, r.counter)
	set(&cfg.Counter.TPMDevice, r.tpmDevice)
	if len(r.installers) > 0 {
		cfg.Installers = r.installers
	}
	if cfg.StateDir != oldState {
		// Paths that defaulted into the old state directory follow it.
		for _, p := range []*string{&cfg.Control.TokenFile, &cfg.CounterKey} {
			if rest, ok := strings.CutPrefix(*p, oldState+"/"); ok {
				*p = cfg.StateDir + "/" + rest
			}
		}
	}
}

// config loads the configuration and applies the run flags.
func (m *Main) runConfig(name string, args []string, extra func(*flag.FlagSet)) (*Config, *flag.FlagSet, error) {
	var path string
	var rf runFlags
	fs := m.flagSet(name, &path)
	rf.register(fs)
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	cfg, err := m.loadConfig(path, fs)
	if err != nil {
		return nil, nil, err
	}
	rf.apply(cfg)
	return cfg, fs, nil
}

func (m *Main) runCmd(args []string) error {
	cfg, fs, err := m.runConfig("run", args, nil)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := m.logger(cfg.LogLevel)
	if err != nil {
		return err
	}
	ctx, stop := m.Signals(context.Background())
	defer stop()
	for {
		err := m.runOnce(ctx, cfg, log)
		if !errors.Is(err, errRestart) {
			return err
		}
		log.Info("restarting with the new identity")
	}
}

func (m *Main) runOnce(ctx context.Context, cfg *Config, log *slog.Logger) error {
	a, err := OpenAgent(cfg, log, m.Now)
	if err != nil {
		return err
	}
	defer a.Close()
	log.Info("koshin-agent running", "version", Version, "device", a.id.ID, "enrolled", a.id.Enrolled())
	err = a.Run(ctx)
	if ctx.Err() != nil && !errors.Is(err, errRestart) {
		return nil
	}
	return err
}
