package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

// DefaultConfigPath is where the agent looks for its configuration.
const DefaultConfigPath = "/etc/koshin/agent.json"

// maxConfigSize bounds the configuration file.
const maxConfigSize = 1 << 20

// Config is the agent's configuration file (JSON; unknown fields are
// errors, so a typo cannot silently leave a default in place). See
// docs/integrator-guide.md for every field.
type Config struct {
	// Server is the update server's device API base URL (https).
	Server     string `json:"server"`
	StateDir   string `json:"state_dir"`
	HardwareID string `json:"hardware_id"`
	// Serial is the device's physical ID (CCDS STS02); SerialFile reads it
	// from a file instead (e.g. /sys/firmware/devicetree/base/serial-number).
	Serial     string        `json:"serial,omitempty"`
	SerialFile string        `json:"serial_file,omitempty"`
	Channel    trust.Channel `json:"channel"`

	Slots      SlotsConfig                `json:"slots"`
	Bootloader BootloaderConfig           `json:"bootloader"`
	Health     HealthConfig               `json:"health"`
	Installers map[string]InstallerConfig `json:"installers"`
	// Factory is a JSON file, written by the image build, describing the
	// components installed at manufacture: {"rootfs": {"target": ...,
	// "version": ..., "release_counter": N, "sha256": ...}}.
	Factory string     `json:"factory,omitempty"`
	Poll    PollConfig `json:"poll"`
	// RebootCommand reboots the system (default systemctl reboot).
	RebootCommand []string      `json:"reboot_command,omitempty"`
	Control       ControlConfig `json:"control"`
	Reset         ResetConfig   `json:"reset"`
	// Integrity configures the detection of unauthorised changes
	// (EN 303 645 5.7-2).
	Integrity IntegrityConfig `json:"integrity"`
	// CounterKey holds the device-local key of the anti-rollback counter's
	// MAC, generated at first start; keep it off the state directory's
	// partition where possible. A factory reset keeps it.
	CounterKey string `json:"counter_key,omitempty"`
	// Counter selects where the anti-rollback counter is kept: the file
	// counter (default) or a TPM 2.0 NV counter.
	Counter CounterConfig `json:"counter"`
	// CertRenewBefore renews the device certificate this long before it
	// expires (default 30 days).
	CertRenewBefore Duration `json:"cert_renew_before,omitempty"`
	LogLevel        string   `json:"log_level,omitempty"`
}

// SlotsConfig names the A and B system slots: block devices or image
// files.
type SlotsConfig struct {
	A string `json:"a"`
	B string `json:"b"`
}

// BootloaderConfig selects the bootloader integration.
type BootloaderConfig struct {
	// Type is "uboot", "grub" or "sim" (a file-backed simulation for tests
	// and the fleet simulator; every agent start counts as a boot).
	Type string `json:"type"`
	// FwEnvConfig is libubootenv's fw_env.config (uboot).
	FwEnvConfig string `json:"fw_env_config,omitempty"`
	// SlotVar is U-Boot's slot variable (default koshin_slot).
	SlotVar string `json:"slot_var,omitempty"`
	// Grubenv is the GRUB environment block (grub).
	Grubenv string `json:"grubenv,omitempty"`
	// Env is the simulated environment file (sim).
	Env string `json:"env,omitempty"`
	// Cmdline is the kernel command line naming the booted slot
	// (koshin.slot=A); default /proc/cmdline.
	Cmdline string `json:"cmdline,omitempty"`
}

// HealthConfig configures the health check on a new image.
type HealthConfig struct {
	Dir     string   `json:"dir"`
	Timeout Duration `json:"timeout,omitempty"`
}

// InstallerConfig is one component's install handler.
type InstallerConfig struct {
	// Type is "raw" (image into the inactive slot), "archive" (file tree
	// under Root, switched atomically) or "module" (update module at
	// Path).
	Type    string   `json:"type"`
	Root    string   `json:"root,omitempty"`
	Path    string   `json:"path,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
}

// PollConfig tunes downloads; how often to poll is the server's decision.
type PollConfig struct {
	// MinRate is the slow-retrieval floor in bytes per second over each
	// Window (default 1024 B/s over 30 s; 0 keeps the default).
	MinRate int64    `json:"min_rate,omitempty"`
	Window  Duration `json:"window,omitempty"`
	// CheckpointEvery is the least bytes between durable download
	// checkpoints (default 4 MiB).
	CheckpointEvery int64 `json:"checkpoint_every,omitempty"`
	// CheckpointMinInterval is the least time between them (default 1 s;
	// "0s" checkpoints by bytes only).
	CheckpointMinInterval *Duration `json:"checkpoint_min_interval,omitempty"`
}

// checkpointMinInterval is agent.Config.CheckpointMinInterval: negative
// (bytes only) for "0s".
func (p PollConfig) checkpointMinInterval() time.Duration {
	if p.CheckpointMinInterval == nil {
		return 0 // the engine's default
	}
	if d := time.Duration(*p.CheckpointMinInterval); d > 0 {
		return d
	}
	return -1
}

// ControlConfig configures the local control API.
type ControlConfig struct {
	Socket      string   `json:"socket"`
	SocketGroup string   `json:"socket_group,omitempty"`
	AllowedUIDs []uint32 `json:"allowed_uids,omitempty"`
	AllowedGIDs []uint32 `json:"allowed_gids,omitempty"`
	TokenFile   string   `json:"token_file,omitempty"`
	MaxFailures int      `json:"max_failures,omitempty"`
	LockoutBase Duration `json:"lockout_base,omitempty"`
	LockoutMax  Duration `json:"lockout_max,omitempty"`
	MaxPostpone Duration `json:"max_postpone,omitempty"`
	MaxBundle   int64    `json:"max_bundle,omitempty"`
	// NotifyCommand is run when an update waits for the user (see
	// control.Notifier for its environment).
	NotifyCommand []string `json:"notify_command,omitempty"`
}

// ResetConfig lists what a factory reset erases besides keys and
// identity.
type ResetConfig struct {
	DataDirs []string   `json:"data_dirs,omitempty"`
	DataKeys []string   `json:"data_keys,omitempty"`
	Commands [][]string `json:"commands,omitempty"`
}

// IntegrityConfig configures the detection of unauthorised changes; see
// agent.IntegrityConfig and docs/integrator-guide.md.
type IntegrityConfig struct {
	// BootCheck is the secure/measured-boot hook, run once per agent
	// start: exit status 0 means the boot chain verified, 1 that it failed
	// verification (an unauthorised change); anything else, or no command,
	// reports "unverified".
	BootCheck        []string `json:"boot_check,omitempty"`
	BootCheckTimeout Duration `json:"boot_check_timeout,omitempty"`
	// SlotCheck hashes the booted raw-image slot and compares it with the
	// image committed there (default true; needs a root file system that
	// is mounted read-only).
	SlotCheck *bool `json:"slot_check,omitempty"`
	// SlotCheckEvery repeats the slot check (default: at start-up only).
	SlotCheckEvery Duration `json:"slot_check_every,omitempty"`
	// SlotCheckRate bounds the slot check's reads in bytes per second
	// (default 16 MiB/s; -1 for no limit).
	SlotCheckRate int64 `json:"slot_check_rate,omitempty"`
	// SlotCheckMax skips the check for images longer than this (bytes;
	// default 0, no limit).
	SlotCheckMax int64 `json:"slot_check_max,omitempty"`
}

// Duration is a time.Duration written as "30s" in JSON.
type Duration time.Duration

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("duration %q: want a positive Go duration such as \"30s\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the string form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads and validates a configuration file, filling defaults.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxConfigSize)
	}
	return ParseConfig(data)
}

// ParseConfig decodes a configuration and fills defaults; call Validate
// once flags have been applied.
func ParseConfig(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if dec.More() {
		return nil, errors.New("config: trailing data after the JSON object")
	}
	c.defaults()
	return &c, nil
}

func (c *Config) defaults() {
	if c.StateDir == "" {
		c.StateDir = "/var/lib/koshin"
	}
	if c.Channel == "" {
		c.Channel = trust.ChannelRelease
	}
	if c.Bootloader.Cmdline == "" {
		c.Bootloader.Cmdline = "/proc/cmdline"
	}
	if len(c.RebootCommand) == 0 {
		c.RebootCommand = []string{"systemctl", "reboot"}
	}
	if c.Control.Socket == "" {
		c.Control.Socket = "/run/koshin/agent.sock"
	}
	if c.Control.TokenFile == "" {
		c.Control.TokenFile = filepath.Join(c.StateDir, "control", "token")
	}
	if c.CounterKey == "" {
		c.CounterKey = filepath.Join(c.StateDir, "counter.key")
	}
	c.Counter.defaults()
	if c.Health.Dir == "" {
		c.Health.Dir = "/etc/koshin/health.d"
	}
	if c.Poll.MinRate == 0 {
		c.Poll.MinRate = 1024
	}
	if c.Poll.CheckpointMinInterval == nil {
		d := Duration(time.Second)
		c.Poll.CheckpointMinInterval = &d
	}
	if len(c.Installers) == 0 {
		c.Installers = map[string]InstallerConfig{"rootfs": {Type: "raw"}}
	}
	if c.Integrity.SlotCheck == nil {
		on := true
		c.Integrity.SlotCheck = &on
	}
	if c.Integrity.SlotCheckRate == 0 {
		c.Integrity.SlotCheckRate = 16 << 20
	}
	if c.Integrity.BootCheckTimeout == 0 {
		c.Integrity.BootCheckTimeout = Duration(time.Minute)
	}
}

// Validate checks the configuration for running the agent.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if u, err := url.Parse(c.Server); err != nil || u.Scheme != "https" || u.Host == "" {
		add("server must be an https URL, have %q", c.Server)
	}
	if err := trust.ValidateID("hardware_id", c.HardwareID); err != nil {
		add("%v", err)
	}
	if err := c.Channel.Validate(); err != nil {
		add("channel: %v", err)
	}
	for name, p := range map[string]string{"state_dir": c.StateDir, "control.socket": c.Control.Socket,
		"control.token_file": c.Control.TokenFile, "counter_key": c.CounterKey, "health.dir": c.Health.Dir} {
		if !filepath.IsAbs(p) {
			add("%s must be an absolute path, have %q", name, p)
		}
	}
	if b := c.Integrity.BootCheck; len(b) > 0 && !filepath.IsAbs(b[0]) {
		add("integrity.boot_check needs an absolute program path")
	}
	if p := c.Poll; p.CheckpointEvery < 0 || (p.CheckpointMinInterval != nil && *p.CheckpointMinInterval < 0) {
		add("poll.checkpoint_every and poll.checkpoint_min_interval must not be negative")
	}
	if c.Integrity.SlotCheckRate < -1 || c.Integrity.SlotCheckMax < 0 {
		add("integrity.slot_check_rate must be positive or -1, integrity.slot_check_max positive")
	}
	errs = append(errs, c.validateCounter()...)
	errs = append(errs, c.validateSlots()...)
	errs = append(errs, c.validateInstallers()...)
	errs = append(errs, c.validateReset()...)
	return errors.Join(errs...)
}

func (c *Config) validateSlots() []error {
	var errs []error
	raw := false
	for _, in := range c.Installers {
		raw = raw || in.Type == "raw"
	}
	if raw && (!filepath.IsAbs(c.Slots.A) || !filepath.IsAbs(c.Slots.B) || c.Slots.A == c.Slots.B) {
		errs = append(errs, fmt.Errorf("slots.a and slots.b must be two different absolute paths"))
	}
	switch b := c.Bootloader; b.Type {
	case "uboot":
		if !filepath.IsAbs(b.FwEnvConfig) {
			errs = append(errs, fmt.Errorf("bootloader.fw_env_config must be an absolute path"))
		}
	case "grub":
		if !filepath.IsAbs(b.Grubenv) {
			errs = append(errs, fmt.Errorf("bootloader.grubenv must be an absolute path"))
		}
	case "sim":
		if !filepath.IsAbs(b.Env) {
			errs = append(errs, fmt.Errorf("bootloader.env must be an absolute path"))
		}
	default:
		errs = append(errs, fmt.Errorf("bootloader.type must be uboot, grub or sim, have %q", b.Type))
	}
	return errs
}

func (c *Config) validateInstallers() []error {
	var errs []error
	for name, in := range c.Installers {
		if err := trust.ValidateID("component", name); err != nil {
			errs = append(errs, err)
		}
		switch in.Type {
		case "raw":
		case "archive":
			if !filepath.IsAbs(in.Root) {
				errs = append(errs, fmt.Errorf("installer %s: root must be an absolute path", name))
			}
		case "module":
			if !filepath.IsAbs(in.Path) {
				errs = append(errs, fmt.Errorf("installer %s: path must be an absolute path", name))
			}
		default:
			errs = append(errs, fmt.Errorf("installer %s: type must be raw, archive or module, have %q", name, in.Type))
		}
	}
	return errs
}

// validateReset refuses data directories that would erase what a reset
// must keep: the root, the agent's state, or anything above them.
func (c *Config) validateReset() []error {
	var errs []error
	keep := []string{c.StateDir, c.CounterKey, c.Slots.A, c.Slots.B}
	for _, d := range c.Reset.DataDirs {
		clean := filepath.Clean(d)
		if !filepath.IsAbs(d) || clean == "/" {
			errs = append(errs, fmt.Errorf("reset.data_dirs: %q must be an absolute path below /", d))
			continue
		}
		for _, k := range keep {
			if k != "" && (k == clean || strings.HasPrefix(k, clean+"/") || strings.HasPrefix(clean, k+"/")) {
				errs = append(errs, fmt.Errorf("reset.data_dirs: %q overlaps %q, which a reset keeps", d, k))
			}
		}
	}
	for _, k := range c.Reset.DataKeys {
		if !filepath.IsAbs(k) {
			errs = append(errs, fmt.Errorf("reset.data_keys: %q must be an absolute path", k))
		}
	}
	if slices.ContainsFunc(c.Reset.Commands, func(a []string) bool { return len(a) == 0 || !filepath.IsAbs(a[0]) }) {
		errs = append(errs, fmt.Errorf("reset.commands: each needs an absolute program path"))
	}
	return errs
}

// ReadSerial returns the serial from Serial or SerialFile.
func (c *Config) ReadSerial() (string, error) {
	s := c.Serial
	if s == "" && c.SerialFile != "" {
		b, err := os.ReadFile(c.SerialFile)
		if err != nil {
			return "", fmt.Errorf("serial_file: %w", err)
		}
		s = strings.TrimRight(strings.TrimSpace(string(b)), "\x00")
	}
	if err := trust.ValidateID("serial", s); err != nil {
		return "", err
	}
	return s, nil
}
