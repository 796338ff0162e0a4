package sim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

// The agent's back-off after failed polls (agent.Engine.Run).
const (
	agentBackoff    = 30 * time.Second
	agentMaxBackoff = 6 * time.Hour
)

// Limits keep a run bounded in size and time.
const (
	MaxDevices = 200_000
	MaxTimeout = 24 * time.Hour
	// MaxPowerCuts bounds cuts per device.
	MaxPowerCuts = 1000
)

// Config describes a simulated fleet and the server it talks to.
type Config struct {
	// ServerURL is the device API's base URL (https://host:port).
	ServerURL string
	// ServerCA is the PEM certificate of the server CA devices pin.
	ServerCA []byte
	// ImageRoot and DirectorRoot are the roots devices are provisioned
	// with. Nil fetches version 1 of each from the server over the pinned
	// TLS channel, trusting it on first use.
	ImageRoot, DirectorRoot []byte
	// Channel is the devices' provisioning mode (default release).
	Channel trust.Channel

	// Devices is the fleet size.
	Devices int
	// HardwareID is every device's hardware ID.
	HardwareID string
	// Factory names the image-repository target every device runs at the
	// start (slot A, committed, release counter from the target).
	Factory string
	// SlotSize is each slot's size in bytes; 0 means the factory image's
	// length plus a quarter, rounded up to 4 KiB.
	SlotSize int64
	// Seed derives device keys and serials, and the fault schedule. The
	// same seed gives the same fleet (for pre-authorisation lists).
	Seed string
	// SerialPrefix starts each serial: PREFIX-000042.
	SerialPrefix string
	// Tokens, if set, enroll device i with the one-time token Tokens[i];
	// otherwise devices enroll by pre-authorisation (see PreauthCSV).
	Tokens []string

	// Dir holds the device directories; empty means a new directory under
	// /dev/shm if it exists, else under the system's temporary directory,
	// removed at the end unless Keep.
	Dir  string
	Keep bool

	// Poll, if set, replaces the server's poll interval: devices poll
	// after a uniformly random time in [Poll/2, 3·Poll/2]. It compresses
	// time for rehearsals; real devices poll at the server's interval.
	Poll time.Duration
	// StartJitter spreads the first check-ins (default Poll, or 1s).
	StartJitter time.Duration
	// Backoff and MaxBackoff bound the full-jitter back-off after a failed
	// poll. The defaults are the agent's (30s and 6h), capped at Poll and
	// 10·Poll when Poll compresses time; a server's Retry-After always wins.
	Backoff, MaxBackoff time.Duration
	// CheckpointEvery is the agent's download checkpoint interval
	// (default 16 KiB, so that small payloads resume mid-way).
	CheckpointEvery int64
	// MaxConns bounds the simulator's open connections (default: its
	// file-descriptor limit less a reserve); further devices wait for a
	// socket.
	MaxConns int
	// Timeout bounds the run (default 10m).
	Timeout time.Duration
	// UntilDone ends the run once every device has finished an update
	// (committed, rolled back, failed, rejected or declined).
	UntilDone bool
	// Until, if set, is asked at every progress tick and ends the run when
	// it returns true.
	Until func(Snapshot) bool

	Scenario Scenario

	// Progress, if set, is called with a snapshot every ProgressEvery
	// (default 1s) and once at the end.
	Progress      func(Snapshot)
	ProgressEvery time.Duration
	// Log receives the simulator's own records (not the devices').
	Log *slog.Logger
	// DeviceLog, if set, receives the agents' records (noisy).
	DeviceLog io.Writer
}

// Scenario switches on the faults of a run. Shares are fractions of the
// fleet in [0, 1]; the devices concerned are chosen by a permutation
// drawn from the seed, and the shares of personas (HealthFail, BootFail,
// Postpone, Decline) must add up to at most 1.
type Scenario struct {
	// HealthFail is the share of devices on which a new image fails its
	// health check: the engine rolls back to the old slot.
	HealthFail float64
	// BootFail is the share on which a new image never comes up: the
	// board resets before the agent starts until the bootloader's boot
	// counter falls back to the old slot.
	BootFail float64
	// PowerCuts is how many times power fails on each device, each time
	// at a random write point (journal, slot, bootloader environment,
	// metadata, counter) of the next update steps.
	PowerCuts int
	// Link degrades every device's network.
	Link Link
	// RogueMirror points devices at a mirror on 127.0.0.1 that serves
	// every payload with one byte flipped. Devices must reject every
	// update, report it, and stay on their signed image.
	RogueMirror bool
	// Outage, if set, cuts every device off the server for a while once
	// the fleet is up, then brings all of them back at the same instant
	// (a reconnect storm).
	Outage Outage
	// Postpone is the share of users who postpone the first
	// PostponeTimes offers of a consent-mode rollout, then accept.
	Postpone      float64
	PostponeTimes int
	// Decline is the share of users who decline consent-mode updates.
	Decline float64
}

// Link is a degraded network.
type Link struct {
	// Latency is added before every request.
	Latency time.Duration
	// Rate caps every response body, in bytes per second (0: no cap).
	Rate int64
	// Drop is the probability that a response body is cut short.
	Drop float64
}

// Outage cuts every device off the server for For, starting At after
// the whole fleet has enrolled and checked in once; then every device
// checks in at once.
type Outage struct {
	At, For time.Duration
}

func (o Outage) enabled() bool { return o.For > 0 }

func (c *Config) validate() error {
	u, err := url.Parse(c.ServerURL)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("sim: server URL must be https://host:port, got %q", c.ServerURL)
	case len(c.ServerCA) == 0:
		return errors.New("sim: the server CA certificate is required")
	case c.Devices < 1 || c.Devices > MaxDevices:
		return fmt.Errorf("sim: devices must be 1-%d", MaxDevices)
	case c.Factory == "":
		return errors.New("sim: the factory target name is required")
	case c.Tokens != nil && len(c.Tokens) < c.Devices:
		return fmt.Errorf("sim: %d tokens for %d devices", len(c.Tokens), c.Devices)
	case c.Timeout < 0 || c.Timeout > MaxTimeout:
		return fmt.Errorf("sim: timeout must be at most %s", MaxTimeout)
	case c.SlotSize < 0, c.MaxConns < 0, c.Poll < 0, c.StartJitter < 0, c.Backoff < 0, c.MaxBackoff < 0:
		return errors.New("sim: sizes and durations must not be negative")
	}
	if err := trust.ValidateID("hardware ID", c.HardwareID); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := c.Channel.Validate(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return c.Scenario.validate()
}

func (s *Scenario) validate() error {
	for name, v := range map[string]float64{"health-fail": s.HealthFail, "boot-fail": s.BootFail,
		"postpone": s.Postpone, "decline": s.Decline, "link drop": s.Link.Drop} {
		if v < 0 || v > 1 || math.IsNaN(v) {
			return fmt.Errorf("sim: %s share must be between 0 and 1", name)
		}
	}
	if s.HealthFail+s.BootFail+s.Postpone+s.Decline > 1+1e-9 {
		return errors.New("sim: health-fail, boot-fail, postpone and decline shares add up to more than 1")
	}
	switch {
	case s.PowerCuts < 0 || s.PowerCuts > MaxPowerCuts:
		return fmt.Errorf("sim: power cuts per device must be 0-%d", MaxPowerCuts)
	case s.PostponeTimes < 0 || s.PostponeTimes > 100:
		return errors.New("sim: postpone times must be 0-100")
	case s.Link.Latency < 0 || s.Link.Rate < 0:
		return errors.New("sim: link latency and rate must not be negative")
	case s.Outage.At < 0 || s.Outage.For < 0:
		return errors.New("sim: outage times must not be negative")
	}
	return nil
}

func (c *Config) defaults() {
	if c.Channel == "" {
		c.Channel = trust.ChannelRelease
	}
	if c.HardwareID == "" {
		c.HardwareID = "demo-board"
	}
	if c.SerialPrefix == "" {
		c.SerialPrefix = "SIM"
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.StartJitter == 0 {
		c.StartJitter = c.Poll
		if c.StartJitter == 0 {
			c.StartJitter = time.Second
		}
	}
	if c.Backoff == 0 {
		c.Backoff = agentBackoff
		if c.Poll > 0 {
			c.Backoff = min(c.Backoff, c.Poll)
		}
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = agentMaxBackoff
		if c.Poll > 0 {
			c.MaxBackoff = min(c.MaxBackoff, 10*c.Poll)
		}
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = 16 << 10
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.Scenario.Postpone > 0 && c.Scenario.PostponeTimes == 0 {
		c.Scenario.PostponeTimes = 1
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}
